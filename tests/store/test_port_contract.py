"""The core's store port, one suite for every adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.store.harness import T0, PortHarness, Want, everything, placement

from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.scheduling.ports import QueueQuery, StoreUnavailable

FIFO, LIFO = QueueMode.FIFO, QueueMode.LIFO


def ids(entries: object) -> list[int]:
    assert isinstance(entries, list | tuple)
    return [e.id for e in entries]


def fetch(
    port: PortHarness,
    mode: QueueMode,
    limit: int = 100,
    *,
    exclude_job_type_ids: frozenset[int] = frozenset(),
    only_job_type_ids: frozenset[int] | None = None,
) -> list[QueueEntry]:
    query = QueueQuery(mode, limit, exclude_job_type_ids, only_job_type_ids)
    return list(port.store.fetch_queue(query))


def test_fifo_orders_by_priority_then_oldest_then_insertion(port: PortHarness) -> None:
    later = T0 + timedelta(minutes=5)
    a, b, c, d, e = port.enqueue(
        [Want(1, 5, later), Want(1, 5, T0), Want(1, 1, later), Want(1, 5, T0), Want(1, 9, T0)]
    )
    assert ids(fetch(port, FIFO)) == [c.id, b.id, d.id, a.id, e.id]


def test_lifo_orders_newest_first_within_a_priority_ties_by_insertion(port: PortHarness) -> None:
    later = T0 + timedelta(minutes=5)
    a, b, c, d, e = port.enqueue(
        [Want(1, 5, T0), Want(1, 5, later), Want(1, 1, T0), Want(1, 5, later), Want(1, 9, later)]
    )
    assert ids(fetch(port, LIFO)) == [c.id, b.id, d.id, a.id, e.id]


@pytest.mark.parametrize(
    ("name", "filters", "wanted_types"),
    [
        ("exclude one type", {"exclude_job_type_ids": {2}}, {1, 3}),
        ("only one type", {"only_job_type_ids": {2}}, {2}),
        ("only and exclude", {"only_job_type_ids": {1, 2}, "exclude_job_type_ids": {1}}, {2}),
        ("only nothing", {"only_job_type_ids": set()}, set()),
        ("exclude everything", {"exclude_job_type_ids": {1, 2, 3}}, set()),
    ],
)
def test_job_type_filters(
    port: PortHarness, name: str, filters: dict[str, set[int]], wanted_types: set[int]
) -> None:
    entries = port.enqueue([Want(label, 10) for label in (1, 2, 3, 1, 2, 3)])
    real = {label: port.job_type(label) for label in (1, 2, 3)}
    query = {key: frozenset(real[label] for label in labels) for key, labels in filters.items()}
    got = fetch(
        port,
        FIFO,
        exclude_job_type_ids=query.get("exclude_job_type_ids", frozenset()),
        only_job_type_ids=query.get("only_job_type_ids"),
    )
    wanted = [e.id for e in entries if e.job_type_id in {real[t] for t in wanted_types}]
    assert ids(got) == wanted, name


@pytest.mark.parametrize("limit", [0, 1, 3, 10])
def test_limit(port: PortHarness, limit: int) -> None:
    entries = port.enqueue([Want(1, p) for p in range(5)])
    assert ids(fetch(port, FIFO, limit)) == [e.id for e in entries][:limit]


def test_entries_round_trip(port: PortHarness) -> None:
    (entry,) = port.enqueue([Want(1, 3, T0 + timedelta(seconds=1.5))])
    (fetched,) = fetch(port, FIFO)
    assert fetched == entry
    assert fetched.queued == T0 + timedelta(seconds=1.5)
    assert fetched.queued.tzinfo is not None


def test_count_includes_canceled_entries(port: PortHarness) -> None:
    entries = port.enqueue([Want(1, 1), Want(1, 2), Want(2, 3)])
    port.mark_canceled(entries[1])
    assert port.store.count_queue() == 3
    assert [e.is_canceled for e in fetch(port, FIFO)] == [False, True, False]


def test_commit_turns_placements_and_cancellations_into_executions(port: PortHarness) -> None:
    a, b, c, d = port.enqueue([Want(1, 1), Want(1, 2), Want(1, 3), Want(1, 4)])
    b = port.mark_canceled(b)
    node = port.node()
    mapping = port.store.commit_cycle([placement(a, node), placement(c, node)], [b], T0)
    assert set(mapping) == {a.id, c.id}
    assert len(set(mapping.values())) == 2
    assert ids(everything(port)) == [d.id]
    assert port.store.count_queue() == 1
    recorded = port.recorded()
    assert recorded[a.id].status == "RUNNING" and recorded[a.id].node_id == node
    assert recorded[b.id].status == "CANCELED" and recorded[b.id].node_id is None
    assert recorded[a.id].job_id == a.job_id


def test_empty_commit_changes_nothing(port: PortHarness) -> None:
    port.enqueue([Want(1, 1)])
    assert dict(port.store.commit_cycle([], [], T0)) == {}
    assert port.store.count_queue() == 1


def test_commit_of_an_entry_already_consumed_fails_whole(port: PortHarness) -> None:
    a, b = port.enqueue([Want(1, 1), Want(1, 2)])
    node = port.node()
    port.store.commit_cycle([placement(a, node)], [], T0)
    before = port.recorded()
    with pytest.raises(StoreUnavailable):
        port.store.commit_cycle([placement(b, node), placement(a, node)], [], T0)
    assert ids(everything(port)) == [b.id]
    assert port.recorded() == before


def test_commit_with_an_entry_twice_fails_whole(port: PortHarness) -> None:
    a, b = port.enqueue([Want(1, 1), Want(1, 2)])
    node = port.node()
    with pytest.raises(StoreUnavailable):
        port.store.commit_cycle([placement(a, node), placement(b, node)], [a], T0)
    assert ids(everything(port)) == [a.id, b.id]
    assert port.recorded() == {}


def test_unmet_resources_are_recorded(port: PortHarness) -> None:
    one, two = port.job_type(1), port.job_type(2)
    port.store.record_unmet_resources({one: "gpus", two: None})
    assert port.unmet(one) == "gpus"
    assert port.unmet(two) is None
    port.store.record_unmet_resources({one: None})
    assert port.unmet(one) is None


_labels = itertools.count(100)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    wants=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=0, max_size=12),
    mode=st.sampled_from([FIFO, LIFO]),
    limit=st.integers(0, 14),
)
def test_queue_order_is_priority_then_time_then_insertion(
    port: PortHarness, wants: list[tuple[int, int]], mode: QueueMode, limit: int
) -> None:
    """Property: the head of the queue is the reference sort of all entries, cut at limit."""
    label = next(_labels)  # a fresh job type per example keeps examples apart
    entries = port.enqueue(
        [Want(label, priority, T0 + timedelta(seconds=offset)) for priority, offset in wants]
    )
    sign = -1 if mode is LIFO else 1
    expected = sorted(entries, key=lambda e: (e.priority, sign * e.queued.timestamp(), e.id))
    got = fetch(port, mode, limit, only_job_type_ids=frozenset({port.job_type(label)}))
    assert ids(got) == ids(expected)[:limit]
