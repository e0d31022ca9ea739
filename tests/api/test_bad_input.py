"""Every writable field refuses bad values with a 4xx that names the field, and a refused
request changes nothing in the store (compared whole, before and after)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.api.helpers import V1, create_job_type, job_type_body, store_state, submit

JT = job_type_body("fresh")

# name, method, path, body, the field the error must name ("" = any)
CASES: list[tuple[str, str, str, Any, str]] = [
    # job types: create
    ("jt unknown field", "POST", "/job-types", JT | {"colour": "red"}, "colour"),
    ("jt empty name", "POST", "/job-types", JT | {"name": ""}, "name"),
    ("jt name wrong type", "POST", "/job-types", JT | {"name": 5}, "name"),
    ("jt negative cpus", "POST", "/job-types", JT | {"resources": {"cpus": -1}}, "resources"),
    ("jt resources not numbers", "POST", "/job-types", JT | {"resources": {"cpus": "x"}}, ""),
    ("jt max_scheduled negative", "POST", "/job-types", JT | {"max_scheduled": -1}, ""),
    ("jt max_tries zero", "POST", "/job-types", JT | {"max_tries": 0}, "max_tries"),
    ("jt timeout zero", "POST", "/job-types", JT | {"timeout_seconds": 0}, "timeout_seconds"),
    ("jt no main", "POST", "/job-types", JT | {"steps": {"pre": ["true"]}}, "steps"),
    ("jt unknown step", "POST", "/job-types", JT | {"steps": {"main": ["x"], "go": ["y"]}}, ""),
    ("jt empty command", "POST", "/job-types", JT | {"steps": {"main": []}}, "steps"),
    ("jt env not strings", "POST", "/job-types", JT | {"env": {"A": 1}}, "env.A"),
    (
        "jt shell multi",
        "POST",
        "/job-types",
        JT | {"shell": True, "steps": {"main": ["a", "b"]}},
        "",
    ),
    ("jt secret not in env", "POST", "/job-types", JT | {"secret_keys": ["NOPE"]}, "secret_keys"),
    ("jt duplicate", "POST", "/job-types", job_type_body("base"), "name, version"),
    ("jt not json", "POST", "/job-types", "not json", ""),
    # job types: update
    ("jtu unknown field", "PATCH", "/job-types/{jt}", {"name": "other"}, "name"),
    ("jtu empty", "PATCH", "/job-types/{jt}", {}, "body"),
    ("jtu negative mem", "PATCH", "/job-types/{jt}", {"resources": {"mem": -5}}, "resources"),
    ("jtu max_tries null", "PATCH", "/job-types/{jt}", {"max_tries": None}, "max_tries"),
    ("jtu max_tries zero", "PATCH", "/job-types/{jt}", {"max_tries": 0}, "max_tries"),
    ("jtu timeout negative", "PATCH", "/job-types/{jt}", {"timeout_seconds": -1}, ""),
    ("jtu steps no main", "PATCH", "/job-types/{jt}", {"steps": {"pre": ["x"]}}, "steps.main"),
    ("jtu env wrong type", "PATCH", "/job-types/{jt}", {"env": ["A"]}, "env"),
    ("jtu secret not in env", "PATCH", "/job-types/{jt}", {"secret_keys": ["X"]}, "secret_keys"),
    ("jtu retry wrong type", "PATCH", "/job-types/{jt}", {"retry_main_failures": "maybe"}, ""),
    ("jtu unknown id", "PATCH", "/job-types/999", {"max_tries": 2}, "job_type_id"),
    # jobs
    ("job no type", "POST", "/jobs", {"priority": 1}, "job_type_id"),
    ("job both types", "POST", "/jobs", {"job_type_id": "{jt}", "job_type": "base"}, ""),
    ("job unknown type id", "POST", "/jobs", {"job_type_id": 999}, "job_type_id"),
    ("job unknown type name", "POST", "/jobs", {"job_type": "nope"}, "job_type"),
    ("job priority wrong type", "POST", "/jobs", {"job_type": "base", "priority": "high"}, ""),
    ("job priority huge", "POST", "/jobs", {"job_type": "base", "priority": 2**40}, "priority"),
    ("job unknown field", "POST", "/jobs", {"job_type": "base", "colour": 1}, "colour"),
    ("job negative input", "POST", "/jobs", {"job_type": "base", "input_file_size_mib": -1}, ""),
    ("job empty key", "POST", "/jobs", {"job_type": "base", "idempotency_key": ""}, ""),
    ("job env wrong type", "POST", "/jobs", {"job_type": "base", "env": {"A": []}}, ""),
    ("batch empty", "POST", "/jobs/batch", {"jobs": []}, "jobs"),
    (
        "batch bad member",
        "POST",
        "/jobs/batch",
        {"jobs": [{"job_type": "base"}, {"job_type": "x"}]},
        "jobs[1].job_type",
    ),
    ("requeue queued", "POST", "/jobs/{job}/requeue", {}, "job_id"),
    ("requeue bad priority", "POST", "/jobs/{job}/requeue", {"priority": "x"}, "priority"),
    ("requeue unknown field", "POST", "/jobs/{job}/requeue", {"when": 1}, "when"),
    ("workload bad", "POST", "/workloads", {"job_types": [{"name": "w"}]}, ""),
    ("workload unknown key", "POST", "/workloads", {"jobz": []}, "jobz"),
    # nodes
    ("node pause no reason", "POST", "/nodes/{node}/pause", {}, "reason"),
    ("node pause empty reason", "POST", "/nodes/{node}/pause", {"reason": ""}, "reason"),
    ("node pause long reason", "POST", "/nodes/{node}/pause", {"reason": "x" * 251}, "reason"),
    ("node unknown", "POST", "/nodes/999/resume", None, "node_id"),
    # scheduler
    ("sched empty", "PATCH", "/scheduler", {}, "body"),
    ("sched bad mode", "PATCH", "/scheduler", {"queue_mode": "RANDOM"}, "queue_mode"),
    ("sched limit zero", "PATCH", "/scheduler", {"queue_limit": 0}, "queue_limit"),
    ("sched limit type", "PATCH", "/scheduler", {"queue_limit": "ten"}, "queue_limit"),
    ("sched pause null", "PATCH", "/scheduler", {"is_paused": None}, "is_paused"),
    ("sched unknown", "PATCH", "/scheduler", {"num_message_handlers": 2}, "num_message_handlers"),
]


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        for key, ident in ids.items():
            if value == f"{{{key}}}":
                return ident
            value = value.replace(f"{{{key}}}", str(ident))
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def test_bad_input_is_refused_and_changes_nothing(api: Api) -> None:
    api.client.post(f"{V1}/scheduler/pause", headers=api.auth())  # keep the job queued
    jt = create_job_type(api, "base", env={"K": "v"})
    job = submit(api, jt)
    api.step()
    node = api.store.nodes.all()[0].id
    ids = {"jt": jt, "job": job, "node": node}
    failures = []
    for name, method, path, body, field in CASES:
        before = store_state(api.store)
        options: dict[str, Any] = {"headers": api.auth()}
        if isinstance(body, str):
            options["content"] = body
            options["headers"] = api.auth() | {"Content-Type": "application/json"}
        elif body is not None:
            options["json"] = _fill(body, ids)
        response = api.client.request(method, f"{V1}{_fill(path, ids)}", **options)
        problems = response.json().get("detail", []) if response.status_code < 500 else []
        named = [p.get("field", "") for p in problems if isinstance(p, dict)]
        if not 400 <= response.status_code < 500:
            failures.append(f"{name}: status {response.status_code}")
        elif field and not any(n == field or n.startswith(field) for n in named):
            failures.append(f"{name}: fields {named}, expected {field}")
        elif not all(p.get("problem") for p in problems if isinstance(p, dict)):
            failures.append(f"{name}: a problem without text {problems}")
        if store_state(api.store) != before:
            failures.append(f"{name}: the store changed")
    assert failures == []
