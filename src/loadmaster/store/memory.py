"""The in-memory store: the core's store port without a database.

Used by `loadmaster plan` (a dry run must not touch a real store), by the simulator and by
tests. `commit_cycle` validates everything before it changes anything, so a failure leaves
the queue exactly as it was — the same all-or-nothing contract the SQL stores give with a
transaction.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from loadmaster.model.queue import QueueEntry, QueueMode, queue_order_key
from loadmaster.scheduling.ports import Placement, QueueQuery, StoreUnavailable


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class ExecutionRecord:
    id: int
    queue_id: int
    job_id: int
    job_type_id: int
    exe_num: int
    node_id: int | None
    agent_id: str | None
    status: str
    started: datetime | None
    ended: datetime | None


@dataclass(slots=True)
class MemoryStore:
    _queue: dict[int, QueueEntry] = field(default_factory=dict)
    # per queue id, its `queue_order_key` in each mode, computed once when it is enqueued
    _order: dict[QueueMode, dict[int, tuple[int, float]]] = field(
        default_factory=lambda: {mode: {} for mode in QueueMode}
    )
    executions: dict[int, ExecutionRecord] = field(default_factory=dict)
    unmet_resources: dict[int, str | None] = field(default_factory=dict)
    fail_next_commit: str | None = None  # lets tests exercise the store-failure path
    _next_execution_id: int = 1

    @classmethod
    def of(cls, entries: Iterable[QueueEntry], first_execution_id: int = 1) -> MemoryStore:
        store = cls(_next_execution_id=first_execution_id)
        store.enqueue(entries)
        return store

    def enqueue(self, entries: Iterable[QueueEntry]) -> None:
        for entry in entries:
            self._queue[entry.id] = entry
            for mode, keys in self._order.items():
                keys[entry.id] = queue_order_key(entry, mode)

    def cancel(self, queue_id: int) -> None:
        entry = self._queue.get(queue_id)
        if entry is not None:
            self._queue[queue_id] = replace(entry, is_canceled=True)

    def queued(self) -> list[QueueEntry]:
        return list(self._queue.values())

    def fetch_queue(self, query: QueueQuery) -> Sequence[QueueEntry]:
        """`order_queue(matching entries, mode)[:limit]`: the same stable order (ties in
        enqueue order), from keys computed at enqueue time, and only the head kept."""
        ids = [
            queue_id
            for queue_id, e in self._queue.items()
            if e.job_type_id not in query.exclude_job_type_ids
            and (query.only_job_type_ids is None or e.job_type_id in query.only_job_type_ids)
        ]
        key = self._order[query.mode].__getitem__
        if query.limit < len(ids):
            head = heapq.nsmallest(query.limit, ids, key=key)  # = sorted(...)[:limit]
        else:
            head = sorted(ids, key=key)
        queue = self._queue
        return [queue[queue_id] for queue_id in head]

    def count_queue(self) -> int:
        return len(self._queue)

    def commit_cycle(
        self, placements: Sequence[Placement], canceled: Sequence[QueueEntry], when: datetime
    ) -> Mapping[int, int]:
        if self.fail_next_commit is not None:
            message, self.fail_next_commit = self.fail_next_commit, None
            raise StoreUnavailable(message)
        ids = [p.entry.id for p in placements] + [e.id for e in canceled]
        missing = [i for i in ids if i not in self._queue]
        if missing or len(set(ids)) != len(ids):
            raise StoreUnavailable(f"queue entries gone or repeated: {missing or ids}")
        out: dict[int, int] = {}
        for placement in placements:
            out[placement.entry.id] = self._record(placement.entry, placement, "RUNNING", when)
        for entry in canceled:
            self._record(entry, None, "CANCELED", when)
        for queue_id in ids:
            del self._queue[queue_id]
            for keys in self._order.values():
                del keys[queue_id]
        return out

    def _record(
        self, entry: QueueEntry, placement: Placement | None, status: str, when: datetime
    ) -> int:
        exe_id = self._next_execution_id
        self._next_execution_id += 1
        self.executions[exe_id] = ExecutionRecord(
            id=exe_id,
            queue_id=entry.id,
            job_id=entry.job_id,
            job_type_id=entry.job_type_id,
            exe_num=entry.exe_num,
            node_id=placement.node_id if placement else None,
            agent_id=placement.agent_id if placement else None,
            status=status,
            started=when if placement else None,
            ended=None if placement else when,
        )
        return exe_id

    def record_unmet_resources(self, changes: Mapping[int, str | None]) -> None:
        self.unmet_resources.update(changes)
