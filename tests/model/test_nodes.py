"""Nodes: state rules, readiness, node-task due rules and task updates (spec §3.3, §3.5)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from loadmaster.model.node_conditions import WARNING_EXPIRY, NodeErrorName
from loadmaster.model.nodes import (
    CLEANUP,
    CLEANUP_ERR_THRESHOLD,
    HEALTH,
    HEALTH_ERR_THRESHOLD,
    IMAGE_PULL,
    IMAGE_PULL_ERR_THRESHOLD,
    MAX_JOB_EXES_PER_CLEANUP,
    NODE_REMOVAL_WITHOUT_OFFERS,
    NORMAL_HEALTH_THRESHOLD,
    Node,
    NodeRegistry,
    NodeState,
)
from loadmaster.model.tasks import Task, TaskStatus

from .support import T0, at, status, task

E = NodeErrorName
SECOND = timedelta(seconds=1)


def node(
    *,
    active: bool = True,
    online: bool = True,
    paused: bool = False,
    scheduler_paused: bool = False,
    cleaned: bool = True,
    pulled: bool = True,
    errors: Sequence[NodeErrorName] = (),
    agent_id: str = "agent-1",
) -> Node:
    built = Node(
        id=1,
        hostname="host-1",
        agent_id=agent_id,
        is_active=active,
        is_online=online,
        is_paused=paused,
        is_scheduler_paused=scheduler_paused,
        is_initial_cleanup_completed=cleaned,
        is_image_pulled=pulled,
    )
    for name in errors:
        built.conditions.activate_error(name, T0)
    return built


class FakeFactory:
    """Builds node tasks with predictable ids and records what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...], bool]] = []

    def _make(self, kind: str, owner: Node) -> Task:
        return task(f"{kind}-{len(self.calls)}", kind=kind, agent_id=owner.agent_id)

    def health_task(self, node: Node) -> Task:
        self.calls.append((HEALTH, (), False))
        return self._make(HEALTH, node)

    def image_pull_task(self, node: Node) -> Task:
        self.calls.append((IMAGE_PULL, (), False))
        return self._make(IMAGE_PULL, node)

    def cleanup_task(self, node: Node, execution_ids: Sequence[int], initial: bool) -> Task:
        self.calls.append((CLEANUP, tuple(execution_ids), initial))
        return self._make(CLEANUP, node)


def test_thresholds_match_the_spec() -> None:
    assert timedelta(minutes=2) == CLEANUP_ERR_THRESHOLD
    assert timedelta(minutes=2) == HEALTH_ERR_THRESHOLD
    assert timedelta(minutes=5) == NORMAL_HEALTH_THRESHOLD
    assert timedelta(minutes=5) == IMAGE_PULL_ERR_THRESHOLD
    assert timedelta(minutes=5) == NODE_REMOVAL_WITHOUT_OFFERS
    assert MAX_JOB_EXES_PER_CLEANUP == 25


# -- state rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (
            node(
                active=False,
                online=False,
                paused=True,
                scheduler_paused=True,
                errors=[E.CLEANUP],
                cleaned=False,
                pulled=False,
            ),
            NodeState.DEPRECATED,
        ),
        (
            node(online=False, paused=True, scheduler_paused=True, errors=[E.CLEANUP]),
            NodeState.OFFLINE,
        ),
        (node(paused=True, scheduler_paused=True, errors=[E.CLEANUP]), NodeState.PAUSED),
        (
            node(scheduler_paused=True, errors=[E.CLEANUP], cleaned=False),
            NodeState.SCHEDULER_STOPPED,
        ),
        (node(errors=[E.BAD_LOGSTASH], cleaned=False, pulled=False), NodeState.DEGRADED),
        (node(cleaned=False, pulled=False), NodeState.INITIAL_CLEANUP),
        (node(cleaned=False, pulled=True), NodeState.INITIAL_CLEANUP),
        (node(cleaned=True, pulled=False), NodeState.IMAGE_PULL),
        (node(), NodeState.READY),
    ],
    ids=[
        "1-not-active-is-deprecated-before-everything",
        "2-not-online-is-offline-before-paused",
        "3-node-paused-before-scheduler-paused",
        "4-scheduler-paused-before-errors",
        "5-active-error-is-degraded-before-cleanup",
        "6-initial-cleanup-not-completed",
        "6-initial-cleanup-even-with-image-pulled",
        "7-image-not-pulled",
        "8-otherwise-ready",
    ],
)
def test_state_first_matching_rule_wins(subject: Node, expected: NodeState) -> None:
    assert subject.state is expected


