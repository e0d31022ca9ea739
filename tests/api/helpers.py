"""Small helpers the API tests share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.api.conftest import Api

from loadmaster.model.nodes import NodeState
from loadmaster.store.sql import SqlStore

V1 = "/api/v1"


def job_type_body(name: str = "hello", main: str = "print('hi')", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "resources": {"cpus": 0.5, "mem": 64},
        "steps": {"main": ["{python}", "-c", main]},
        **extra,
    }


def create_job_type(api: Api, name: str = "hello", main: str = "print('hi')", **extra: Any) -> int:
    response = api.client.post(
        f"{V1}/job-types", json=job_type_body(name, main, **extra), headers=api.auth()
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def submit(api: Api, job_type_id: int, **extra: Any) -> int:
    response = api.client.post(
        f"{V1}/jobs", json={"job_type_id": job_type_id, **extra}, headers=api.auth()
    )
    assert response.status_code == 201, response.text
    return int(response.json()["job"]["id"])


def store_state(store: SqlStore) -> dict[str, Any]:
    """Everything a request could change, to compare before and after a refused one."""
    return {
        "jobs": store.jobs.search(limit=1000).jobs,
        "job_types": [(jt, store.job_types.spec(jt.id)) for jt in store.job_types.all()],
        "nodes": store.nodes.all(),
        "scheduler": store.config.scheduler(),
        "queue": store.queue.status(),
        "events": [e.id for e in store.events.recent(limit=1000)],
    }


def ended(api: Api, job_ids: list[int]) -> bool:
    jobs = [api.store.jobs.get(i) for i in job_ids]
    return all(j is not None and j.status.has_ended for j in jobs)


def node_ready(api: Api) -> Callable[[], bool]:
    """Every node of the service is READY (initial cleanup and image pull done)."""

    def ready() -> bool:
        nodes = api.harness.service.runtime.nodes.get_nodes()
        return bool(nodes) and all(n.state is NodeState.READY for n in nodes)

    return ready
