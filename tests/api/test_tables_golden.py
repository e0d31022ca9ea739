"""The CLI's table layouts against golden files. Regenerate after an intended change with
`LOADMASTER_UPDATE_GOLDEN=1 pytest tests/api/test_tables_golden.py`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import RenderableType

from loadmaster.cli.tables import (
    job_types_table,
    job_view,
    jobs_table,
    nodes_table,
    queue_table,
    render_text,
    status_view,
)

GOLDEN = Path(__file__).parent / "golden"

RES = {"cpus": 0.5, "mem": 128.0, "disk": 0.0, "gpus": 0.0}
JOBS: list[dict[str, Any]] = [
    {
        "id": 12,
        "job_type": "ingest:1.0",
        "job_type_id": 1,
        "priority": 100,
        "status": "QUEUED",
        "num_exes": 1,
        "max_tries": 3,
        "error": None,
        "created": "2026-01-01T10:00:00Z",
        "queued": "2026-01-01T10:00:00Z",
    },
    {
        "id": 11,
        "job_type": "ingest:1.0",
        "job_type_id": 1,
        "priority": 5,
        "status": "FAILED",
        "num_exes": 3,
        "max_tries": 3,
        "error": "algorithm-unknown",
        "created": "2026-01-01T09:00:00Z",
        "queued": "2026-01-01T09:30:00Z",
    },
]
FREE = {"cpus": 1.5, "mem": 1920.0, "disk": 4000.0, "gpus": 0.0}
TOTAL = {"cpus": 2.0, "mem": 2048.0, "disk": 4000.0, "gpus": 0.0}
NODES: list[dict[str, Any]] = [
    {
        "id": 1,
        "hostname": "alpha",
        "state": {"name": "READY"},
        "pause_reason": None,
        "errors": [],
        "job_executions": [7],
        "resources": {"free": FREE, "total": TOTAL, "running": RES, "offered": {}},
    },
    {
        "id": 2,
        "hostname": "beta",
        "state": {"name": "PAUSED"},
        "pause_reason": "disk swap",
        "errors": [],
        "job_executions": [],
        "resources": {"free": TOTAL, "total": TOTAL, "running": {}, "offered": {}},
    },
]
STATUS = {
    "scheduler": {
        "state": {"name": "READY", "description": "The scheduler is running normally."},
        "cycles": 42,
        "last_cycle": "2026-01-01T10:00:01Z",
        "warnings": [{"name": "INSUFFICIENT_RESOURCES", "description": "job type big needs gpus"}],
    },
    "resources": {
        "cpus": {"running": 0.5, "offered": 0.0, "free": 3.5, "unavailable": 0.0, "total": 4.0}
    },
    "nodes": NODES,
}
JOB_TYPES = [
    {
        "id": 1,
        "name": "ingest",
        "version": "1.0",
        "resources": RES,
        "max_scheduled": None,
        "max_tries": 3,
        "is_paused": False,
    },
    {
        "id": 2,
        "name": "render",
        "version": "2.1",
        "resources": RES,
        "max_scheduled": 4,
        "max_tries": 1,
        "is_paused": True,
    },
]
EXECUTIONS = [
    {
        "exe_num": 1,
        "node_id": 1,
        "tasks": [
            {
                "kind": "main",
                "status": "FAILED",
                "exit_code": 3,
                "started": "2026-01-01T09:31:00Z",
                "ended": "2026-01-01T09:31:05Z",
            },
        ],
    },
]
EVENTS = [
    {"occurred": "2026-01-01T09:00:00Z", "what": "queued", "detail": {"exe_num": 1, "priority": 5}},
    {"occurred": "2026-01-01T09:31:05Z", "what": "failed", "detail": {}},
]

CASES: dict[str, RenderableType] = {
    "jobs": jobs_table(JOBS),
    "queue": queue_table(JOBS[:1], {12: "JOB_TYPE_PAUSED"}),
    "nodes": nodes_table(NODES),
    "job_types": job_types_table(JOB_TYPES),
    "status": status_view(STATUS),
    "job": job_view(JOBS[1], EXECUTIONS, EVENTS),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_table_layout(name: str) -> None:
    text = render_text(CASES[name], width=100)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LOADMASTER_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text()
