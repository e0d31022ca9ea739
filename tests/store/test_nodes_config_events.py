"""Nodes, the scheduler row, settings (the framework id) and the event log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from tests.store.harness import T0

from loadmaster.model.queue import QueueMode
from loadmaster.store.records import EntityKind, NewEvent, NodeSighting
from loadmaster.store.sql import SqlStore


def test_nodes_are_upserted_by_hostname(store: SqlStore) -> None:
    a, _b = store.nodes.upsert([NodeSighting("a", "agent-1"), NodeSighting("b")], when=T0)
    assert (a.hostname, a.agent_id, a.is_active, a.is_paused) == ("a", "agent-1", True, False)
    later = T0 + timedelta(minutes=1)
    again, c = store.nodes.upsert(
        [NodeSighting("a", "agent-2"), NodeSighting("c", "x")], when=later
    )
    assert again.id == a.id and again.agent_id == "agent-2" and again.created == T0
    assert again.last_modified == later
    (kept,) = store.nodes.upsert([NodeSighting("a")], when=later)  # no agent id: keep the last
    assert kept.agent_id == "agent-2"
    assert [n.hostname for n in store.nodes.all()] == ["a", "b", "c"]
    assert store.nodes.by_hostname("c") == c


def test_node_switches_record_why(store: SqlStore) -> None:
    (node,) = store.nodes.upsert([NodeSighting("n")], when=T0)
    paused = store.nodes.pause(node.id, reason="disk replacement", when=T0)
    assert paused.is_paused and paused.pause_reason == "disk replacement"
    resumed = store.nodes.resume(node.id, when=T0)
    assert not resumed.is_paused and resumed.pause_reason is None
    gone = store.nodes.deprecate(node.id, when=T0 + timedelta(hours=1))
    assert not gone.is_active and gone.deprecated == T0 + timedelta(hours=1)
    (seen,) = store.nodes.upsert([NodeSighting("n", "agent-9")], when=T0)
    assert not seen.is_active  # being seen again does not undo a deprecation
    back = store.nodes.reactivate(node.id, when=T0)
    assert back.is_active and back.deprecated is None
    events = store.events.list_for(EntityKind.NODE, node.id)
    assert [e.what for e in events] == ["paused", "resumed", "deprecated", "reactivated"]
    assert events[0].detail == {"reason": "disk replacement"}
    with pytest.raises(ValueError, match=r"^node_id: no node with id 999"):
        store.nodes.pause(999, reason="x", when=T0)
    with pytest.raises(ValueError, match=r"^reason: must be a non-empty string"):
        store.nodes.pause(node.id, reason="", when=T0)


def test_last_offer_stamps_in_bulk(store: SqlStore) -> None:
    a, b = store.nodes.upsert([NodeSighting("a"), NodeSighting("b")], when=T0)
    stamp = T0 + timedelta(seconds=3)
    store.nodes.record_offers({a.id: stamp, b.id: stamp + timedelta(seconds=1), 999: stamp})
    got_a, got_b = store.nodes.get(a.id), store.nodes.get(b.id)
    assert got_a is not None and got_a.last_offer_received == stamp
    assert got_b is not None and got_b.last_offer_received == stamp + timedelta(seconds=1)


def test_scheduler_configuration(store: SqlStore) -> None:
    settings = store.config.scheduler()
    assert (settings.is_paused, settings.queue_mode, settings.queue_limit) == (
        False,
        QueueMode.FIFO,
        500,
    )
    updated = store.config.update_scheduler(when=T0, queue_mode="lifo", queue_limit=50)
    assert updated.queue_mode is QueueMode.LIFO and updated.queue_limit == 50
    assert store.config.update_scheduler(when=T0, is_paused=True).is_paused
    assert store.config.scheduler() == store.config.update_scheduler(when=T0)
    with pytest.raises(ValueError, match=r"^queue_mode: must be FIFO or LIFO"):
        store.config.update_scheduler(when=T0, queue_mode="random")
    with pytest.raises(ValueError, match=r"^queue_limit: must be at least 0"):
        store.config.update_scheduler(when=T0, queue_limit=-1)
    whats = [e.what for e in store.events.list_for(EntityKind.SCHEDULER, 1)]
    assert whats == ["updated", "updated"]


def test_framework_id_persists(store: SqlStore) -> None:
    assert store.config.framework_id() is None
    store.config.set_framework_id("fw-1", when=T0)
    store.config.set_framework_id("fw-2", when=T0)
    assert store.config.framework_id() == "fw-2"
    store.config.set_framework_id(None, when=T0)
    assert store.config.framework_id() is None


def test_events_list_per_entity_in_order_and_page(store: SqlStore) -> None:
    store.events.append(
        [NewEvent(EntityKind.NODE, 1, f"e{i}", {"i": i}) for i in range(5)]
        + [NewEvent(EntityKind.NODE, 2, "other")],
        when=T0,
    )
    first = store.events.list_for(EntityKind.NODE, 1, limit=3)
    rest = store.events.list_for(EntityKind.NODE, 1, after_id=first[-1].id)
    assert [e.what for e in first + rest] == ["e0", "e1", "e2", "e3", "e4"]
    assert first[1].detail == {"i": 1} and first[0].occurred == T0
    assert [e.what for e in store.events.recent(limit=2)] == ["other", "e4"]


def test_times_are_stored_in_utc(store: SqlStore) -> None:
    """Naive times are read as UTC; times in other zones come back as the same instant."""
    plus_two = timezone(timedelta(hours=2))
    a, b = store.nodes.upsert([NodeSighting("a"), NodeSighting("b")], when=T0)
    store.nodes.record_offers(
        {a.id: datetime(2024, 1, 1, 12, 0), b.id: datetime(2024, 1, 1, 14, 0, tzinfo=plus_two)}
    )
    got_a, got_b = store.nodes.get(a.id), store.nodes.get(b.id)
    assert got_a is not None and got_b is not None
    assert got_a.last_offer_received == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert got_b.last_offer_received == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    assert got_b.last_offer_received.tzinfo is UTC
