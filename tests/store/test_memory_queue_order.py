"""The in-memory store's queue head is `order_queue` of the matching entries, cut at the limit:
the same stable order (ties in enqueue order) for any mix of priorities, equal stamps,
re-enqueued and canceled entries, consumed entries, filters and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmaster.model.queue import QueueEntry, QueueMode, order_queue
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import Placement, QueueQuery
from loadmaster.store.memory import MemoryStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def _entries(draw: st.DrawFn) -> list[QueueEntry]:
    ids = draw(st.lists(st.integers(1, 60), max_size=60))  # repeats: an entry enqueued again
    return [
        QueueEntry(
            queue_id,
            1000 + queue_id,
            draw(st.integers(1, 4)),
            draw(st.integers(0, 3)),
            T0 + timedelta(seconds=draw(st.sampled_from([0, 0, 1, 2.5, 7]))),
            Resources.of(cpus=1.0),
        )
        for queue_id in ids
    ]


@settings(max_examples=300, deadline=None)
@given(
    _entries(),
    st.sampled_from(list(QueueMode)),
    st.integers(0, 70),
    st.frozensets(st.integers(1, 4), max_size=2),
    st.none() | st.frozensets(st.integers(1, 4), min_size=1, max_size=3),
    st.lists(st.integers(1, 60), max_size=5),
    st.lists(st.integers(1, 60), max_size=5),
)
def test_fetch_queue_is_order_queue_cut_at_the_limit(
    entries: list[QueueEntry],
    mode: QueueMode,
    limit: int,
    exclude: frozenset[int],
    only: frozenset[int] | None,
    cancel: list[int],
    consume: list[int],
) -> None:
    store = MemoryStore.of(entries)
    for queue_id in cancel:
        store.cancel(queue_id)
    live = {e.id: e for e in store.queued()}
    placed = [live[i] for i in dict.fromkeys(consume) if i in live]
    store.commit_cycle([Placement(e, 1, "agent-1", e.resources) for e in placed], [], T0)

    got = store.fetch_queue(QueueQuery(mode, limit, exclude, only))

    matching = [
        e
        for e in store.queued()
        if e.job_type_id not in exclude and (only is None or e.job_type_id in only)
    ]
    assert list(got) == order_queue(matching, mode)[:limit]
