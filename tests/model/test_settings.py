"""Scheduler-wide settings (spec §9.2 DB defaults, §12.3 queue limit)."""

from __future__ import annotations

import pytest

from loadmaster.model.queue import QueueMode
from loadmaster.model.settings import SchedulerSettings


def test_defaults_are_the_reference_database_defaults() -> None:
    made = SchedulerSettings()
    assert made.is_paused is False
    assert made.queue_mode is QueueMode.FIFO
    assert made.queue_limit == 500


@pytest.mark.parametrize(
    ("limit", "valid"),
    [(0, True), (1, True), (500, True), (-1, False)],
    ids=["zero-limit-is-allowed", "one", "default", "negative-limit-is-rejected"],
)
def test_queue_limit_must_not_be_negative(limit: int, valid: bool) -> None:
    if valid:
        assert SchedulerSettings(queue_limit=limit).queue_limit == limit
    else:
        with pytest.raises(ValueError, match="queue_limit"):
            SchedulerSettings(queue_limit=limit)