@pytest.mark.parametrize("error", list(NodeErrorName), ids=[f"{e}-degrades" for e in NodeErrorName])
def test_any_active_node_error_degrades(error: NodeErrorName) -> None:
    assert node(errors=[error]).state is NodeState.DEGRADED


def test_clearing_the_last_error_makes_the_node_ready_again() -> None:
    subject = node(errors=[E.IMAGE_PULL])
    subject.conditions.clear_error(E.IMAGE_PULL)
    assert subject.state is NodeState.READY


def test_every_state_has_a_title_and_description() -> None:
    for state in NodeState:
        assert state.display_title
        assert state.description
    assert "Existing jobs on the node will be failed" in NodeState.DEPRECATED.description


# -- readiness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "new_job", "system_task", "next_job_task"),
    [
        (node(active=False), False, False, False),
        (node(online=False), False, False, False),
        (node(paused=True), False, False, True),
        (node(paused=True, pulled=False), False, False, False),
        (node(scheduler_paused=True), False, False, True),
        (node(errors=[E.HEALTH_FAIL]), False, False, True),
        (node(errors=[E.IMAGE_PULL], pulled=False), False, False, False),
        (node(cleaned=False, pulled=False), False, False, False),
        (node(cleaned=False, pulled=True), False, False, True),
        (node(pulled=False), False, False, False),
        (node(), True, True, True),
    ],
    ids=[
        "deprecated-runs-nothing",
        "offline-runs-nothing",
        "paused-keeps-running-existing-executions",
        "paused-without-image-runs-nothing",
        "scheduler-stopped-keeps-running-existing-executions",
        "degraded-keeps-running-existing-executions",
        "degraded-without-image-runs-nothing",
        "initial-cleanup-without-image-runs-nothing",
        "initial-cleanup-with-image-runs-next-tasks",
        "image-pull-runs-nothing",
        "ready-runs-everything",
    ],
)
def test_readiness_predicates(
    subject: Node, new_job: bool, system_task: bool, next_job_task: bool
) -> None:
    assert subject.is_ready_for_new_job() is new_job
    assert subject.is_ready_for_system_task() is system_task
    assert subject.is_ready_for_next_job_task() is next_job_task


# -- node-task due rules ------------------------------------------------------------------------


def degraded_with_error(error: NodeErrorName, updated: datetime, **flags: Any) -> Node:
    subject = node(**flags)
    subject.conditions.activate_error(error, T0 - timedelta(hours=1))
    subject.conditions.activate_error(error, updated)  # refreshes last_updated
    return subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (node(active=False), False),
        (node(online=False), False),
        (node(paused=True), False),
        (node(scheduler_paused=True), False),
        (node(cleaned=False, pulled=False), True),
        (node(pulled=False), True),
        (node(), True),
        (node(errors=[E.BAD_LOGSTASH]), True),
        (node(errors=[E.LOW_DOCKER_SPACE]), True),
        (node(errors=[E.BAD_DAEMON]), False),
        (degraded_with_error(E.CLEANUP, T0 - CLEANUP_ERR_THRESHOLD), False),
        (degraded_with_error(E.CLEANUP, T0 - CLEANUP_ERR_THRESHOLD - SECOND), True),
        (degraded_with_error(E.CLEANUP, T0 - SECOND), False),
    ],
    ids=[
        "deprecated-no",
        "offline-no",
        "paused-no",
        "scheduler-stopped-no",
        "initial-cleanup-yes",
        "image-pull-yes",
        "ready-yes",
        "degraded-without-cleanup-error-yes",
        "degraded-pull-bad-but-daemon-fine-yes",
        "degraded-daemon-bad-no",
        "degraded-cleanup-error-updated-2min-ago-no",
        "degraded-cleanup-error-updated-over-2min-ago-yes",
        "degraded-cleanup-error-refreshed-recently-no",
    ],
)
def test_cleanup_due(subject: Node, expected: bool) -> None:
    assert subject.is_cleanup_due(T0) is expected


