"""Jobs over the API: submit (one, batch, idempotent), list with filters and pages, get,
cancel, requeue, executions and events."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import V1, create_job_type, ended, submit


def test_submit_one_and_get(api: Api) -> None:
    type_id = create_job_type(api)
    response = api.client.post(
        f"{V1}/jobs", json={"job_type": "hello:1.0", "priority": 7}, headers=api.auth()
    )
    assert response.status_code == 201
    job = response.json()["job"]
    assert (job["status"], job["priority"], job["job_type_id"]) == ("QUEUED", 7, type_id)
    assert api.client.get(f"{V1}/jobs/{job['id']}").json() == job
    assert api.store.jobs.get(job["id"]) is not None


def test_idempotency_key_returns_the_first_job(api: Api) -> None:
    type_id = create_job_type(api)
    body = {"job_type_id": type_id, "idempotency_key": "abc"}
    first = api.client.post(f"{V1}/jobs", json=body, headers=api.auth())
    second = api.client.post(f"{V1}/jobs", json=body, headers=api.auth())
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["job"]["id"] == second.json()["job"]["id"]
    assert second.json()["created"] is False
    reused = api.client.post(f"{V1}/jobs", json=body | {"priority": 1}, headers=api.auth())
    assert reused.status_code == 400 and reused.json()["detail"][0]["field"] == "idempotency_key"


def test_batch_is_all_or_nothing(api: Api) -> None:
    type_id = create_job_type(api)
    ok = api.client.post(
        f"{V1}/jobs/batch",
        json={"jobs": [{"job_type_id": type_id, "priority": p} for p in (3, 2, 1)]},
        headers=api.auth(),
    )
    assert ok.status_code == 201 and len(ok.json()["jobs"]) == 3
    bad = api.client.post(
        f"{V1}/jobs/batch",
        json={"jobs": [{"job_type_id": type_id}, {"job_type_id": 999}]},
        headers=api.auth(),
    )
    assert bad.status_code == 404 and bad.json()["detail"][0]["field"] == "jobs[1].job_type_id"
    assert len(api.store.jobs.search().jobs) == 3


def test_list_filters_and_pagination(api: Api) -> None:
    a = create_job_type(api, "a")
    b = create_job_type(api, "b")
    ids = [submit(api, a, priority=p) for p in (1, 5, 9)] + [submit(api, b, priority=5)]
    page = api.client.get(f"{V1}/jobs", params={"limit": 2}).json()
    assert [j["id"] for j in page["items"]] == [ids[3], ids[2]]
    rest = api.client.get(
        f"{V1}/jobs", params={"limit": 2, "before_id": page["next_before_id"]}
    ).json()
    assert [j["id"] for j in rest["items"]] == [ids[1], ids[0]] and rest["next_before_id"] is None
    by_type = api.client.get(f"{V1}/jobs", params={"job_type_id": b}).json()["items"]
    assert [j["id"] for j in by_type] == [ids[3]]
    ranged = api.client.get(f"{V1}/jobs", params={"priority_min": 2, "priority_max": 8}).json()
    assert {j["id"] for j in ranged["items"]} == {ids[1], ids[3]}
    created = api.store.jobs.get(ids[2]).created.isoformat()  # type: ignore[union-attr]
    since = api.client.get(f"{V1}/jobs", params={"created_from": created}).json()["items"]
    assert {j["id"] for j in since} == {ids[2], ids[3]}
    queued = api.client.get(f"{V1}/jobs", params={"status": ["QUEUED"]}).json()["items"]
    assert len(queued) == 4
    assert api.client.get(f"{V1}/jobs", params={"status": "DONE"}).status_code == 422


def test_run_cancel_requeue_executions_and_events(api: Api) -> None:
    quick = create_job_type(api, "quick")
    slow = create_job_type(api, "slow", main="import time; time.sleep(30)")
    done = submit(api, quick)
    running = submit(api, slow)
    api.step_until(lambda: ended(api, [done]) and api.store.executions.for_job(running) != [])
    exes = api.client.get(f"{V1}/jobs/{done}/executions").json()
    assert exes[0]["status"] == "COMPLETED" and exes[0]["tasks"][-1]["exit_code"] == 0
    assert exes[0]["tasks"][-1]["started"] is not None
    canceled = api.client.post(f"{V1}/jobs/{running}/cancel", headers=api.auth())
    assert canceled.json()["outcome"] == "KILL_REQUESTED"
    api.step_until(lambda: ended(api, [running]))
    assert api.client.get(f"{V1}/jobs/{running}").json()["status"] == "CANCELED"
    again = api.client.post(f"{V1}/jobs/{running}/cancel", headers=api.auth())
    assert again.status_code == 409
    not_ended = api.client.post(f"{V1}/jobs/{done}/requeue", headers=api.auth())
    assert not_ended.status_code == 409
    requeued = api.client.post(
        f"{V1}/jobs/{running}/requeue", json={"priority": 3}, headers=api.auth()
    )
    assert requeued.status_code == 200
    assert (requeued.json()["status"], requeued.json()["priority"]) == ("QUEUED", 3)
    events = [e["what"] for e in api.client.get(f"{V1}/jobs/{running}/events").json()]
    assert events[0] == "queued" and "cancel_requested" in events and events[-1] == "requeued"


def test_cancel_a_queued_job_at_once(api: Api) -> None:
    api.client.post(f"{V1}/scheduler/pause", headers=api.auth())
    job = submit(api, create_job_type(api))
    response = api.client.post(f"{V1}/jobs/{job}/cancel", headers=api.auth())
    assert response.json()["outcome"] == "CANCELED"
    assert response.json()["job"]["status"] == "CANCELED"


def test_workload_document(api: Api) -> None:
    body = {
        "job_types": [{"name": "wl", "steps": {"main": ["{python}", "-c", "pass"]}}],
        "jobs": [{"job_type": "wl", "count": 3, "priority": 4}],
    }
    response = api.client.post(f"{V1}/workloads", json=body, headers=api.auth())
    assert response.status_code == 201, response.text
    assert len(response.json()["job_ids"]) == 3
    bad = api.client.post(
        f"{V1}/workloads", json={"jobs": [{"job_type": "nope"}]}, headers=api.auth()
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "jobs[0].job_type"


def test_unknown_job_is_404(api: Api) -> None:
    for method, path in (
        ("GET", "/jobs/999"),
        ("GET", "/jobs/999/executions"),
        ("GET", "/jobs/999/events"),
        ("POST", "/jobs/999/cancel"),
        ("POST", "/jobs/999/requeue"),
    ):
        response = api.client.request(method, f"{V1}{path}", headers=api.auth())
        assert response.status_code == 404, path
        assert response.json()["detail"][0]["field"] == "job_id"
