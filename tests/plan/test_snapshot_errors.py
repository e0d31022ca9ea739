"""Bad snapshots: exit 2, the field's path and the problem on stderr, nothing on stdout."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from loadmaster.plan.snapshot import SnapshotError, parse_snapshot

GOOD: dict[str, Any] = {
    "version": 1,
    "when": "2026-01-01T00:00:00Z",
    "job_types": [{"id": 1, "name": "ingest", "resources": {"cpus": 1.0, "mem": 512.0}}],
    "nodes": [{"id": 1, "hostname": "host_1", "agent_id": "agent_1", "state": "READY"}],
    "offers": [{"id": "offer_1", "agent_id": "agent_1", "resources": {"cpus": 4.0, "mem": 4096.0}}],
    "queue": [
        {
            "id": 11,
            "job_id": 101,
            "job_type_id": 1,
            "priority": 100,
            "queued": "2025-12-31T23:00:00Z",
            "resources": {"cpus": 1.0, "mem": 512.0},
        }
    ],
}


def mutated(change: Callable[[dict[str, Any]], None]) -> str:
    doc = copy.deepcopy(GOOD)
    change(doc)
    return json.dumps(doc)


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _append(section: str, item: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda doc: doc.setdefault(section, []).append(item)


CASES = [
    ("unknown-top-level-field", _set(["colour"], "blue"), "colour: Extra inputs are not permitted"),
    ("unknown-nested-field", _set(["queue", 0, "prio"], 5), "queue[0].prio: Extra inputs"),
    ("missing-version", lambda d: d.pop("version"), "version: Field required"),
    ("wrong-version", _set(["version"], 2), "version: Input should be 1"),
    ("missing-when", lambda d: d.pop("when"), "when: Field required"),
    ("bad-when", _set(["when"], "yesterday"), "when:"),
    (
        "priority-not-int",
        _set(["queue", 0, "priority"], "high"),
        "queue[0].priority: Input should be a valid integer",
    ),
    (
        "resource-not-number",
        _set(["queue", 0, "resources", "cpus"], "1"),
        "queue[0].resources.cpus: Input should be a valid number",
    ),
    (
        "negative-resource",
        _set(["offers", 0, "resources", "mem"], -5),
        "offers[0].resources: mem: must not be negative",
    ),
    (
        "negative-agent-total",
        _append("agents", {"agent_id": "agent_1", "total": {"cpus": -1}}),
        "agents[0].total: cpus: must not be negative",
    ),
    ("bad-node-state", _set(["nodes", 0, "state"], "HAPPY"), "nodes[0].state: Input should be"),
    ("bad-queue-mode", _set(["scheduler"], {"queue_mode": "lifo"}), "scheduler.queue_mode"),
    ("negative-queue-limit", _set(["scheduler"], {"queue_limit": -1}), "scheduler.queue_limit"),
    (
        "negative-max-scheduled",
        _set(["job_types", 0, "max_scheduled"], -1),
        "job_types[0].max_scheduled",
    ),
    (
        "steps-without-main",
        _set(["job_types", 0, "steps"], ["pre", "post"]),
        "job_types[0].steps: must include main",
    ),
    (
        "duplicate-queue-id",
        _append("queue", dict(GOOD["queue"][0], job_id=102)),
        "queue: duplicate id 11",
    ),
    ("duplicate-offer-id", _append("offers", GOOD["offers"][0]), "offers: duplicate id 'offer_1'"),
    (
        "duplicate-node-id",
        _append("nodes", dict(GOOD["nodes"][0], hostname="h2", agent_id="a2")),
        "nodes: duplicate id 1",
    ),
    (
        "duplicate-task-id",
        lambda d: (
            d["nodes"][0].update(pending_node_tasks=[{"id": "t", "kind": "health"}]),
            d.update(system_tasks=[{"id": "t", "kind": "db-update"}]),
        ),
        "tasks: duplicate id 't'",
    ),
    (
        "offer-of-unknown-agent",
        _set(["offers", 0, "agent_id"], "ghost"),
        "offers[0].agent_id: agent 'ghost' is neither",
    ),
    (
        "task-of-unknown-agent",
        _append("running_tasks", {"id": "x", "agent_id": "ghost", "kind": "main"}),
        "running_tasks[0].agent_id",
    ),
    (
        "two-pending-tasks-of-a-kind",
        _set(
            ["nodes", 0, "pending_node_tasks"],
            [{"id": "a", "kind": "health"}, {"id": "b", "kind": "health"}],
        ),
        "nodes[0].pending_node_tasks: at most one pending task per kind",
    ),
    (
        "bad-task-kind",
        _append(
            "running_executions",
            {
                "id": 7,
                "job_type_id": 1,
                "node_id": 1,
                "agent_id": "agent_1",
                "priority": 1,
                "remaining_tasks": ["compile"],
            },
        ),
        "running_executions[0].remaining_tasks[0]",
    ),
]


@pytest.mark.parametrize(("name", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_snapshot_names_the_field_and_the_problem(
    name: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    with pytest.raises(SnapshotError) as info:
        parse_snapshot(mutated(change))
    assert any(expected in problem for problem in info.value.problems), info.value.problems


def test_good_snapshot_parses() -> None:
    snapshot = parse_snapshot(json.dumps(GOOD))
    assert snapshot.queue[0].id == 11


def test_not_json_at_all_is_an_error() -> None:
    with pytest.raises(SnapshotError):
        parse_snapshot("{not json")


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadmaster", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_cli_bad_snapshot_exits_2_with_the_path_and_prints_nothing_on_stdout() -> None:
    result = run_cli("plan", "-", stdin=mutated(_set(["queue", 0, "resources", "cpus"], -1)))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "queue[0].resources" in result.stderr and "must not be negative" in result.stderr


def test_cli_missing_file_exits_2() -> None:
    result = run_cli("plan", "does-not-exist.json")
    assert result.returncode == 2 and result.stdout == ""
    assert "does-not-exist.json" in result.stderr


def test_valid_snapshot_that_schedules_nothing_exits_0() -> None:
    result = run_cli(
        "plan", "-", "-o", "json", stdin=json.dumps({"version": 1, "when": "2026-01-01T00:00:00Z"})
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["tasks_launched"] == 0