def health_checked(ago: timedelta, normal: bool, **flags: Any) -> Node:
    subject = node(**flags)
    subject.last_health_task = T0 - ago
    subject.is_health_normal = normal
    return subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (node(active=False), False),
        (node(online=False), False),
        (node(), True),
        (node(paused=True), True),
        (node(errors=[E.BAD_DAEMON]), True),
        (health_checked(NORMAL_HEALTH_THRESHOLD, normal=True), False),
        (health_checked(NORMAL_HEALTH_THRESHOLD + SECOND, normal=True), True),
        (health_checked(timedelta(minutes=3), normal=True), False),
        (health_checked(HEALTH_ERR_THRESHOLD, normal=False), False),
        (health_checked(HEALTH_ERR_THRESHOLD + SECOND, normal=False), True),
        (health_checked(timedelta(hours=1), normal=True, online=False), False),
    ],
    ids=[
        "deprecated-never",
        "offline-never",
        "never-run-is-due",
        "never-run-on-paused-node-is-due",
        "never-run-on-degraded-node-is-due",
        "normal-at-5min-not-due",
        "normal-over-5min-due",
        "normal-at-3min-not-due",
        "not-normal-at-2min-not-due",
        "not-normal-over-2min-due",
        "offline-never-even-when-overdue",
    ],
)
def test_health_due(subject: Node, expected: bool) -> None:
    assert subject.is_health_due(T0) is expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (node(pulled=False), True),
        (node(), False),
        (node(cleaned=False, pulled=False), False),
        (node(paused=True, pulled=False), False),
        (node(active=False, pulled=False), False),
        (node(errors=[E.BAD_LOGSTASH], pulled=False), True),
        (node(errors=[E.BAD_LOGSTASH], cleaned=False, pulled=False), False),
        (node(errors=[E.BAD_LOGSTASH]), False),
        (node(errors=[E.LOW_DOCKER_SPACE], pulled=False), False),
        (node(errors=[E.BAD_DAEMON], pulled=False), False),
        (degraded_with_error(E.IMAGE_PULL, T0 - IMAGE_PULL_ERR_THRESHOLD, pulled=False), False),
        (
            degraded_with_error(E.IMAGE_PULL, T0 - IMAGE_PULL_ERR_THRESHOLD - SECOND, pulled=False),
            True,
        ),
        (degraded_with_error(E.IMAGE_PULL, T0 - SECOND, pulled=False), False),
    ],
    ids=[
        "image-pull-state-yes",
        "ready-no",
        "initial-cleanup-no",
        "paused-no",
        "deprecated-no",
        "degraded-cleaned-not-pulled-yes",
        "degraded-initial-cleanup-not-done-no",
        "degraded-image-already-pulled-no",
        "degraded-pull-bad-no",
        "degraded-daemon-bad-no",
        "degraded-pull-error-updated-5min-ago-no",
        "degraded-pull-error-updated-over-5min-ago-yes",
        "degraded-pull-error-refreshed-recently-no",
    ],
)
def test_image_pull_due(subject: Node, expected: bool) -> None:
    assert subject.is_image_pull_due(T0) is expected


# -- get_next_tasks -----------------------------------------------------------------------------


def test_next_tasks_come_in_order_cleanup_health_image_pull() -> None:
    subject = node(pulled=False)  # IMAGE_PULL: all three kinds are due
    subject.awaiting_cleanup = [7]
    for kind in (IMAGE_PULL, HEALTH, CLEANUP):  # inserted in reverse order
        subject.tasks[kind] = task(f"{kind}-preset", kind=kind)
    got = subject.get_next_tasks(T0)
    assert [t.kind for t in got] == [CLEANUP, HEALTH, IMAGE_PULL]


