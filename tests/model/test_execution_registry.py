"""The registry of running job executions (spec §6.6; §12.2 defects 5 and 22 fixed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import (
    RESOURCE_STARVATION_THRESHOLD,
    ExecutionStatus,
    RunningJobExecution,
)
from loadmaster.model.gpus import GpuTable
from loadmaster.model.tasks import TaskStatus

from .support import T0, at, execution, launch_next, status

S = TaskStatus
X = ExecutionStatus
NODE = 1


def registry_with(*exes: RunningJobExecution) -> JobExecutionManager:
    manager = JobExecutionManager()
    manager.schedule_job_exes(exes)
    return manager


def test_scheduled_executions_are_running() -> None:
    first, second = execution(1, 10), execution(2, 20)
    manager = registry_with(first, second)
    assert manager.running() == [first, second]
    assert manager.get(2) is second
    assert manager.get(3) is None
    assert manager.for_task(first.tasks[2].id) is first


def test_updates_route_by_task_id_even_when_ids_contain_underscores() -> None:
    """Both cluster ids share their first four `_` segments (`loadmaster_job_my_fw`)."""
    first = execution(1, 5, framework_id="my_fw")
    second = execution(2, 6, framework_id="my_fw")
    third = execution(3, 5, framework_id="my_fw_2")
    manager = registry_with(first, second, third)
    for exe in (first, second, third):
        launch_next(exe)
    manager.handle_task_update(status(second.tasks[0].id, S.RUNNING, at(1)), at(1))
    manager.handle_task_update(status(third.tasks[0].id, S.FAILED, at(2), 1), at(2))
    assert second.tasks[0].has_started
    assert not first.tasks[0].has_started
    assert third.status is X.FAILED
    assert first.status is X.RUNNING
    assert second.status is X.RUNNING


def test_update_for_an_unknown_task_is_ignored() -> None:
    exe = execution()
    manager = registry_with(exe)
    launch_next(exe)
    assert manager.handle_task_update(status("loadmaster_job_fw_99x1_main", S.FAILED), T0) is None
    assert exe.status is X.RUNNING


def test_lost_task_keeps_routing_under_its_new_id() -> None:
    exe = execution()
    manager = registry_with(exe)
    first = launch_next(exe)
    old_id = first.id
    manager.handle_task_update(status(old_id, S.LOST, at(1)), at(1))
    assert manager.for_task(f"{old_id}_lost-1") is exe
    launch_next(exe, at(2))
    manager.handle_task_update(status(old_id, S.FINISHED, at(3)), at(3))  # the old incarnation
    assert exe.current is first
    manager.handle_task_update(status(f"{old_id}_lost-1", S.FINISHED, at(4)), at(4))
    assert exe.current is None
    assert exe.next_task() is exe.tasks[1]


def test_finished_execution_is_returned_removed_and_drained() -> None:
    exe = execution(is_system=True)
    manager = registry_with(exe)
    only = launch_next(exe)
    assert manager.handle_task_update(status(only.id, S.RUNNING), T0) is None
    assert manager.handle_task_update(status(only.id, S.FINISHED, at(1)), at(1)) is exe
    assert exe.status is X.COMPLETED
    assert manager.running() == []
    assert manager.for_task(only.id) is None
    assert manager.drain_finished() == [exe]
    assert manager.drain_finished() == []


def test_check_for_starvation_returns_only_starved_executions() -> None:
    starving, busy = execution(1, 10), execution(2, 20)
    manager = registry_with(starving, busy)
    done = launch_next(starving)
    manager.handle_task_update(status(done.id, S.FINISHED), T0)
    launch_next(busy)
    when = T0 + RESOURCE_STARVATION_THRESHOLD + timedelta(seconds=1)
    assert manager.check_for_starvation(T0 + RESOURCE_STARVATION_THRESHOLD) == []
    assert manager.check_for_starvation(when) == [starving]
    assert starving.error == "resource-starvation"
    assert manager.running() == [busy]


def test_lost_job_exes_returns_only_those_that_ended() -> None:
    between, live = execution(1, 10), execution(2, 20)
    manager = registry_with(between, live)
    done = launch_next(between)
    manager.handle_task_update(status(done.id, S.FINISHED), T0)
    current = launch_next(live)
    assert manager.lost_job_exes([1, 2, 99], at(1)) == [between]
    assert live.status is X.FAILED
    assert live.error == "node-lost"
    assert current.needs_killed()
    assert manager.running() == [live]
    assert manager.handle_task_update(status(current.id, S.KILLED, at(2)), at(2)) is live
    assert manager.running() == []


def test_cancel_returns_the_execution_only_when_nothing_is_left_to_kill() -> None:
    between, live = execution(1, 10), execution(2, 20)
    manager = registry_with(between, live)
    launch_next(live)
    assert manager.cancel(1, T0) is between
    assert manager.cancel(2, T0) is None
    assert live.status is X.CANCELED
    assert manager.cancel(99, T0) is None
    assert manager.running() == [live]


def test_timed_out_execution_stays_until_the_kill_update_arrives() -> None:
    exe = execution()
    manager = registry_with(exe)
    current = launch_next(exe)
    manager.handle_task_timeout(current, at(1))
    assert exe.status is X.FAILED
    assert exe.error == "launch-timeout"
    assert manager.running() == [exe]
    assert manager.handle_task_update(status(current.id, S.KILLED, at(2)), at(2)) is exe


def test_timeout_of_an_unknown_task_is_harmless() -> None:
    exe = execution()
    manager = registry_with(exe)
    other = execution(2, 20)
    manager.handle_task_timeout(other.tasks[0], T0)
    assert exe.status is X.RUNNING


# -- GPUs are released on every way an execution ends (defect 5) --------------------------------


def _complete(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    for index in range(len(exe.tasks)):
        current = launch_next(exe, at(index))
        manager.handle_task_update(status(current.id, S.FINISHED, at(index)), at(index))


def _fail(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.handle_task_update(status(current.id, S.FAILED, at(1), 1), at(1))


def _starve(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.handle_task_update(status(current.id, S.FINISHED), T0)
    manager.check_for_starvation(T0 + timedelta(hours=1))


def _lost_between_tasks(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.handle_task_update(status(current.id, S.FINISHED), T0)
    manager.lost_job_exes([exe.id], at(1))


def _lost_while_running(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.lost_job_exes([exe.id], at(1))
    manager.handle_task_update(status(current.id, S.LOST, at(2)), at(2))


def _canceled_between_tasks(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    manager.cancel(exe.id, T0)


def _canceled_while_running(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.cancel(exe.id, at(1))
    manager.handle_task_update(status(current.id, S.KILLED, at(2)), at(2))


def _timed_out(manager: JobExecutionManager, exe: RunningJobExecution) -> None:
    current = launch_next(exe)
    manager.handle_task_timeout(current, at(1))
    manager.handle_task_update(status(current.id, S.KILLED, at(2)), at(2))


@pytest.mark.parametrize(
    ("end", "expected_status"),
    [
        (_complete, X.COMPLETED),
        (_fail, X.FAILED),
        (_starve, X.FAILED),
        (_lost_between_tasks, X.FAILED),
        (_lost_while_running, X.FAILED),
        (_canceled_between_tasks, X.CANCELED),
        (_canceled_while_running, X.CANCELED),
        (_timed_out, X.FAILED),
    ],
    ids=[
        "completed",
        "failed",
        "starved",
        "lost-between-tasks",
        "lost-while-a-task-runs",
        "canceled-between-tasks",
        "canceled-while-a-task-runs",
        "timed-out-and-killed",
    ],
)
def test_gpus_are_released_however_the_execution_ends(
    end: Callable[[JobExecutionManager, RunningJobExecution], None],
    expected_status: ExecutionStatus,
) -> None:
    gpus = GpuTable()
    gpus.define_node_gpus(NODE, 2)
    assert gpus.reserve(NODE, queue_id=1, count=1)
    assert gpus.assign(NODE, queue_id=1, job_id=10) == [0]
    assert gpus.reserve(NODE, queue_id=2, count=1)
    assert gpus.assign(NODE, queue_id=2, job_id=20) == [1]
    manager = JobExecutionManager(gpus=gpus)
    exe = execution(1, 10, node_id=NODE)
    bystander = execution(2, 20, node_id=NODE)
    manager.schedule_job_exes([exe, bystander])
    end(manager, exe)
    assert exe.status is expected_status
    assert exe.is_finished()
    assert manager.get(exe.id) is None
    assert manager.drain_finished() == [exe]
    assert gpus.visible_devices(NODE, 10) == ""
    assert gpus.visible_devices(NODE, 20) == "1"
    assert gpus.available(NODE) == 1


def test_gpus_stay_assigned_while_a_timed_out_task_is_still_alive() -> None:
    gpus = GpuTable()
    gpus.define_node_gpus(NODE, 1)
    assert gpus.reserve(NODE, queue_id=1, count=1)
    gpus.assign(NODE, queue_id=1, job_id=10)
    manager = JobExecutionManager(gpus=gpus)
    exe = execution(1, 10, node_id=NODE)
    manager.schedule_job_exes([exe])
    manager.handle_task_timeout(launch_next(exe), at(1))
    assert gpus.visible_devices(NODE, 10) == "0"
