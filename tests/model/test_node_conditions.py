"""A node's errors and warnings (spec §3.3 "Node errors" and "Node warnings")."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loadmaster.model.node_conditions import (
    HEALTH_ERRORS,
    NODE_ERRORS,
    SLOW_CLEANUP_THRESHOLD,
    WARNING_EXPIRY,
    NodeConditions,
    NodeErrorName,
)

from .support import T0, at

E = NodeErrorName


def test_thresholds_match_the_spec() -> None:
    assert timedelta(hours=3) == WARNING_EXPIRY
    assert SLOW_CLEANUP_THRESHOLD == 100


@pytest.mark.parametrize(
    ("error", "daemon_bad", "pull_bad"),
    [
        (E.BAD_DAEMON, True, True),
        (E.BAD_LOGSTASH, False, False),
        (E.CLEANUP, False, False),
        (E.HEALTH_FAIL, False, False),
        (E.HEALTH_TIMEOUT, False, False),
        (E.IMAGE_PULL, False, False),
        (E.LOW_DOCKER_SPACE, False, True),
    ],
    ids=[
        "bad-daemon-is-daemon-and-pull-bad",
        "bad-logstash-flags-nothing",
        "cleanup-flags-nothing",
        "health-fail-flags-nothing",
        "health-timeout-flags-nothing",
        "image-pull-flags-nothing",
        "low-docker-space-is-pull-bad",
    ],
)
def test_error_flags(error: NodeErrorName, daemon_bad: bool, pull_bad: bool) -> None:
    assert NODE_ERRORS[error].daemon_bad is daemon_bad
    assert NODE_ERRORS[error].pull_bad is pull_bad
    conditions = NodeConditions()
    conditions.activate_error(error, T0)
    assert conditions.is_daemon_bad() is daemon_bad
    assert conditions.is_pull_bad() is pull_bad
    assert conditions.has_errors()


def test_health_errors_are_the_five_named_in_the_spec() -> None:
    assert (
        frozenset(
            {E.BAD_DAEMON, E.BAD_LOGSTASH, E.HEALTH_FAIL, E.HEALTH_TIMEOUT, E.LOW_DOCKER_SPACE}
        )
        == HEALTH_ERRORS
    )


def test_reactivation_refreshes_last_updated_and_keeps_started() -> None:
    conditions = NodeConditions()
    conditions.activate_error(E.CLEANUP, T0)
    conditions.activate_error(E.CLEANUP, at(90))
    active = conditions.errors[E.CLEANUP]
    assert (active.started, active.last_updated) == (T0, at(90))
    assert conditions.error_updated(E.CLEANUP) == at(90)
    assert conditions.error_updated(E.IMAGE_PULL) is None


def test_clear_health_errors_keeps_the_others() -> None:
    conditions = NodeConditions()
    for error in NodeErrorName:
        conditions.activate_error(error, T0)
    conditions.clear_health_errors()
    assert set(conditions.errors) == {E.CLEANUP, E.IMAGE_PULL}
    conditions.clear_error(E.CLEANUP)
    conditions.clear_error(E.CLEANUP)  # clearing twice is harmless
    assert set(conditions.errors) == {E.IMAGE_PULL}


def test_numbered_warnings_accumulate() -> None:
    conditions = NodeConditions()
    conditions.add_numbered_warning("CLEANUP_FAILURE", "Cleanup Failure", "first", T0)
    conditions.add_numbered_warning("CLEANUP_TIMEOUT", "Cleanup Timeout", "second", at(1))
    conditions.add_numbered_warning("CLEANUP_FAILURE", "Cleanup Failure", "third", at(2))
    assert list(conditions.warnings) == [
        "CLEANUP_FAILURE 1",
        "CLEANUP_TIMEOUT 2",
        "CLEANUP_FAILURE 3",
    ]
    assert conditions.warnings["CLEANUP_FAILURE 3"].description == "third"
    assert not conditions.has_errors()


@pytest.mark.parametrize(
    ("waiting", "active"),
    [(0, False), (99, False), (100, True), (250, True)],
    ids=["none-waiting", "99-waiting-is-fine", "100-waiting-is-slow", "more-waiting-is-slow"],
)
def test_slow_cleanup_warning_is_active_from_100_waiting(waiting: int, active: bool) -> None:
    conditions = NodeConditions()
    conditions.set_slow_cleanup(waiting, T0)
    assert ("SLOW_CLEANUP" in conditions.warnings) is active


def test_slow_cleanup_warning_is_refreshed_and_cleared() -> None:
    conditions = NodeConditions()
    conditions.set_slow_cleanup(100, T0)
    conditions.set_slow_cleanup(120, at(60))
    warning = conditions.warnings["SLOW_CLEANUP"]
    assert (warning.started, warning.last_updated) == (T0, at(60))
    assert "120" in warning.description
    conditions.set_slow_cleanup(99, at(120))
    assert "SLOW_CLEANUP" not in conditions.warnings


def test_drop_old_warnings_keeps_warnings_up_to_3h_old() -> None:
    conditions = NodeConditions()
    conditions.add_numbered_warning("CLEANUP_FAILURE", "Cleanup Failure", "old", T0)
    conditions.add_numbered_warning("CLEANUP_FAILURE", "Cleanup Failure", "new", at(1))
    conditions.drop_old_warnings(T0 + WARNING_EXPIRY)
    assert len(conditions.warnings) == 2
    conditions.drop_old_warnings(T0 + WARNING_EXPIRY + timedelta(microseconds=1))
    assert list(conditions.warnings) == ["CLEANUP_FAILURE 2"]


def test_condition_as_dict_has_the_status_fields() -> None:
    conditions = NodeConditions()
    conditions.activate_error(E.BAD_DAEMON, T0)
    assert conditions.errors[E.BAD_DAEMON].as_dict() == {
        "name": "BAD_DAEMON",
        "title": NODE_ERRORS[E.BAD_DAEMON].title,
        "description": NODE_ERRORS[E.BAD_DAEMON].description,
        "started": T0.isoformat(),
        "last_updated": T0.isoformat(),
    }