@pytest.mark.parametrize(
    ("subject", "awaiting", "expected_kinds", "expected_calls"),
    [
        (
            node(cleaned=False, pulled=False),
            [],
            [CLEANUP, HEALTH],
            [(CLEANUP, (), True), (HEALTH, (), False)],
        ),
        (
            node(pulled=False),
            [],
            [HEALTH, IMAGE_PULL],
            [(HEALTH, (), False), (IMAGE_PULL, (), False)],
        ),
        (node(), [3, 4], [CLEANUP, HEALTH], [(CLEANUP, (3, 4), False), (HEALTH, (), False)]),
        (node(), [], [HEALTH], [(HEALTH, (), False)]),
        (node(online=False), [3], [], []),
        (node(paused=True), [3], [HEALTH], [(HEALTH, (), False)]),
    ],
    ids=[
        "initial-cleanup-carries-no-executions",
        "image-pull-state-pulls-but-has-no-cleanup-to-do",
        "regular-cleanup-of-waiting-executions",
        "no-waiting-executions-no-cleanup-task",
        "offline-node-gets-nothing",
        "paused-node-only-health",
    ],
)
def test_next_tasks_are_created_when_due(
    subject: Node,
    awaiting: list[int],
    expected_kinds: list[str],
    expected_calls: list[tuple[str, tuple[int, ...], bool]],
) -> None:
    subject.awaiting_cleanup = list(awaiting)
    factory = FakeFactory()
    got = subject.get_next_tasks(T0, factory)
    assert [t.kind for t in got] == expected_kinds
    assert factory.calls == expected_calls
    assert all(t.agent_id == subject.agent_id for t in got)


def test_regular_cleanup_takes_at_most_25_executions() -> None:
    subject = node()
    subject.awaiting_cleanup = list(range(30))
    factory = FakeFactory()
    subject.get_next_tasks(T0, factory)
    assert factory.calls[0] == (CLEANUP, tuple(range(25)), False)


def test_existing_task_is_not_recreated_and_launched_ones_are_not_returned() -> None:
    subject = node()
    factory = FakeFactory()
    [health] = subject.get_next_tasks(T0, factory)
    health.launch(T0)
    assert subject.get_next_tasks(at(1), factory) == []
    assert subject.tasks[HEALTH] is health
    assert len(factory.calls) == 1


def test_task_that_is_no_longer_due_is_kept_but_not_returned() -> None:
    subject = node()  # READY: no image pull is due
    preset = task("pull-preset", kind=IMAGE_PULL)
    subject.tasks[IMAGE_PULL] = preset
    subject.last_health_task = T0
    assert subject.get_next_tasks(T0) == []
    assert subject.tasks[IMAGE_PULL] is preset


@pytest.mark.parametrize(
    "with_factory", [False, True], ids=["dropped-without-factory", "replaced-with-factory"]
)
def test_tasks_of_an_old_agent_id_are_dropped(with_factory: bool) -> None:
    subject = node(agent_id="agent-new")
    stale = task("health-old", kind=HEALTH, agent_id="agent-old")
    subject.tasks[HEALTH] = stale
    got = subject.get_next_tasks(T0, FakeFactory() if with_factory else None)
    assert stale not in got
    if with_factory:
        assert [t.agent_id for t in got] == ["agent-new"]
        assert subject.tasks[HEALTH].agent_id == "agent-new"
    else:
        assert got == []
        assert HEALTH not in subject.tasks


# -- task updates -------------------------------------------------------------------------------


def with_task(subject: Node, kind: str, task_id: str = "node-task") -> Task:
    added = task(task_id, kind=kind, agent_id=subject.agent_id)
    added.launch(T0)
    subject.tasks[kind] = added
    return added


def test_update_for_an_unknown_task_is_not_ours() -> None:
    subject = node()
    with_task(subject, HEALTH)
    assert subject.handle_task_update(status("other", TaskStatus.FINISHED), T0) is False
    assert HEALTH in subject.tasks


