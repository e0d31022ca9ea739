"""Running job executions and their task sequence (spec §1.3 per-task resources, §6.4, §6.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmaster.model.errors import BUILTIN_ERRORS
from loadmaster.model.executions import (
    PRE_POST_TIMEOUT,
    PULL_TIMEOUT,
    RESOURCE_STARVATION_THRESHOLD,
    ExecutionStatus,
    RunningJobExecution,
    StepEnvironment,
    allocated_environment,
    cluster_id_for,
    task_resources,
    tasks_of,
)
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources

from .support import T0, at, execution, launch_next, spec, status

S = TaskStatus
X = ExecutionStatus
SECOND = timedelta(seconds=1)
FULL = Resources.of(cpus=2.0, mem=1024.0, disk=100.0, gpus=1.0, foo=3.0)


def test_thresholds_match_the_spec() -> None:
    assert timedelta(minutes=10) == RESOURCE_STARVATION_THRESHOLD
    assert timedelta(minutes=30) == PULL_TIMEOUT
    assert timedelta(hours=1) == PRE_POST_TIMEOUT


# -- per-task resources and environment ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("pull", FULL),
        ("pre", FULL),
        ("main", FULL.with_value("disk", 70.0)),
        ("post", FULL.with_value("disk", 0.0)),
    ],
    ids=[
        "pull-gets-the-full-resources",
        "pre-gets-the-full-resources",
        "main-gets-disk-minus-input-size",
        "post-gets-no-disk",
    ],
)
def test_task_resources(kind: str, expected: Resources) -> None:
    assert task_resources(kind, FULL, input_file_size_mib=30.0) == expected


def test_tasks_of_a_regular_execution_get_their_own_resources() -> None:
    exe = execution(resources=FULL, input_file_size_mib=30.0)
    assert [(t.kind, t.resources.disk) for t in exe.tasks] == [
        ("pull", 100.0),
        ("pre", 100.0),
        ("main", 70.0),
        ("post", 0.0),
    ]
    assert all(t.resources.cpus == 2.0 and t.resources.get("foo") == 3.0 for t in exe.tasks)


def test_system_execution_has_only_a_main_task_with_the_full_resources() -> None:
    exe = execution(resources=FULL, input_file_size_mib=30.0, is_system=True)
    assert [t.kind for t in exe.tasks] == ["main"]
    assert exe.tasks[0].resources == FULL


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            Resources.of(cpus=0.25, mem=128.0),
            {
                "ALLOCATED_CPUS": "0.2",
                "ALLOCATED_MEM": "128.0",
                "ALLOCATED_DISK": "0.0",
                "ALLOCATED_GPUS": "0.0",
            },
        ),
        (
            Resources.of(cpus=1.0, mem=1024.5, disk=7.77, foo=2.0),
            {
                "ALLOCATED_CPUS": "1.0",
                "ALLOCATED_MEM": "1024.5",
                "ALLOCATED_DISK": "7.8",
                "ALLOCATED_GPUS": "0.0",
                "ALLOCATED_FOO": "2.0",
            },
        ),
    ],
    ids=["standard-names-one-decimal", "custom-names-upper-cased"],
)
def test_allocated_environment(resources: Resources, expected: dict[str, str]) -> None:
    assert allocated_environment(resources) == expected


def test_every_task_gets_its_own_allocated_environment() -> None:
    exe = execution(resources=FULL, input_file_size_mib=30.0)
    by_kind = {t.kind: t.environment for t in exe.tasks}
    assert by_kind["pre"]["ALLOCATED_DISK"] == "100.0"
    assert by_kind["main"]["ALLOCATED_DISK"] == "70.0"
    assert by_kind["post"]["ALLOCATED_DISK"] == "0.0"
    assert by_kind["main"]["ALLOCATED_FOO"] == "3.0"


def test_task_ids_and_agent() -> None:
    exe = execution(framework_id="fw", job_id=12, exe_num=3, agent_id="agent-9")
    assert cluster_id_for("fw", 12, 3) == "loadmaster_job_fw_12x3"
    assert [t.id for t in exe.tasks] == [
        "loadmaster_job_fw_12x3_pull",
        "loadmaster_job_fw_12x3_pre",
        "loadmaster_job_fw_12x3_main",
        "loadmaster_job_fw_12x3_post",
    ]
    assert {t.agent_id for t in exe.tasks} == {"agent-9"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"timeout_seconds": 600.0},
            {
                "pull": PULL_TIMEOUT,
                "pre": PRE_POST_TIMEOUT,
                "main": timedelta(seconds=600),
                "post": PRE_POST_TIMEOUT,
            },
        ),
        ({"timeout_seconds": 600.0, "is_long_running": True}, {"main": None}),
        ({"timeout_seconds": None}, {"main": None}),
    ],
    ids=[
        "pull-30min-pre-post-1h-main-its-timeout",
        "long-running-main-has-no-timeout",
        "main-without-timeout-has-none",
    ],
)
def test_running_timeouts(options: dict[str, Any], expected: dict[str, timedelta | None]) -> None:
    exe = execution(**options)
    by_kind = {t.kind: t.running_timeout for t in exe.tasks}
    for kind, timeout in expected.items():
        assert by_kind[kind] == timeout


# -- task sequence ------------------------------------------------------------------------------


def test_next_task_does_not_change_state() -> None:
    exe = execution()
    assert exe.next_task() is exe.tasks[0]
    assert exe.next_task() is exe.tasks[0]
    assert exe.current is None
    assert exe.is_next_task_ready()
    assert not exe.is_finished()


def test_start_next_task_pops_the_first_remaining_task() -> None:
    exe = execution()
    started = exe.start_next_task()
    assert started is exe.tasks[0]
    assert exe.current is started
    assert exe.remaining == exe.tasks[1:]
    assert not exe.is_next_task_ready()
    assert exe.start_next_task() is None  # one task at a time
    assert exe.current is started


def test_finishing_every_task_completes_the_execution() -> None:
    exe = execution()
    for index, kind in enumerate(["pull", "pre", "main", "post"]):
        running = launch_next(exe, at(index * 10))
        assert running.kind == kind
        exe.task_update(status(running.id, S.RUNNING, at(index * 10 + 1)), at(index * 10 + 1))
        assert exe.status is X.RUNNING
        exe.task_update(status(running.id, S.FINISHED, at(index * 10 + 5)), at(index * 10 + 5))
        assert exe.current is None
        assert exe.last_task_finished == at(index * 10 + 5)
    assert exe.status is X.COMPLETED
    assert exe.finished == at(35)
    assert exe.error is None
    assert exe.is_finished()
    assert exe.start_next_task() is None


def test_update_for_another_task_is_ignored() -> None:
    exe = execution()
    current = launch_next(exe)
    exe.task_update(status(exe.tasks[1].id, S.FAILED), T0)
    exe.task_update(status("unrelated", S.FINISHED), T0)
    assert exe.current is current
    assert exe.status is X.RUNNING


def test_lost_task_gets_a_new_id_and_goes_back_to_the_head() -> None:
    exe = execution()
    first = launch_next(exe)
    base = first.id
    exe.task_update(status(base, S.RUNNING, at(1)), at(1))
    exe.task_update(status(base, S.LOST, at(2)), at(2))
    assert first.id == f"{base}_lost-1"
    assert exe.current is None
    assert exe.remaining[0] is first
    assert len(exe.remaining) == 4
    assert not first.has_been_launched
    assert not first.has_started
    assert exe.last_task_finished == at(2)
    assert exe.status is X.RUNNING
    again = launch_next(exe, at(3))
    assert again is first
    exe.task_update(status(f"{base}_lost-1", S.LOST, at(4)), at(4))
    assert first.id == f"{base}_lost-2"


def test_late_update_of_a_lost_incarnation_is_ignored() -> None:
    exe = execution()
    first = launch_next(exe)
    old_id = first.id
    exe.task_update(status(old_id, S.LOST, at(1)), at(1))
    launch_next(exe, at(2))
    exe.task_update(status(old_id, S.FAILED, at(3)), at(3))
    assert exe.status is X.RUNNING
    assert exe.current is first


def test_lost_after_a_final_status_is_not_relaunched() -> None:
    exe = execution()
    current = launch_next(exe)
    exe.execution_canceled(at(1))
    exe.task_update(status(current.id, S.LOST, at(2)), at(2))
    assert exe.status is X.CANCELED
    assert exe.remaining == []
    assert exe.is_finished()


@pytest.mark.parametrize(
    ("position", "started", "final", "exit_code", "expected_error"),
    [
        (0, False, S.FAILED, None, "pull"),
        (0, True, S.FAILED, 1, "pull"),
        (1, False, S.FAILED, None, "task-launch"),
        (1, True, S.FAILED, 1, "pre"),
        (1, True, S.KILLED, None, "unknown"),
        (2, False, S.FAILED, None, "task-launch"),
        (2, True, S.FAILED, 1, "algorithm-unknown"),
        (2, True, S.KILLED, None, "algorithm-unknown"),
        (3, True, S.FAILED, 2, "post"),
        (3, False, S.KILLED, None, "task-launch"),
    ],
    ids=[
        "pull-failure-is-always-pull",
        "pull-failure-after-start-is-pull",
        "pre-that-never-ran-is-a-launch-failure",
        "pre-non-zero-exit-is-pre",
        "pre-killed-without-exit-code-is-unknown",
        "main-that-never-ran-is-a-launch-failure",
        "main-non-zero-exit-is-algorithm-unknown",
        "main-killed-after-start-is-algorithm-unknown",
        "post-non-zero-exit-is-post",
        "post-killed-before-start-is-a-launch-failure",
    ],
)
def test_failed_or_killed_task_fails_the_execution(
    position: int, started: bool, final: TaskStatus, exit_code: int | None, expected_error: str
) -> None:
    exe = execution()
    for _ in range(position):
        done = launch_next(exe)
        exe.task_update(status(done.id, S.FINISHED), T0)
    failing = launch_next(exe, at(1))
    if started:
        exe.task_update(status(failing.id, S.RUNNING, at(2)), at(2))
    exe.task_update(status(failing.id, final, at(3), exit_code), at(3))
    assert exe.status is X.FAILED
    assert exe.error == expected_error
    assert expected_error in BUILTIN_ERRORS
    assert exe.finished == at(3)
    assert exe.last_task_finished == at(3)
    assert exe.current is None
    assert exe.remaining == []
    assert exe.is_finished()


# -- starvation ---------------------------------------------------------------------------------


def after_first_task(finished_at: datetime = T0) -> RunningJobExecution:
    exe = execution()
    first = launch_next(exe, finished_at - SECOND)
    exe.task_update(status(first.id, S.FINISHED, finished_at), finished_at)
    return exe


def never_started() -> RunningJobExecution:
    return execution()


def with_current_task() -> RunningJobExecution:
    exe = after_first_task()
    launch_next(exe, at(1))
    return exe


def completed() -> RunningJobExecution:
    exe = execution(is_system=True)
    only = launch_next(exe)
    exe.task_update(status(only.id, S.FINISHED), T0)
    return exe


def after_lost_task() -> RunningJobExecution:
    exe = execution()
    first = launch_next(exe)
    exe.task_update(status(first.id, S.LOST), T0)
    return exe


@pytest.mark.parametrize(
    ("make", "when", "starved"),
    [
        (after_first_task, T0 + RESOURCE_STARVATION_THRESHOLD, False),
        (after_first_task, T0 + RESOURCE_STARVATION_THRESHOLD + SECOND, True),
        (never_started, T0 + timedelta(days=1), False),
        (with_current_task, T0 + timedelta(days=1), False),
        (completed, T0 + timedelta(days=1), False),
        (after_lost_task, T0 + RESOURCE_STARVATION_THRESHOLD + SECOND, True),
    ],
    ids=[
        "waiting-10min-after-a-task-finished-is-fine",
        "waiting-over-10min-after-a-task-finished-starves",
        "first-task-never-launched-never-starves",
        "a-current-task-never-starves",
        "nothing-remaining-never-starves",
        "lost-task-counts-as-finished-for-starvation",
    ],
)
def test_check_for_starvation(
    make: Callable[[], RunningJobExecution], when: datetime, starved: bool
) -> None:
    exe = make()
    before = exe.status
    assert exe.check_for_starvation(when) is starved
    assert exe.starved is starved
    if starved:
        assert exe.status is X.FAILED
        assert exe.error == "resource-starvation"
        assert exe.finished == when
        assert exe.is_finished()
    else:
        assert exe.status is before


def test_once_starved_stays_starved() -> None:
    exe = after_first_task()
    assert exe.check_for_starvation(T0 + timedelta(hours=1))
    assert exe.check_for_starvation(T0)
    assert exe.error == "resource-starvation"


# -- cancel, lost, timeout ----------------------------------------------------------------------


def test_cancel_force_kills_the_current_task_and_keeps_it() -> None:
    exe = execution()
    current = launch_next(exe)
    exe.execution_canceled(at(5))
    assert exe.status is X.CANCELED
    assert exe.error is None
    assert exe.finished == at(5)
    assert exe.current is current
    assert current.needs_killed()
    assert exe.remaining == []
    assert not exe.is_finished()
    exe.task_update(status(current.id, S.KILLED, at(6)), at(6))
    assert exe.is_finished()
    assert exe.status is X.CANCELED


def test_cancel_between_tasks_finishes_at_once() -> None:
    exe = after_first_task()
    exe.execution_canceled(at(5))
    assert exe.is_finished()
    assert exe.status is X.CANCELED


def test_lost_execution_reconciles_and_kills_its_current_task() -> None:
    exe = execution()
    current = launch_next(exe)
    exe.execution_lost(at(5))
    assert exe.status is X.FAILED
    assert exe.error == "node-lost"
    assert current.needs_reconciliation(at(5))
    assert current.needs_killed()
    assert not exe.is_finished()


@pytest.mark.parametrize(
    ("position", "started", "is_system", "expected_error"),
    [
        (0, False, False, "launch-timeout"),
        (0, True, False, "pull-timeout"),
        (1, True, False, "pre-timeout"),
        (2, True, False, "timeout"),
        (2, False, False, "launch-timeout"),
        (3, True, False, "post-timeout"),
        (0, True, True, "system-timeout"),
        (0, False, True, "launch-timeout"),
    ],
    ids=[
        "never-started-is-a-launch-timeout",
        "pull-timeout",
        "pre-timeout",
        "main-of-a-regular-job-is-timeout",
        "main-never-started-is-a-launch-timeout",
        "post-timeout",
        "main-of-a-system-job-is-system-timeout",
        "system-main-never-started-is-a-launch-timeout",
    ],
)
def test_timeout_error(position: int, started: bool, is_system: bool, expected_error: str) -> None:
    exe = execution(is_system=is_system)
    for _ in range(position):
        done = launch_next(exe)
        exe.task_update(status(done.id, S.FINISHED), T0)
    current = launch_next(exe, at(1))
    if started:
        exe.task_update(status(current.id, S.RUNNING, at(2)), at(2))
    exe.execution_timed_out(current, at(3))
    assert exe.status is X.FAILED
    assert exe.error == expected_error
    assert expected_error in BUILTIN_ERRORS
    assert exe.current is current  # it stays until the kill's update arrives
    assert not exe.is_finished()


@pytest.mark.parametrize(
    ("first", "second", "expected_status", "expected_error"),
    [
        ("cancel", "lost", X.CANCELED, None),
        ("lost", "cancel", X.FAILED, "node-lost"),
        ("timeout", "cancel", X.FAILED, "pull-timeout"),
        ("cancel", "timeout", X.CANCELED, None),
        ("lost", "timeout", X.FAILED, "node-lost"),
    ],
    ids=[
        "canceled-then-lost-stays-canceled",
        "lost-then-canceled-stays-lost",
        "timed-out-then-canceled-stays-timed-out",
        "canceled-then-timed-out-stays-canceled",
        "lost-then-timed-out-keeps-the-first-error",
    ],
)
def test_final_status_is_only_set_once(
    first: str, second: str, expected_status: ExecutionStatus, expected_error: str | None
) -> None:
    exe = execution()
    current = launch_next(exe)
    current.update(status(current.id, S.RUNNING))
    for step, when in ((first, at(1)), (second, at(2))):
        if step == "cancel":
            exe.execution_canceled(when)
        elif step == "lost":
            exe.execution_lost(when)
        else:
            exe.execution_timed_out(current, when)
    assert exe.status is expected_status
    assert exe.error == expected_error
    assert exe.finished == at(1)


def test_current_or_next_resources_and_tasks_of() -> None:
    exe = execution(resources=FULL, input_file_size_mib=30.0)
    other = execution(exe_id=2, job_id=20)
    assert exe.current_or_next_resources() == FULL
    launch_next(exe)
    assert exe.current_or_next_resources() == FULL
    assert tasks_of([exe, other]) == [exe.current]
    done = completed()
    assert done.current_or_next_resources() is None


# -- StepEnvironment: a step's environment without a merged dict --------------------------------

_env_keys = st.sampled_from(
    ["A", "B", "ALLOCATED_CPUS", "ALLOCATED_DISK", "X", "LOADMASTER_JOB_ID"]
)
_envs = st.dictionaries(_env_keys, st.text(max_size=3))


@given(_envs, _envs)
def test_step_environment_reads_as_the_merged_dict(
    base: dict[str, str], allocated: dict[str, str]
) -> None:
    """Same keys in the same order, same values, same length and membership as
    `{**base, **allocated}`, and equal to it both ways."""
    merged = {**base, **allocated}
    env = StepEnvironment(base, allocated)
    assert list(env.items()) == list(merged.items())
    assert len(env) == len(merged) and dict(env) == merged
    assert env == merged and merged == env
    for key in ["A", "B", "ALLOCATED_CPUS", "ALLOCATED_DISK", "X", "LOADMASTER_JOB_ID", "none"]:
        assert (key in env) == (key in merged)
        assert env.get(key) == merged.get(key)
    with pytest.raises(KeyError):
        env["none"]


def test_steps_see_the_execution_environment_with_their_own_allocation() -> None:
    made = spec(1, 7, resources=Resources.of(cpus=2.0, mem=64.0, disk=10.0))
    exe = RunningJobExecution.create(replace(made, environment={"LOADMASTER_JOB_ID": "7"}))
    envs = {t.kind: dict(t.environment) for t in exe.tasks}
    assert envs["main"]["ALLOCATED_DISK"] == "10.0" and envs["post"]["ALLOCATED_DISK"] == "0.0"
    assert all(env["LOADMASTER_JOB_ID"] == "7" for env in envs.values())
