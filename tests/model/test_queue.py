"""Queue ordering and queue mode (spec §5.2; §12.2 defect 11 fixed)."""

from __future__ import annotations

import pytest

from loadmaster.model.queue import (
    DEFAULT_QUEUE_LIMIT,
    QueueEntry,
    QueueMode,
    order_queue,
    queue_order_key,
)
from loadmaster.resources import Resources

from .support import at


def entry(entry_id: int, priority: int, queued_seconds: float) -> QueueEntry:
    return QueueEntry(
        id=entry_id,
        job_id=entry_id * 10,
        job_type_id=1,
        priority=priority,
        queued=at(queued_seconds),
        resources=Resources.of(cpus=1.0),
    )


# (id, priority, queued seconds) in arrival order
ARRIVALS = [(1, 100, 10), (2, 100, 5), (3, 50, 20), (4, 100, 30), (5, 200, 0), (6, 50, 1)]


@pytest.mark.parametrize(
    ("mode", "arrivals", "expected_ids"),
    [
        (QueueMode.FIFO, ARRIVALS, [6, 3, 2, 1, 4, 5]),
        (QueueMode.LIFO, ARRIVALS, [3, 6, 4, 1, 2, 5]),
        (QueueMode.FIFO, [(1, 5, 9), (2, 5, 9), (3, 5, 9)], [1, 2, 3]),
        (QueueMode.LIFO, [(1, 5, 9), (2, 5, 9), (3, 5, 9)], [1, 2, 3]),
        (QueueMode.FIFO, [(1, 2, 0), (2, 1, 100)], [2, 1]),
        (QueueMode.LIFO, [(1, 1, 0), (2, 2, 100)], [1, 2]),
        (QueueMode.FIFO, [], []),
    ],
    ids=[
        "fifo-lower-priority-number-first-then-oldest",
        "lifo-lower-priority-number-first-then-newest",
        "fifo-ties-keep-arrival-order",
        "lifo-ties-keep-arrival-order",
        "fifo-priority-beats-age",
        "lifo-priority-beats-recency",
        "empty-queue",
    ],
)
def test_queue_order(
    mode: QueueMode, arrivals: list[tuple[int, int, float]], expected_ids: list[int]
) -> None:
    entries = [entry(*arrival) for arrival in arrivals]
    assert [e.id for e in order_queue(entries, mode)] == expected_ids


def test_order_key_sorts_priority_first() -> None:
    early_low, late_high = entry(1, 10, 0), entry(2, 1, 99)
    for mode in QueueMode:
        assert queue_order_key(late_high, mode) < queue_order_key(early_low, mode)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("FIFO", QueueMode.FIFO),
        ("LIFO", QueueMode.LIFO),
        ("fifo", QueueMode.FIFO),
        ("lifo", QueueMode.LIFO),
        ("Lifo", QueueMode.LIFO),
        ("fIfO", QueueMode.FIFO),
    ],
    ids=[
        "upper-fifo",
        "upper-lifo",
        "lower-fifo-normalised",
        "lower-lifo-normalised",
        "title-case-normalised",
        "mixed-case-normalised",
    ],
)
def test_queue_mode_parse_is_case_insensitive_and_normalised(raw: str, expected: QueueMode) -> None:
    parsed = QueueMode.parse(raw)
    assert parsed is expected
    assert str(parsed) == expected.value


@pytest.mark.parametrize(
    "raw",
    ["", "PRIORITY", "FIFO ", "fi fo", "LIFO,FIFO"],
    ids=["empty", "other-mode", "trailing-space", "inner-space", "two-modes"],
)
def test_queue_mode_parse_rejects_other_values(raw: str) -> None:
    with pytest.raises(ValueError, match="queue_mode"):
        QueueMode.parse(raw)


def test_lowercase_lifo_still_orders_newest_first() -> None:
    """Defect 11: a stored "lifo" must not fall back to priority-only ordering."""
    entries = [entry(1, 1, 0), entry(2, 1, 50), entry(3, 1, 25)]
    assert [e.id for e in order_queue(entries, QueueMode.parse("lifo"))] == [2, 3, 1]


def test_default_queue_limit_is_500() -> None:
    assert DEFAULT_QUEUE_LIMIT == 500


def test_entry_defaults_and_workspaces() -> None:
    made = QueueEntry(
        id=1,
        job_id=2,
        job_type_id=3,
        priority=4,
        queued=at(),
        resources=Resources(),
        input_workspaces=("in-a", "in-b"),
        output_workspaces=("out",),
    )
    assert made.workspaces() == ("in-a", "in-b", "out")
    assert not made.is_canceled
    assert made.exe_num == 1
    assert made.input_file_size_mib == 0.0
