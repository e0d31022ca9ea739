"""The registry of launched, not yet ended tasks (spec §6.3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loadmaster.model.task_registry import TaskRegistry
from loadmaster.model.tasks import TaskStatus

from .support import T0, at, status, task

S = TaskStatus


def test_launch_tasks_launches_and_registers() -> None:
    registry = TaskRegistry()
    first, second = task("t1"), task("t2")
    registry.launch_tasks([first, second], at(5))
    assert registry.get_all_tasks() == [first, second]
    assert first.launched == at(5)
    assert second.launched == at(5)
    assert registry.get("t1") is first
    assert registry.get("t3") is None


def test_add_running_registers_without_relaunching() -> None:
    registry = TaskRegistry()
    known = task("t1")
    known.launch(T0)
    registry.add_running(known)
    assert registry.get("t1") is known
    assert known.launched == T0


@pytest.mark.parametrize(
    ("state", "kept"),
    [
        (S.STAGING, True),
        (S.RUNNING, True),
        (S.FINISHED, False),
        (S.FAILED, False),
        (S.KILLED, False),
        (S.LOST, False),
    ],
    ids=[
        "staging-is-kept",
        "running-is-kept",
        "finished-is-removed",
        "failed-is-removed",
        "killed-is-removed",
        "lost-is-removed",
    ],
)
def test_task_update_removes_ended_and_lost_tasks(state: TaskStatus, kept: bool) -> None:
    registry = TaskRegistry()
    made = task("t1")
    registry.launch_tasks([made], T0)
    assert registry.handle_task_update(status("t1", state, at(1))) is made
    assert (registry.get("t1") is made) is kept
    assert made.last_status_update == (None if state is S.LOST else at(1))


def test_update_for_an_unknown_task_returns_none() -> None:
    registry = TaskRegistry()
    assert registry.handle_task_update(status("nope", S.FINISHED)) is None


def test_kill_reconcile_and_timeout_queries() -> None:
    registry = TaskRegistry()
    quiet, killed, staging = task("quiet"), task("killed"), task("staging")
    registry.launch_tasks([quiet, killed, staging], T0)
    registry.handle_task_update(status("quiet", S.RUNNING, T0))
    registry.handle_task_update(status("killed", S.RUNNING, T0))
    killed.force_kill()
    assert registry.get_tasks_to_kill() == [killed]
    assert registry.get_tasks_to_reconcile(at(31)) == [staging]
    assert registry.get_tasks_to_reconcile(T0 + timedelta(minutes=10, seconds=1)) == [
        quiet,
        killed,
        staging,
    ]
    assert registry.get_timeout_tasks(T0 + timedelta(minutes=2)) == []
    assert registry.get_timeout_tasks(T0 + timedelta(minutes=2, seconds=1)) == [staging]
    assert registry.get_tasks_to_kill() == [killed, staging]
