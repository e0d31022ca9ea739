"""Job types over the API: create, list, get, update, pause/resume, secrets masked."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.api.helpers import V1, create_job_type, job_type_body


def test_create_get_list_and_secrets_are_masked(api: Api) -> None:
    body = job_type_body("secretive", env={"PLAIN": "1", "PASSWORD": "hunter2"})
    body["secret_keys"] = ["PASSWORD"]
    created = api.client.post(f"{V1}/job-types", json=body, headers=api.auth())
    assert created.status_code == 201
    doc = created.json()
    assert doc["env"] == {"PLAIN": "1", "PASSWORD": "*****"}
    assert doc["resources"]["mem"] == 128.0  # raised to the minimum
    one = api.client.get(f"{V1}/job-types/{doc['id']}")
    assert one.json() == doc
    assert "hunter2" not in api.client.get(f"{V1}/job-types").text
    stored = api.store.job_types.get(doc["id"])
    assert stored is not None and stored.environment["PASSWORD"] == "hunter2"


def test_duplicate_is_a_conflict(api: Api) -> None:
    create_job_type(api, "dup")
    again = api.client.post(f"{V1}/job-types", json=job_type_body("dup"), headers=api.auth())
    assert again.status_code == 409
    assert again.json()["detail"][0]["field"] == "name, version"


def test_update_changes_only_given_fields(api: Api) -> None:
    type_id = create_job_type(api, "edit")
    response = api.client.patch(
        f"{V1}/job-types/{type_id}",
        json={"max_scheduled": 2, "timeout_seconds": 30, "resources": {"cpus": 1, "mem": 256}},
        headers=api.auth(),
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["max_scheduled"], doc["timeout_seconds"]) == (2, 30.0)
    assert doc["resources"]["cpus"] == 1.0 and doc["steps"] == ["main"]
    steps = {"pre": ["{python}", "-c", "pass"], "main": ["true"]}
    doc = api.client.patch(
        f"{V1}/job-types/{type_id}",
        json={"steps": steps, "max_scheduled": None},
        headers=api.auth(),
    ).json()
    assert doc["steps"] == ["pre", "main"] and doc["max_scheduled"] is None


def test_pause_and_resume(api: Api) -> None:
    type_id = create_job_type(api, "pausable")
    paused = api.client.post(f"{V1}/job-types/{type_id}/pause", headers=api.auth())
    assert paused.json()["is_paused"] is True
    api.step()
    assert api.harness.service.runtime.job_types.get(type_id).is_paused  # type: ignore[union-attr]
    resumed = api.client.post(f"{V1}/job-types/{type_id}/resume", headers=api.auth())
    assert resumed.json()["is_paused"] is False


def test_unknown_job_type_is_404(api: Api) -> None:
    assert api.client.get(f"{V1}/job-types/999").status_code == 404
    missing = api.client.post(f"{V1}/job-types/999/pause", headers=api.auth())
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["field"] == "job_type_id"
