"""GPU bookkeeping per node (spec §1.4 with the leaks of §12.2 defect 5 fixed).

Reservations are held per queue entry and are all-or-nothing; an assignment takes exactly the
GPUs reserved for its entry; reservations are released when a cycle resets or aborts and
assignments when the execution ends; a node's GPU list never shrinks.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmaster.model.gpus import GpuTable

NODE = 1


def table_with(count: int, node_id: int = NODE) -> GpuTable:
    table = GpuTable()
    table.define_node_gpus(node_id, count)
    return table


@pytest.mark.parametrize(
    ("counts", "expected_total"),
    [
        ([2], 2),
        ([2, 4], 4),
        ([4, 2], 4),
        ([4, 0], 4),
        ([0], 0),
    ],
    ids=[
        "unknown-node-gets-count-gpus",
        "bigger-count-appends-missing-indexes",
        "smaller-count-never-shrinks",
        "zero-count-never-shrinks",
        "zero-count-defines-none",
    ],
)
def test_define_node_gpus_grows_and_never_shrinks(counts: list[int], expected_total: int) -> None:
    table = GpuTable()
    for count in counts:
        table.define_node_gpus(NODE, count)
    assert table.total(NODE) == expected_total
    assert table.available(NODE) == expected_total


def test_define_node_gpus_keeps_existing_reservations_and_assignments() -> None:
    table = table_with(2)
    assert table.reserve(NODE, queue_id=7, count=1)
    table.assign(NODE, queue_id=7, job_id=70)
    assert table.reserve(NODE, queue_id=8, count=1)
    table.define_node_gpus(NODE, 4)
    assert table.available(NODE) == 2
    assert table.assigned_indexes(NODE, 70) == [0]
    assert table.assign(NODE, queue_id=8, job_id=80) == [1]


def test_unknown_node_has_no_gpus() -> None:
    table = GpuTable()
    assert table.total(99) == 0
    assert table.available(99) == 0
    assert table.visible_devices(99, 1) == ""


@pytest.mark.parametrize(
    ("gpus", "held_by_others", "count", "expected", "available_after"),
    [
        (4, 0, 2, True, 2),
        (4, 0, 4, True, 0),
        (4, 3, 2, False, 1),
        (2, 0, 3, False, 2),
        (0, 0, 1, False, 0),
        (2, 2, 0, True, 0),
    ],
    ids=[
        "enough-free-gpus-are-reserved",
        "every-gpu-can-be-reserved",
        "too-few-free-gpus-flip-nothing",
        "more-than-the-node-has-flips-nothing",
        "unknown-node-fails",
        "zero-gpus-always-succeeds",
    ],
)
def test_reservation_is_all_or_nothing(
    gpus: int, held_by_others: int, count: int, expected: bool, available_after: int
) -> None:
    table = table_with(gpus) if gpus else GpuTable()
    if held_by_others:
        assert table.reserve(NODE, queue_id=1, count=held_by_others)
    assert table.reserve(NODE, queue_id=2, count=count) is expected
    assert table.available(NODE) == available_after


def test_failed_reservation_leaves_nothing_to_assign() -> None:
    table = table_with(2)
    assert not table.reserve(NODE, queue_id=5, count=3)
    assert table.assign(NODE, queue_id=5, job_id=50) == []
    assert table.available(NODE) == 2


def test_assign_takes_exactly_the_gpus_reserved_for_the_entry() -> None:
    table = table_with(4)
    assert table.reserve(NODE, queue_id=1, count=2)  # indexes 0, 1
    assert table.reserve(NODE, queue_id=2, count=1)  # index 2
    assert table.assign(NODE, queue_id=2, job_id=20) == [2]
    assert table.visible_devices(NODE, 20) == "2"
    assert table.assign(NODE, queue_id=1, job_id=10) == [0, 1]
    assert table.visible_devices(NODE, 10) == "0,1"
    assert table.available(NODE) == 1


def test_assign_without_a_reservation_takes_nothing() -> None:
    table = table_with(2)
    assert table.reserve(NODE, queue_id=1, count=2)
    assert table.assign(NODE, queue_id=3, job_id=30) == []
    assert table.visible_devices(NODE, 30) == ""
    assert table.assign(NODE, queue_id=1, job_id=10) == [0, 1]


def test_assign_twice_does_not_take_more() -> None:
    table = table_with(3)
    assert table.reserve(NODE, queue_id=1, count=1)
    assert table.assign(NODE, queue_id=1, job_id=10) == [0]
    assert table.assign(NODE, queue_id=1, job_id=10) == []
    assert table.assigned_indexes(NODE, 10) == [0]


def test_reservations_are_per_node() -> None:
    table = table_with(1, node_id=1)
    table.define_node_gpus(2, 1)
    assert table.reserve(1, queue_id=1, count=1)
    assert table.assign(2, queue_id=1, job_id=10) == []
    assert table.available(2) == 1


def test_release_reservation_frees_only_that_entry() -> None:
    table = table_with(3)
    assert table.reserve(NODE, queue_id=1, count=1)
    assert table.reserve(NODE, queue_id=2, count=1)
    table.release_reservation(NODE, queue_id=1)
    assert table.available(NODE) == 2
    assert table.assign(NODE, queue_id=2, job_id=20) == [1]


def test_release_reservation_never_frees_an_assignment() -> None:
    table = table_with(2)
    assert table.reserve(NODE, queue_id=1, count=1)
    table.assign(NODE, queue_id=1, job_id=10)
    table.release_reservation(NODE, queue_id=1)
    assert table.assigned_indexes(NODE, 10) == [0]
    assert table.available(NODE) == 1


def test_release_all_reservations_on_reset_keeps_assignments() -> None:
    table = table_with(4)
    table.define_node_gpus(2, 2)
    assert table.reserve(NODE, queue_id=1, count=1)
    table.assign(NODE, queue_id=1, job_id=10)
    assert table.reserve(NODE, queue_id=2, count=2)
    assert table.reserve(2, queue_id=3, count=2)
    table.release_all_reservations()
    assert table.available(NODE) == 3
    assert table.available(2) == 2
    assert table.assigned_indexes(NODE, 10) == [0]


def test_release_on_end_frees_only_that_jobs_gpus() -> None:
    table = table_with(3)
    assert table.reserve(NODE, queue_id=1, count=2)
    assert table.reserve(NODE, queue_id=2, count=1)
    table.assign(NODE, queue_id=1, job_id=10)
    table.assign(NODE, queue_id=2, job_id=20)
    table.release(NODE, job_id=10)
    assert table.available(NODE) == 2
    assert table.visible_devices(NODE, 10) == ""
    assert table.visible_devices(NODE, 20) == "2"
    assert table.reserve(NODE, queue_id=3, count=2)
    assert table.assign(NODE, queue_id=3, job_id=30) == [0, 1]


def test_release_of_unknown_job_or_node_is_harmless() -> None:
    table = table_with(1)
    table.release(NODE, job_id=99)
    table.release(42, job_id=99)
    table.release_reservation(42, queue_id=1)
    assert table.available(NODE) == 1


# -- property: a GPU is never held twice and counts always add up ---------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["define", "reserve", "assign", "release_reservation", "release_all", "release"]
        ),
        st.integers(1, 5),  # queue entry id (job id is ten times it)
        st.integers(0, 6),  # a GPU count
    ),
    max_size=40,
)


@given(OPS)
def test_property_gpus_are_never_double_booked(ops: list[tuple[str, int, int]]) -> None:
    table = GpuTable()
    assigned: dict[int, set[int]] = {}
    for kind, queue_id, count in ops:
        job_id = queue_id * 10
        free = table.available(NODE)
        if kind == "define":
            before = table.total(NODE)
            table.define_node_gpus(NODE, count)
            assert table.total(NODE) == max(before, count)
        elif kind == "reserve":
            ok = table.reserve(NODE, queue_id, count)
            assert ok is (count <= free)
            assert table.available(NODE) == (free - count if ok else free)
        elif kind == "assign":
            got = table.assign(NODE, queue_id, job_id)
            assert not assigned.get(job_id, set()) & set(got)
            assigned.setdefault(job_id, set()).update(got)
            assert table.available(NODE) == free
        elif kind == "release_reservation":
            table.release_reservation(NODE, queue_id)
        elif kind == "release_all":
            table.release_all_reservations()
        else:
            table.release(NODE, job_id)
            assigned.pop(job_id, None)
        for job, indexes in assigned.items():
            assert set(table.assigned_indexes(NODE, job)) == indexes
        held = [indexes for indexes in assigned.values()]
        all_held: set[int] = set().union(*held)
        assert sum(len(h) for h in held) == len(all_held), "a GPU is assigned to two jobs"
        assert 0 <= table.available(NODE) <= table.total(NODE) - len(all_held)
