"""Scheduler warnings: activation, refresh, deactivation and expiry (spec §8, §9.2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loadmaster.model.warnings import (
    INSUFFICIENT_RESOURCES,
    INVALID_RESOURCES,
    UNKNOWN_JOB_TYPE,
    WAITING_SYSTEM_TASKS,
    WARNING_EXPIRY,
    SchedulerWarning,
    WarningBoard,
    insufficient_resources,
    invalid_resources,
    unknown_job_type,
    waiting_system_tasks,
)

from .support import T0, at

SECOND = timedelta(seconds=1)


def test_expiry_is_one_hour() -> None:
    assert timedelta(hours=1) == WARNING_EXPIRY


@pytest.mark.parametrize(
    ("warning", "name", "title", "description"),
    [
        (
            invalid_resources("ingest", ["foo", "sharedmem"]),
            INVALID_RESOURCES,
            "Invalid Resources for ingest",
            "Cluster does not have one or more of the following resources: foo, sharedmem.",
        ),
        (
            insufficient_resources("ingest", ["cpus"]),
            INSUFFICIENT_RESOURCES,
            "Insufficient Resources for ingest",
            "No node has enough of this resource for the job type: cpus.",
        ),
        (
            waiting_system_tasks(2),
            WAITING_SYSTEM_TASKS,
            "Waiting System Tasks",
            "No new jobs scheduled due to 2 waiting system task(s)",
        ),
        (
            unknown_job_type(42),
            UNKNOWN_JOB_TYPE,
            "Unknown Job Type",
            "A job is queued with a job type 42 that is not known to the scheduler",
        ),
    ],
    ids=["invalid-resources", "insufficient-resources", "waiting-system-tasks", "unknown-job-type"],
)
def test_warning_texts(warning: SchedulerWarning, name: str, title: str, description: str) -> None:
    assert (warning.name, warning.title, warning.description) == (name, title, description)


def test_activate_records_started_and_last_updated() -> None:
    board = WarningBoard()
    board.activate(unknown_job_type(1), T0)
    [active] = board.active()
    assert (active.started, active.last_updated) == (T0, T0)
    assert board.is_active(UNKNOWN_JOB_TYPE)


def test_refresh_keeps_started_and_replaces_the_description() -> None:
    board = WarningBoard()
    board.activate(waiting_system_tasks(1), T0)
    board.activate(waiting_system_tasks(3), at(30))
    [active] = board.active()
    assert (active.started, active.last_updated) == (T0, at(30))
    assert "3 waiting" in active.warning.description


def test_warnings_are_keyed_per_subject() -> None:
    board = WarningBoard()
    board.activate(invalid_resources("a", ["foo"]), T0, subject="a")
    board.activate(invalid_resources("b", ["foo"]), T0, subject="b")
    board.activate(insufficient_resources("a", ["cpus"]), T0, subject="a")
    assert len(board.active()) == 3
    assert board.is_active(INVALID_RESOURCES, "a")
    assert not board.is_active(INVALID_RESOURCES)
    board.deactivate(INVALID_RESOURCES, "a")
    assert not board.is_active(INVALID_RESOURCES, "a")
    assert board.is_active(INVALID_RESOURCES, "b")
    assert board.is_active(INSUFFICIENT_RESOURCES, "a")


def test_deactivating_an_inactive_warning_is_harmless() -> None:
    board = WarningBoard()
    board.deactivate(UNKNOWN_JOB_TYPE, "x")
    assert board.active() == []


@pytest.mark.parametrize(
    ("last_refresh", "check_at", "expired"),
    [
        (T0, T0 + WARNING_EXPIRY - SECOND, False),
        (T0, T0 + WARNING_EXPIRY, True),
        (T0, T0 + 2 * WARNING_EXPIRY, True),
        (T0 + timedelta(minutes=30), T0 + WARNING_EXPIRY, False),
    ],
    ids=[
        "not-refreshed-for-59m59s-is-kept",
        "not-refreshed-for-1h-expires",
        "not-refreshed-for-2h-expires",
        "refreshed-30min-ago-is-kept",
    ],
)
def test_expiry_after_one_hour_without_refresh(
    last_refresh: datetime, check_at: datetime, expired: bool
) -> None:
    board = WarningBoard()
    board.activate(unknown_job_type(1), T0)
    board.activate(unknown_job_type(1), last_refresh)
    board.expire(check_at)
    assert board.is_active(UNKNOWN_JOB_TYPE) is not expired


def test_expiry_only_drops_stale_warnings() -> None:
    board = WarningBoard()
    board.activate(unknown_job_type(1), T0, subject="old")
    board.activate(unknown_job_type(2), at(1800), subject="new")
    board.expire(T0 + WARNING_EXPIRY)
    assert [w.subject for w in board.active()] == ["new"]


def test_active_warning_as_dict() -> None:
    board = WarningBoard()
    board.activate(unknown_job_type(7), T0, subject="7")
    assert board.active()[0].as_dict() == {
        "name": UNKNOWN_JOB_TYPE,
        "title": "Unknown Job Type",
        "description": "A job is queued with a job type 7 that is not known to the scheduler",
        "started": T0.isoformat(),
        "last_updated": T0.isoformat(),
    }
