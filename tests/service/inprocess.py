"""A scheduler service in this process (same code as `serve`), stepped by the test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadmaster.cluster.local import LocalBackend
from loadmaster.service.backends import build_backend
from loadmaster.service.config import Config, parse_config
from loadmaster.service.scheduler import SchedulerService, utc_now
from loadmaster.service.submission import submit_workload
from loadmaster.service.workload import parse_workload
from loadmaster.store.records import JobRecord
from loadmaster.store.sql import SqlStore


@dataclass
class Harness:
    service: SchedulerService
    store: SqlStore
    config: Config

    @property
    def backend(self) -> LocalBackend:
        assert isinstance(self.service.backend, LocalBackend)
        return self.service.backend

    def submit(self, data: dict[str, Any]) -> list[int]:
        workload = parse_workload(data, "test")
        return submit_workload(self.store, workload, utc_now()).job_ids

    def step_until(
        self, done: Callable[[], bool], timeout: float = 30.0, pause: float = 0.05
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            self.service.step()
            time.sleep(pause)

    def jobs(self, ids: list[int]) -> list[JobRecord]:
        return [job for i in ids if (job := self.store.jobs.get(i)) is not None]

    def all_ended(self, ids: list[int]) -> bool:
        jobs = self.jobs(ids)
        return len(jobs) == len(ids) and all(j.status.has_ended for j in jobs)


def config_for(root: Path, agents: list[dict[str, Any]], **scheduler: Any) -> Config:
    return parse_config(
        {
            "store": {"url": f"sqlite:///{root / 'store.db'}"},
            "scheduler": {
                "data_dir": str(root / "data"),
                "cycle_seconds": 0.05,
                "sync_seconds": 0.2,
                "health_min_free_mib": 1.0,
                **scheduler,
            },
            "backend": {"local": {"kill_grace_seconds": 0.5, "agents": agents}},
        }
    )


@contextmanager
def service_in_process(config: Config, store: SqlStore | None = None) -> Iterator[Harness]:
    store = store or SqlStore.open(config.store_url(), schema=config.store.pg_schema)
    service: SchedulerService | None = None
    parts = build_backend(
        config, lambda e: service.cluster_id_of(e) if service else None, store.config
    )
    service = SchedulerService(
        config, store, parts.backend, node_task_factory=parts.node_task_factory
    )
    service.start()
    try:
        yield Harness(service, store, config)
    finally:
        service.shutdown(kill_tasks=True)
        store.close()


def job_type(name: str, main: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "resources": {"cpus": 0.5, "mem": 64},
        "steps": {"main": ["{python}", "-c", main]},
        **extra,
    }