def test_running_update_keeps_the_task() -> None:
    subject = node()
    running = with_task(subject, HEALTH)
    assert subject.handle_task_update(status(running.id, TaskStatus.RUNNING), T0) is True
    assert subject.tasks[HEALTH] is running
    assert running.has_started


def test_initial_cleanup_finished_completes_initial_cleanup() -> None:
    subject = node(cleaned=False, pulled=False)
    [cleanup, _health] = subject.get_next_tasks(T0, FakeFactory())
    subject.conditions.activate_error(E.CLEANUP, T0)
    subject.handle_task_update(status(cleanup.id, TaskStatus.FINISHED), at(5))
    assert subject.is_initial_cleanup_completed
    assert CLEANUP not in subject.tasks
    assert E.CLEANUP not in subject.conditions.errors
    assert subject.state is NodeState.IMAGE_PULL


def test_regular_cleanup_finished_removes_the_cleaned_executions() -> None:
    subject = node()
    for exe_id in range(30):
        subject.add_job_execution_for_cleanup(exe_id, T0)
    [cleanup, _health] = subject.get_next_tasks(T0, FakeFactory())
    subject.add_job_execution_for_cleanup(99, T0)
    subject.handle_task_update(status(cleanup.id, TaskStatus.FINISHED), at(5))
    assert subject.awaiting_cleanup == [25, 26, 27, 28, 29, 99]
    assert CLEANUP not in subject.tasks


def test_cleanup_failed_sets_error_and_numbered_warnings() -> None:
    subject = node()
    subject.awaiting_cleanup = [3, 4]
    factory = FakeFactory()
    for attempt in (1, 2):
        [cleanup, *_] = subject.get_next_tasks(at(attempt * 600), factory)
        assert cleanup.kind == CLEANUP
        subject.handle_task_update(status(cleanup.id, TaskStatus.FAILED), at(attempt * 600))
    assert E.CLEANUP in subject.conditions.errors
    assert sorted(subject.conditions.warnings) == ["CLEANUP_FAILURE 1", "CLEANUP_FAILURE 2"]
    assert "[3, 4]" in subject.conditions.warnings["CLEANUP_FAILURE 1"].description
    assert subject.awaiting_cleanup == [3, 4]
    assert subject.state is NodeState.DEGRADED
    assert CLEANUP not in subject.tasks


@pytest.mark.parametrize(
    "state", [TaskStatus.KILLED, TaskStatus.LOST], ids=["killed-logs-only", "lost-is-forgotten"]
)
def test_cleanup_killed_or_lost_changes_no_flags(state: TaskStatus) -> None:
    subject = node(cleaned=False, pulled=False)
    cleanup = with_task(subject, CLEANUP)
    subject.handle_task_update(status(cleanup.id, state), T0)
    assert CLEANUP not in subject.tasks
    assert not subject.is_initial_cleanup_completed
    assert subject.conditions.errors == {}
    assert subject.conditions.warnings == {}


@pytest.mark.parametrize(
    ("finished_after", "warning_kept"),
    [(WARNING_EXPIRY, True), (WARNING_EXPIRY + SECOND, False)],
    ids=["warning-3h-old-is-kept", "warning-older-than-3h-is-dropped"],
)
def test_successful_cleanup_drops_warnings_older_than_3h(
    finished_after: timedelta, warning_kept: bool
) -> None:
    subject = node()
    subject.conditions.add_numbered_warning("CLEANUP_FAILURE", "Cleanup Failure", "x", T0)
    cleanup = with_task(subject, CLEANUP)
    subject.handle_task_update(status(cleanup.id, TaskStatus.FINISHED), T0 + finished_after)
    assert ("CLEANUP_FAILURE 1" in subject.conditions.warnings) is warning_kept


