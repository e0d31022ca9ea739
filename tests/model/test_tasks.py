"""Tasks and their status updates (spec §6.1, §6.2)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from loadmaster.model.tasks import (
    DEFAULT_RUNNING_TIMEOUT,
    DEFAULT_STAGING_TIMEOUT,
    RECONCILE_RUNNING_AFTER,
    RECONCILE_STAGING_AFTER,
    Task,
    TaskStatus,
    exit_code_from_message,
    status_from_mesos,
)

from .support import T0, at, status, task

S = TaskStatus
SECOND = timedelta(seconds=1)


def launched(when: datetime = T0, **kwargs: Any) -> Task:
    made = task("t1", **kwargs)
    made.launch(when)
    return made


def running(started: datetime = T0, **kwargs: Any) -> Task:
    made = launched(started, **kwargs)
    made.update(status("t1", S.RUNNING, started))
    return made


def test_defaults_match_the_spec() -> None:
    assert timedelta(hours=1) == DEFAULT_RUNNING_TIMEOUT
    assert timedelta(minutes=2) == DEFAULT_STAGING_TIMEOUT
    assert timedelta(seconds=30) == RECONCILE_STAGING_AFTER
    assert timedelta(minutes=10) == RECONCILE_RUNNING_AFTER
    made = task()
    assert made.running_timeout == DEFAULT_RUNNING_TIMEOUT
    assert made.staging_timeout == DEFAULT_STAGING_TIMEOUT


def test_launch_marks_launched_and_last_status_update() -> None:
    made = task()
    assert not made.has_been_launched
    made.launch(at(5))
    assert made.has_been_launched
    assert made.launched == at(5)
    assert made.last_status_update == at(5)
    assert not made.has_started
    assert not made.has_ended


@pytest.mark.parametrize(
    "kind",
    ["pull", "pre", "main", "post"],
    ids=lambda k: f"{k}-is-a-job-task",
)
def test_job_task_kinds(kind: str) -> None:
    assert task(kind=kind).is_job_task


@pytest.mark.parametrize(
    "kind", ["health", "cleanup", "image-pull", "db-update"], ids=lambda k: f"{k}-is-not"
)
def test_other_kinds_are_not_job_tasks(kind: str) -> None:
    assert not task(kind=kind).is_job_task


# -- update transitions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updates", "launched_at", "started", "ended", "final", "exit_code"),
    [
        ([(S.STAGING, 1, None)], T0, None, None, None, None),
        ([(S.RUNNING, 2, None)], T0, at(2), None, None, None),
        ([(S.RUNNING, 2, None), (S.RUNNING, 9, None)], T0, at(2), None, None, None),
        ([(S.RUNNING, 2, None), (S.FINISHED, 5, 0)], T0, at(2), at(5), S.FINISHED, 0),
        ([(S.RUNNING, 2, None), (S.FAILED, 5, 3)], T0, at(2), at(5), S.FAILED, 3),
        ([(S.KILLED, 5, None)], T0, None, at(5), S.KILLED, None),
        ([(S.RUNNING, 2, None), (S.LOST, 5, None)], None, None, None, None, None),
        (
            [(S.FAILED, 5, 1), (S.RUNNING, 6, None), (S.FINISHED, 7, 0)],
            T0,
            None,
            at(5),
            S.FAILED,
            1,
        ),
        ([(S.FINISHED, 5, 0), (S.LOST, 6, None)], T0, None, at(5), S.FINISHED, 0),
    ],
    ids=[
        "staging-changes-nothing-but-the-update-time",
        "running-sets-started",
        "only-the-first-running-sets-started",
        "finished-ends-with-status-and-exit-code",
        "failed-ends-with-status-and-exit-code",
        "killed-ends-even-before-running",
        "lost-resets-to-never-launched",
        "updates-after-the-end-change-nothing",
        "lost-after-the-end-changes-nothing",
    ],
)
def test_update_transitions(
    updates: list[tuple[TaskStatus, float, int | None]],
    launched_at: datetime | None,
    started: datetime | None,
    ended: datetime | None,
    final: TaskStatus | None,
    exit_code: int | None,
) -> None:
    made = launched(T0)
    for state, seconds, code in updates:
        made.update(status("t1", state, at(seconds), code))
    assert made.launched == launched_at
    assert made.started == started
    assert made.ended == ended
    assert made.final_status == final
    assert made.exit_code == exit_code


def test_update_for_another_id_is_ignored() -> None:
    made = launched(T0)
    made.force_reconciliation()
    made.update(status("other", S.RUNNING, at(3)))
    assert not made.has_started
    assert made.last_status_update == T0
    assert made.needs_reconciliation(T0)


def test_update_clears_forced_reconciliation_and_records_the_time() -> None:
    made = launched(T0)
    made.force_reconciliation()
    made.update(status("t1", S.STAGING, at(3)))
    assert made.last_status_update == at(3)
    assert not made.needs_reconciliation(at(4))


def test_update_after_the_end_still_records_the_time() -> None:
    made = launched(T0)
    made.update(status("t1", S.FINISHED, at(3)))
    made.update(status("t1", S.RUNNING, at(8)))
    assert made.last_status_update == at(8)
    assert not made.has_started


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (S.STAGING, False),
        (S.RUNNING, False),
        (S.FINISHED, True),
        (S.FAILED, True),
        (S.KILLED, True),
        (S.LOST, False),
        (S.UNKNOWN, False),
    ],
    ids=[
        "staging-not-terminal",
        "running-not-terminal",
        "finished-terminal",
        "failed-terminal",
        "killed-terminal",
        "lost-is-not-terminal",
        "unknown-not-terminal",
    ],
)
def test_terminal_statuses(state: TaskStatus, terminal: bool) -> None:
    assert state.is_terminal is terminal


# -- timeouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "when", "expected"),
    [
        (task(), at(10_000), False),
        (launched(T0), T0 + DEFAULT_STAGING_TIMEOUT, False),
        (launched(T0), T0 + DEFAULT_STAGING_TIMEOUT + SECOND, True),
        (running(T0), T0 + DEFAULT_STAGING_TIMEOUT + SECOND, False),
        (running(T0), T0 + DEFAULT_RUNNING_TIMEOUT, False),
        (running(T0), T0 + DEFAULT_RUNNING_TIMEOUT + SECOND, True),
        (running(T0, running_timeout=None), T0 + timedelta(days=30), False),
        (launched(T0, staging_timeout=None), T0 + timedelta(days=30), False),
        (running(T0, running_timeout=timedelta(seconds=5)), at(6), True),
    ],
    ids=[
        "never-launched-never-times-out",
        "staging-at-2min-not-yet",
        "staging-over-2min-times-out",
        "running-is-not-held-to-the-staging-limit",
        "running-at-1h-not-yet",
        "running-over-1h-times-out",
        "no-running-timeout-never",
        "no-staging-timeout-never",
        "custom-running-timeout",
    ],
)
def test_check_timeout(made: Task, when: datetime, expected: bool) -> None:
    assert made.check_timeout(when) is expected
    assert made.has_timed_out is expected
    assert made.needs_killed() is expected


def test_running_time_is_measured_from_the_start_not_the_launch() -> None:
    made = launched(T0)
    made.update(status("t1", S.RUNNING, at(100)))
    assert not made.check_timeout(at(100) + DEFAULT_RUNNING_TIMEOUT)
    assert made.check_timeout(at(101) + DEFAULT_RUNNING_TIMEOUT)


def test_timed_out_stays_timed_out_until_it_ends() -> None:
    made = launched(T0)
    assert made.check_timeout(at(1000))
    assert made.check_timeout(at(1001))
    made.update(status("t1", S.RUNNING, at(1002)))
    assert made.check_timeout(at(1003))
    made.update(status("t1", S.KILLED, at(1004)))
    assert made.check_timeout(at(1005))
    assert not made.needs_killed()


def test_ended_task_never_times_out() -> None:
    made = launched(T0)
    made.update(status("t1", S.FINISHED, at(1)))
    assert not made.check_timeout(at(100_000))


# -- kills and reconciliation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("made", "force", "expected"),
    [
        (task(), True, False),
        (launched(T0), False, False),
        (launched(T0), True, True),
        (running(T0), True, True),
    ],
    ids=[
        "never-launched-is-never-killed",
        "launched-without-a-reason-is-not-killed",
        "forced-kill-of-a-launched-task",
        "forced-kill-of-a-running-task",
    ],
)
def test_needs_killed(made: Task, force: bool, expected: bool) -> None:
    if force:
        made.force_kill()
    assert made.needs_killed() is expected


@pytest.mark.parametrize(
    "final", [S.FINISHED, S.FAILED, S.KILLED], ids=lambda s: f"{s.lower()}-task-is-not-killed"
)
def test_ended_task_needs_no_kill(final: TaskStatus) -> None:
    made = running(T0)
    made.force_kill()
    made.update(status("t1", final, at(1)))
    assert not made.needs_killed()


def test_lost_task_needs_no_kill() -> None:
    made = running(T0)
    made.force_kill()
    made.update(status("t1", S.LOST, at(1)))
    assert not made.has_been_launched
    assert not made.needs_killed()


@pytest.mark.parametrize(
    ("made", "when", "expected"),
    [
        (task(), at(10_000), False),
        (launched(T0), T0 + RECONCILE_STAGING_AFTER, False),
        (launched(T0), T0 + RECONCILE_STAGING_AFTER + SECOND, True),
        (running(T0), T0 + RECONCILE_STAGING_AFTER + SECOND, False),
        (running(T0), T0 + RECONCILE_RUNNING_AFTER, False),
        (running(T0), T0 + RECONCILE_RUNNING_AFTER + SECOND, True),
    ],
    ids=[
        "never-launched-is-never-reconciled",
        "staging-for-30s-not-yet",
        "staging-over-30s-reconciled",
        "running-is-not-held-to-the-staging-limit",
        "running-silent-for-10min-not-yet",
        "running-silent-over-10min-reconciled",
    ],
)
def test_needs_reconciliation(made: Task, when: datetime, expected: bool) -> None:
    assert made.needs_reconciliation(when) is expected


def test_reconciliation_counts_from_the_last_status_update() -> None:
    made = running(T0)
    made.update(status("t1", S.RUNNING, at(500)))
    assert not made.needs_reconciliation(at(500) + RECONCILE_RUNNING_AFTER)
    assert made.needs_reconciliation(at(501) + RECONCILE_RUNNING_AFTER)


def test_forced_reconciliation_is_immediate_but_not_before_launch() -> None:
    made = task()
    made.force_reconciliation()
    assert not made.needs_reconciliation(T0)
    made.launch(T0)
    made.force_reconciliation()
    assert made.needs_reconciliation(T0)


# -- status updates from the cluster ------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("TASK_STAGING", S.STAGING),
        ("TASK_STARTING", S.STAGING),
        ("TASK_RUNNING", S.RUNNING),
        ("TASK_FINISHED", S.FINISHED),
        ("TASK_FAILED", S.FAILED),
        ("TASK_ERROR", S.FAILED),
        ("TASK_KILLED", S.KILLED),
        ("TASK_LOST", S.LOST),
        ("TASK_KILLING", S.UNKNOWN),
        ("task_running", S.UNKNOWN),
        ("", S.UNKNOWN),
    ],
    ids=[
        "staging",
        "starting-is-staging",
        "running",
        "finished",
        "failed",
        "error-is-failed",
        "killed",
        "lost",
        "other-state-is-unknown",
        "lowercase-is-unknown",
        "empty-is-unknown",
    ],
)
def test_mesos_state_mapping(state: str, expected: TaskStatus) -> None:
    assert status_from_mesos(state) is expected


@pytest.mark.parametrize(
    ("message", "state", "expected"),
    [
        ("Command exited with status 3", S.FAILED, 3),
        ("Container exited with status 0", S.FINISHED, 0),
        ("exited with status 137 (killed)", S.KILLED, 137),
        ("exited with status -1", S.FAILED, -1),
        (None, S.FINISHED, 0),
        ("all good", S.FINISHED, 0),
        (None, S.FAILED, None),
        ("exited with status x", S.FAILED, None),
        ("Exited With Status 3", S.FAILED, None),
    ],
    ids=[
        "code-is-parsed",
        "zero-code-is-parsed",
        "code-with-trailing-text",
        "negative-code",
        "finished-without-message-is-exit-0",
        "finished-without-code-is-exit-0",
        "failed-without-message-has-no-code",
        "unparsable-code-is-none",
        "pattern-is-case-sensitive",
    ],
)
def test_exit_code_parsing(message: str | None, state: TaskStatus, expected: int | None) -> None:
    assert exit_code_from_message(message, state) == expected
