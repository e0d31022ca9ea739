"""Executions and logs, nodes, the scheduler, the queue and pending reasons, the status
document, the live plan, health and readiness."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import V1, create_job_type, ended, node_ready, submit


def test_executions_list_get_and_logs(api: Api) -> None:
    type_id = create_job_type(
        api, "talk", main="import sys\nfor i in range(5): print(i)\nprint('oops', file=sys.stderr)"
    )
    job = submit(api, type_id)
    api.step_until(lambda: ended(api, [job]))
    listed = api.client.get(f"{V1}/executions", params={"job_id": job}).json()["items"]
    assert len(listed) == 1
    exe_id = listed[0]["id"]
    assert api.client.get(f"{V1}/executions/{exe_id}").json() == listed[0]
    logs = f"{V1}/executions/{exe_id}/logs"
    assert api.client.get(logs).text == "0\n1\n2\n3\n4\n"
    assert api.client.get(logs, params={"tail": 2}).text == "3\n4\n"
    assert api.client.get(logs, params={"offset": 2, "length": 4}).text == "1\n2\n"
    assert api.client.get(logs, params={"stream": "stderr"}).text == "oops\n"
    assert api.client.get(logs, params={"step": "pre"}).status_code == 404
    assert api.client.get(logs, params={"tail": 0}).status_code == 422
    assert api.client.get(f"{V1}/executions/999").status_code == 404
    completed = api.client.get(f"{V1}/executions", params={"status": "COMPLETED"}).json()
    assert [e["id"] for e in completed["items"]] == [exe_id]


def test_nodes_pause_resume_deprecate_reactivate(api: Api) -> None:
    api.step(2)
    nodes = api.client.get(f"{V1}/nodes").json()
    assert len(nodes) == 1
    node = nodes[0]
    assert node["state"]["name"] in ("READY", "INITIAL_CLEANUP", "IMAGE_PULL")
    assert node["resources"]["total"]["cpus"] == 2.0
    node_id = node["id"]
    paused = api.client.post(
        f"{V1}/nodes/{node_id}/pause", json={"reason": "disk swap"}, headers=api.auth()
    ).json()
    assert paused["is_paused"] and paused["pause_reason"] == "disk swap"
    api.step()
    assert api.client.get(f"{V1}/nodes/{node_id}").json()["state"]["name"] == "PAUSED"
    api.client.post(f"{V1}/nodes/{node_id}/resume", headers=api.auth())
    deprecated = api.client.post(f"{V1}/nodes/{node_id}/deprecate", headers=api.auth()).json()
    assert deprecated["is_active"] is False
    api.step()
    assert api.client.get(f"{V1}/nodes/{node_id}").json()["state"]["name"] == "DEPRECATED"
    back = api.client.post(f"{V1}/nodes/{node_id}/reactivate", headers=api.auth()).json()
    assert back["is_active"] is True
    assert api.client.get(f"{V1}/nodes/999").status_code == 404


def test_scheduler_settings(api: Api) -> None:
    assert api.client.get(f"{V1}/scheduler").json()["is_paused"] is False
    changed = api.client.patch(
        f"{V1}/scheduler", json={"queue_mode": "lifo", "queue_limit": 50}, headers=api.auth()
    ).json()
    assert (changed["queue_mode"], changed["queue_limit"]) == ("LIFO", 50)
    assert api.client.post(f"{V1}/scheduler/pause", headers=api.auth()).json()["is_paused"]
    api.step()
    assert api.harness.service.runtime.settings.is_paused
    assert not api.client.post(f"{V1}/scheduler/resume", headers=api.auth()).json()["is_paused"]


def test_queue_status_and_why_pending(api: Api) -> None:
    type_id = create_job_type(api, "held")
    api.client.post(f"{V1}/job-types/{type_id}/pause", headers=api.auth())
    jobs = [submit(api, type_id, priority=p) for p in (2, 1)]
    api.step(3)
    status = api.client.get(f"{V1}/queue").json()
    assert [(s["name"], s["count"], s["highest_priority"]) for s in status] == [("held", 2, 1)]
    pending = api.client.get(f"{V1}/queue/pending").json()
    assert pending["reasons"] == {"JOB_TYPE_PAUSED": 2}
    assert {p["job_id"] for p in pending["jobs"]} == set(jobs)
    assert all(not p["can_wait_help"] for p in pending["jobs"])


def test_status_document_is_served_from_memory(api: Api) -> None:
    job = submit(api, create_job_type(api))
    api.step_until(lambda: ended(api, [job]))
    api.monitor.refresh_status(force=True)
    doc = api.client.get(f"{V1}/status").json()
    assert doc["scheduler"]["state"]["name"] == "READY"
    assert set(doc["scheduler"]["metrics"]) >= {"new_offers_per_sec", "jobs_launched_per_sec"}
    assert [n["hostname"] for n in doc["nodes"]] == ["alpha"]
    assert doc["resources"]["cpus"]["total"] == 2.0
    assert [t["name"] for t in doc["job_types"]] == ["hello"]


def test_live_plan_places_the_queued_job(api: Api) -> None:
    job = submit(api, create_job_type(api, main="import time; time.sleep(30)"))
    api.client.post(f"{V1}/job-types/1/pause", headers=api.auth())
    api.step_until(node_ready(api))
    api.client.post(f"{V1}/job-types/1/resume", headers=api.auth())
    before = api.store.jobs.get(job)
    plan = api.client.post(f"{V1}/plan").json()
    assert plan["version"] == 1
    assert [s["job_id"] for s in plan["scheduled"]] == [job]
    assert api.store.jobs.get(job) == before  # a dry run changes nothing
    assert api.client.post(f"{V1}/plan", params={"engine": "fast"}).status_code == 200
    assert api.client.post(f"{V1}/plan", params={"engine": "slow"}).status_code == 422


def test_health_and_readiness(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "backend": "ok"}