@pytest.mark.parametrize(
    ("state", "exit_code", "expected_errors", "normal", "checked"),
    [
        (TaskStatus.FINISHED, 0, {E.CLEANUP}, True, True),
        (TaskStatus.FAILED, 2, {E.CLEANUP, E.BAD_DAEMON}, False, True),
        (TaskStatus.FAILED, 3, {E.CLEANUP, E.LOW_DOCKER_SPACE}, False, True),
        (TaskStatus.FAILED, 4, {E.CLEANUP, E.BAD_LOGSTASH}, False, True),
        (TaskStatus.FAILED, 1, {E.CLEANUP, E.HEALTH_FAIL}, False, True),
        (TaskStatus.FAILED, None, {E.CLEANUP, E.HEALTH_FAIL}, False, True),
        (TaskStatus.KILLED, None, {E.CLEANUP, E.HEALTH_TIMEOUT}, True, False),
        (TaskStatus.LOST, None, {E.CLEANUP, E.HEALTH_TIMEOUT}, True, False),
    ],
    ids=[
        "finished-clears-health-errors-only",
        "exit-2-bad-daemon",
        "exit-3-low-docker-space",
        "exit-4-bad-logstash",
        "other-exit-health-fail",
        "no-exit-code-health-fail",
        "killed-logs-only",
        "lost-is-forgotten",
    ],
)
def test_health_task_update(
    state: TaskStatus,
    exit_code: int | None,
    expected_errors: set[NodeErrorName],
    normal: bool,
    checked: bool,
) -> None:
    subject = node(errors=[E.CLEANUP, E.HEALTH_TIMEOUT])
    health = with_task(subject, HEALTH)
    subject.handle_task_update(status(health.id, state, at(60), exit_code), at(60))
    assert set(subject.conditions.errors) == expected_errors
    assert subject.is_health_normal is normal
    assert subject.last_health_task == (at(60) if checked else None)
    assert HEALTH not in subject.tasks


@pytest.mark.parametrize(
    ("state", "pulled", "pull_error"),
    [
        (TaskStatus.FINISHED, True, False),
        (TaskStatus.FAILED, False, True),
        (TaskStatus.KILLED, False, False),
        (TaskStatus.LOST, False, False),
    ],
    ids=["finished-image-pulled", "failed-image-pull-error", "killed-logs-only", "lost-forgotten"],
)
def test_image_pull_task_update(state: TaskStatus, pulled: bool, pull_error: bool) -> None:
    subject = node(pulled=False)
    pull = with_task(subject, IMAGE_PULL)
    subject.handle_task_update(status(pull.id, state), T0)
    assert subject.is_image_pulled is pulled
    assert (E.IMAGE_PULL in subject.conditions.errors) is pull_error
    assert IMAGE_PULL not in subject.tasks


def test_image_pull_finished_clears_a_previous_pull_error() -> None:
    subject = node(pulled=False, errors=[E.IMAGE_PULL])
    pull = with_task(subject, IMAGE_PULL)
    subject.handle_task_update(status(pull.id, TaskStatus.FINISHED), T0)
    assert subject.conditions.errors == {}
    assert subject.state is NodeState.READY


# -- timeouts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected_errors", "expected_warnings", "health_checked"),
    [
        (CLEANUP, {E.CLEANUP, E.BAD_LOGSTASH}, ["CLEANUP_TIMEOUT 1"], False),
        (HEALTH, {E.HEALTH_TIMEOUT}, [], True),
        (IMAGE_PULL, {E.IMAGE_PULL, E.BAD_LOGSTASH}, [], False),
    ],
    ids=[
        "cleanup-timeout-error-and-numbered-warning",
        "health-timeout-replaces-other-health-errors",
        "image-pull-timeout-error",
    ],
)
def test_task_timeout(
    kind: str,
    expected_errors: set[NodeErrorName],
    expected_warnings: list[str],
    health_checked: bool,
) -> None:
    subject = node(errors=[E.BAD_LOGSTASH])
    timed_out = with_task(subject, kind)
    subject.handle_task_timeout(timed_out, at(30))
    assert set(subject.conditions.errors) == expected_errors
    assert sorted(subject.conditions.warnings) == expected_warnings
    assert subject.last_health_task == (at(30) if health_checked else None)
    assert subject.is_health_normal is not health_checked
    assert subject.tasks[kind] is timed_out  # still running: kept until it ends


