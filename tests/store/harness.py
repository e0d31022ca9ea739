"""One way to drive every store adapter through the core's port, for the contract suite.

The port only reads and consumes the queue; how entries get there differs per adapter (the
memory store is handed entries, the SQL store queues submitted jobs), so each harness knows
how to enqueue, how to flag an entry canceled, and how to read back what a commit recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select, update

from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import Placement, QueueQuery, SchedulingStore
from loadmaster.store.memory import MemoryStore
from loadmaster.store.records import JobSubmission, JobTypeSpec, NodeSighting
from loadmaster.store.schema import job_executions, queue
from loadmaster.store.sql import SqlStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
RESOURCES = Resources.of(cpus=1.0, mem=256.0)


@dataclass(slots=True, frozen=True)
class Recorded:
    """What a commit recorded for one queue entry."""

    job_id: int
    status: str
    node_id: int | None


@dataclass(slots=True, frozen=True)
class Want:
    """An entry to enqueue: job type label, priority, when it was queued."""

    job_type: int
    priority: int
    queued: datetime = T0


class PortHarness(Protocol):
    name: str

    @property
    def store(self) -> SchedulingStore: ...

    def job_type(self, label: int) -> int: ...

    def enqueue(self, wants: Sequence[Want]) -> list[QueueEntry]: ...

    def node(self) -> int: ...

    def mark_canceled(self, entry: QueueEntry) -> QueueEntry: ...

    def recorded(self) -> dict[int, Recorded]: ...

    def unmet(self, job_type_id: int) -> str | None: ...


def placement(entry: QueueEntry, node_id: int) -> Placement:
    return Placement(entry, node_id, f"agent-{node_id}", entry.resources)


def start(store: SqlStore, job_id: int) -> int:
    """Place a queued job's entry on a node, as a cycle would; returns the execution id."""
    entries = store.fetch_queue(QueueQuery(QueueMode.FIFO, 1_000_000))
    (entry,) = [e for e in entries if e.job_id == job_id]
    node = store.nodes.upsert([NodeSighting("n1", "agent-1")], when=T0)[0]
    return store.commit_cycle([placement(entry, node.id)], [], T0)[entry.id]


def everything(port: PortHarness) -> list[QueueEntry]:
    return list(port.store.fetch_queue(QueueQuery(QueueMode.FIFO, 1_000_000)))


@dataclass(slots=True)
class MemoryHarness:
    name: str = "memory"
    memory: MemoryStore = field(default_factory=MemoryStore)
    _next_id: int = 1

    @property
    def store(self) -> SchedulingStore:
        return self.memory

    def job_type(self, label: int) -> int:
        return label

    def enqueue(self, wants: Sequence[Want]) -> list[QueueEntry]:
        entries = []
        for want in wants:
            entries.append(
                QueueEntry(
                    id=self._next_id,
                    job_id=self._next_id,
                    job_type_id=want.job_type,
                    priority=want.priority,
                    queued=want.queued,
                    resources=RESOURCES,
                )
            )
            self._next_id += 1
        self.memory.enqueue(entries)
        return entries

    def node(self) -> int:
        return 7

    def mark_canceled(self, entry: QueueEntry) -> QueueEntry:
        self.memory.cancel(entry.id)
        return replace(entry, is_canceled=True)

    def recorded(self) -> dict[int, Recorded]:
        return {
            r.queue_id: Recorded(r.job_id, r.status, r.node_id)
            for r in self.memory.executions.values()
        }

    def unmet(self, job_type_id: int) -> str | None:
        return self.memory.unmet_resources.get(job_type_id)


@dataclass(slots=True)
class SqlHarness:
    sql: SqlStore
    name: str = "sql"
    _types: dict[int, int] = field(default_factory=dict)
    _node: int | None = None

    @property
    def store(self) -> SchedulingStore:
        return self.sql

    def job_type(self, label: int) -> int:
        if label not in self._types:
            spec = JobTypeSpec(f"type-{label}", resources=RESOURCES)
            self._types[label] = self.sql.job_types.create(spec, when=T0).id
        return self._types[label]

    def enqueue(self, wants: Sequence[Want]) -> list[QueueEntry]:
        job_ids = []
        for want in wants:
            submission = JobSubmission(self.job_type(want.job_type), priority=want.priority)
            job_ids.append(self.sql.jobs.submit(submission, when=want.queued).job.id)
        by_job = {entry.job_id: entry for entry in everything(self)}
        return [by_job[job_id] for job_id in job_ids]

    def node(self) -> int:
        if self._node is None:
            self._node = self.sql.nodes.upsert([NodeSighting("node-7", "agent-7")], when=T0)[0].id
        return self._node

    def mark_canceled(self, entry: QueueEntry) -> QueueEntry:
        with self.sql.engine.begin() as connection:
            connection.execute(update(queue).where(queue.c.id == entry.id).values(is_canceled=True))
        return replace(entry, is_canceled=True)

    def recorded(self) -> dict[int, Recorded]:
        stmt = select(
            job_executions.c.queue_id,
            job_executions.c.job_id,
            job_executions.c.status,
            job_executions.c.node_id,
        )
        with self.sql.engine.connect() as connection:
            return {
                row.queue_id: Recorded(row.job_id, row.status, row.node_id)
                for row in connection.execute(stmt)
            }

    def unmet(self, job_type_id: int) -> str | None:
        job_type = self.sql.job_types.get(job_type_id)
        assert job_type is not None
        return job_type.unmet_resources
