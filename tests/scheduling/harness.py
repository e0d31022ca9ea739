"""Small builders for cycle tests: a snapshot dict in, live state and a recording client out."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from loadmaster.plan.builder import PlanState, RecordingClient, build_state
from loadmaster.plan.snapshot import parse_snapshot
from loadmaster.scheduling.report import CycleReport

WHEN = "2026-01-01T00:00:00Z"


def node(i: int, state: str = "READY", **extra: Any) -> dict[str, Any]:
    return {"id": i, "hostname": f"host_{i}", "agent_id": f"agent_{i}", "state": state, **extra}


def offer(
    i: int, cpus: float, mem: float, name: str | None = None, **extra: float
) -> dict[str, Any]:
    return {
        "id": name or f"offer_{i}",
        "agent_id": f"agent_{i}",
        "resources": {"cpus": cpus, "mem": mem, **extra},
    }


def entry(i: int, job_type: int = 1, priority: int = 100, **resources: float) -> dict[str, Any]:
    return {
        "id": i,
        "job_id": 100 + i,
        "job_type_id": job_type,
        "priority": priority,
        "queued": f"2025-12-31T23:{i % 60:02d}:00Z",
        "resources": resources or {"cpus": 1.0, "mem": 512.0},
    }


def job_type(i: int = 1, name: str = "ingest", **extra: Any) -> dict[str, Any]:
    return {"id": i, "name": name, "resources": {"cpus": 1.0, "mem": 512.0}, **extra}


def snapshot(**sections: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 1, "when": WHEN, "job_types": [job_type()]}
    doc.update(sections)
    return doc


def state_of(doc: dict[str, Any]) -> PlanState:
    return build_state(parse_snapshot(json.dumps(doc)))


def cycle(
    state: PlanState, client: RecordingClient | None = None, after_seconds: float = 0.0
) -> CycleReport:
    return state.manager.run_cycle(
        client or RecordingClient(), state.when + timedelta(seconds=after_seconds)
    )