def test_timed_out_task_that_already_ended_is_forgotten() -> None:
    subject = node()
    timed_out = with_task(subject, CLEANUP)
    timed_out.update(status(timed_out.id, TaskStatus.KILLED))
    subject.handle_task_timeout(timed_out, at(30))
    assert CLEANUP not in subject.tasks
    assert E.CLEANUP in subject.conditions.errors


def test_timeout_of_a_task_that_is_not_ours_changes_nothing() -> None:
    subject = node()
    subject.handle_task_timeout(task("stranger", kind=HEALTH), T0)
    assert subject.conditions.errors == {}
    assert subject.last_health_task is None


# -- reset and removal --------------------------------------------------------------------------


def busy_node() -> Node:
    subject = node()
    subject.last_health_task = T0
    subject.awaiting_cleanup = [1, 2]
    with_task(subject, HEALTH)
    return subject


def assert_reset(subject: Node) -> None:
    assert subject.awaiting_cleanup == []
    assert subject.tasks == {}
    assert not subject.is_image_pulled
    assert not subject.is_initial_cleanup_completed
    assert subject.last_health_task is None


def test_reset_forces_initial_cleanup_and_image_pull_again() -> None:
    subject = busy_node()
    subject.reset()
    assert_reset(subject)
    assert subject.state is NodeState.INITIAL_CLEANUP


def test_going_offline_resets_and_coming_back_does_not() -> None:
    subject = busy_node()
    subject.set_online(False)
    assert_reset(subject)
    assert subject.state is NodeState.OFFLINE
    subject.is_initial_cleanup_completed = True
    subject.set_online(True)
    assert subject.is_initial_cleanup_completed
    assert subject.is_online
    assert not subject.is_image_pulled


def test_deprecation_resets() -> None:
    subject = busy_node()
    subject.set_active(False)
    assert_reset(subject)
    assert subject.state is NodeState.DEPRECATED


def test_staying_online_does_not_reset() -> None:
    subject = busy_node()
    subject.set_online(True)
    subject.set_active(True)
    assert subject.is_image_pulled
    assert subject.awaiting_cleanup == [1, 2]


@pytest.mark.parametrize(
    ("active", "online", "last_offer", "expected"),
    [
        (False, False, T0, True),
        (False, True, T0, False),
        (True, False, T0, False),
        (True, True, T0 - NODE_REMOVAL_WITHOUT_OFFERS, False),
        (True, True, T0 - NODE_REMOVAL_WITHOUT_OFFERS - SECOND, True),
        (True, True, None, False),
    ],
    ids=[
        "inactive-and-offline",
        "inactive-but-online-stays",
        "offline-but-active-stays",
        "last-offer-5min-ago-stays",
        "no-offer-for-over-5min",
        "never-offered-stays",
    ],
)
def test_should_be_removed(
    active: bool, online: bool, last_offer: datetime | None, expected: bool
) -> None:
    subject = node(active=active, online=online)
    subject.last_offer_received = last_offer
    assert subject.should_be_removed(T0) is expected


def test_waiting_cleanup_raises_the_slow_cleanup_warning_at_100() -> None:
    subject = node()
    for exe_id in range(99):
        subject.add_job_execution_for_cleanup(exe_id, T0)
    assert "SLOW_CLEANUP" not in subject.conditions.warnings
    subject.add_job_execution_for_cleanup(99, T0)
    assert "SLOW_CLEANUP" in subject.conditions.warnings


def test_node_registry_lookups_keep_insertion_order() -> None:
    registry = NodeRegistry()
    second = registry.add(Node(id=2, hostname="b", agent_id="a2"))
    first = registry.add(Node(id=1, hostname="a", agent_id="a1"))
    assert registry.get_nodes() == [second, first]
    assert registry.get(1) is first
    assert registry.by_agent("a2") is second
    assert registry.by_hostname("a") is first
    assert registry.by_agent("nope") is None
    registry.remove(2)
    assert registry.get_nodes() == [first]
