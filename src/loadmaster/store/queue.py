"""The queue: the core's side of the store (read the head, commit a cycle) and queue status.

`commit_cycle` is all or nothing. It first takes its queue entries out of the queue
(`DELETE … RETURNING`); if any is gone — a cancel or another commit got there first — the
cycle was planned on a stale read and the whole transaction is rolled back and refused with
`QueueConflict`, a `StoreUnavailable`, so the core resets the cycle and plans again from a
fresh read. The values the executions are made from are the deleted rows, not the caller's
copies. Taking the entries first also fixes the lock order (queue entry before job).

A commit whose acknowledgement was lost (the connection dropped during COMMIT) is retried;
the retry finds its entries gone and an execution already made from each (`queue_id` is
unique), recognises its own earlier success and returns the same mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Text,
    bindparam,
    cast,
    delete,
    func,
    select,
    type_coerce,
    update,
)
from sqlalchemy.types import NullType

from loadmaster.model.job_types import with_minimums
from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.resources import EMPTY, Resources
from loadmaster.scheduling.ports import Placement, QueueQuery, StoreUnavailable
from loadmaster.store.bulk import RawJson, allocate_ids, insert_rows, raw_json
from loadmaster.store.columns import resources_to_json
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.records import EntityKind, JobStatus, NewEvent, QueueStatus
from loadmaster.store.rows import chunks, queue_entries
from loadmaster.store.schema import job_executions, job_types, jobs, queue

SHAREDMEM = "sharedmem"


class QueueConflict(StoreUnavailable):
    """The cycle was planned on queue entries that are no longer queued; nothing changed."""


def queue_requirement(job_type_resources: Resources, input_file_size_mib: float) -> Resources:
    """What a job asks of a node (spec §1.3): the job type's request raised to the minimums,
    shared memory left out (it is not schedulable), disk at least the input size."""
    raised = with_minimums(job_type_resources).remove_resource(SHAREDMEM)
    return raised.with_value("disk", max(raised.disk, input_file_size_mib))


def entry_row(
    *,
    job_id: int,
    job_type_id: int,
    exe_num: int,
    priority: int,
    resources: object,
    input_workspaces: Sequence[str],
    output_workspaces: Sequence[str],
    input_file_size_mib: float,
    timeout_seconds: float | None,
    environment: object,
    when: datetime,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_type_id": job_type_id,
        "exe_num": exe_num,
        "priority": priority,
        "queued": when,
        "resources": resources,
        "is_canceled": False,
        "input_workspaces": list(input_workspaces),
        "output_workspaces": list(output_workspaces),
        "input_file_size_mib": input_file_size_mib,
        "timeout_seconds": timeout_seconds,
        "environment": environment,
        "created": when,
    }


def insert_entries(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Queue ids, in the order of `rows`."""
    ids = allocate_ids(connection, queue, len(rows))
    insert_rows(connection, queue, [row | {"id": i} for i, row in zip(ids, rows, strict=True)])
    return ids


# Raw on purpose (see rows.queue_entries): JSON as text, times without SQLAlchemy's parsing.
FETCH_COLUMNS = (
    queue.c.id,
    queue.c.job_id,
    queue.c.job_type_id,
    queue.c.exe_num,
    queue.c.priority,
    type_coerce(queue.c.queued, NullType()).label("queued"),
    cast(queue.c.resources, Text).label("resources"),
    queue.c.is_canceled,
    cast(queue.c.input_workspaces, Text).label("input_workspaces"),
    cast(queue.c.output_workspaces, Text).label("output_workspaces"),
    queue.c.input_file_size_mib,
    queue.c.timeout_seconds,
    cast(queue.c.environment, Text).label("environment"),
)


def fetch_statement(query: QueueQuery) -> Any:
    queued = queue.c.queued.desc() if query.mode is QueueMode.LIFO else queue.c.queued
    stmt = select(*FETCH_COLUMNS).order_by(queue.c.priority, queued, queue.c.id).limit(query.limit)
    if query.exclude_job_type_ids:
        stmt = stmt.where(queue.c.job_type_id.not_in(sorted(query.exclude_job_type_ids)))
    if query.only_job_type_ids is not None:
        stmt = stmt.where(queue.c.job_type_id.in_(sorted(query.only_job_type_ids)))
    return stmt


class QueueRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def fetch(self, query: QueueQuery) -> list[QueueEntry]:
        """Priority ascending, then `queued` (oldest first for FIFO, newest for LIFO), then
        queue id ascending — insertion order — for entries queued at the same instant."""
        if query.limit <= 0 or query.only_job_type_ids == frozenset():
            return []
        stmt = fetch_statement(query)
        return self._db.read(lambda c: queue_entries(c.execute(stmt)))

    def count(self) -> int:
        stmt = select(func.count()).select_from(queue)
        return self._db.read(lambda c: int(c.execute(stmt).scalar_one()))

    def commit_cycle(
        self, placements: Sequence[Placement], canceled: Sequence[QueueEntry], when: datetime
    ) -> Mapping[int, int]:
        ids = [p.entry.id for p in placements] + [e.id for e in canceled]
        if len(set(ids)) != len(ids):
            raise QueueConflict("a queue entry appears more than once in the cycle")
        if not ids:
            return {}
        attempts = 0

        def work(connection: Connection) -> dict[int, int]:
            nonlocal attempts
            attempts += 1  # only a retry of this very call can find its own earlier commit
            return _commit(connection, placements, canceled, when, may_be_replay=attempts > 1)

        return self._db.write(work)

    def record_unmet_resources(self, changes: Mapping[int, str | None]) -> None:
        if not changes:
            return
        stmt = (
            update(job_types)
            .where(job_types.c.id == bindparam("b_id"))
            .values(unmet_resources=bindparam("b_text"))
        )
        params = [{"b_id": type_id, "b_text": text} for type_id, text in changes.items()]
        self._db.write(lambda c: c.execute(stmt, params))

    def status(self) -> list[QueueStatus]:
        """Per job type; paused types last, then by what runs first (spec §5.4)."""
        highest = func.min(queue.c.priority)
        longest = func.min(queue.c.queued)
        stmt = (
            select(
                job_types.c.id,
                job_types.c.name,
                job_types.c.version,
                job_types.c.is_paused,
                job_types.c.unmet_resources,
                func.count().label("n_entries"),
                highest.label("highest_priority"),
                longest.label("longest_queued"),
            )
            .join(job_types, job_types.c.id == queue.c.job_type_id)
            .group_by(
                job_types.c.id,
                job_types.c.name,
                job_types.c.version,
                job_types.c.is_paused,
                job_types.c.unmet_resources,
            )
            .order_by(job_types.c.is_paused, highest, longest, job_types.c.id)
        )
        return self._db.read(lambda c: [_status_of(row) for row in c.execute(stmt)])


def _status_of(row: Row[Any]) -> QueueStatus:
    return QueueStatus(
        job_type_id=row.id,
        name=row.name,
        version=row.version,
        is_paused=bool(row.is_paused),
        count=int(row.n_entries),
        highest_priority=int(row.highest_priority),
        longest_queued=row.longest_queued,
        unmet_resources=row.unmet_resources,
    )


# What an execution is made from; the JSON columns are not needed and cost most to read.
_TAKEN = (
    queue.c.id,
    queue.c.job_id,
    queue.c.job_type_id,
    queue.c.exe_num,
    queue.c.priority,
    queue.c.queued,
    queue.c.input_file_size_mib,
    queue.c.timeout_seconds,
)


def _take_entries(connection: Connection, ids: Sequence[int]) -> dict[int, Row[Any]]:
    taken: dict[int, Row[Any]] = {}
    for part in chunks(ids):
        stmt: Any = delete(queue).where(queue.c.id.in_(part)).returning(*_TAKEN)
        for row in connection.execute(stmt):
            taken[row.id] = row
    return taken


def _already_committed(
    connection: Connection, placements: Sequence[Placement], ids: Sequence[int]
) -> dict[int, int] | None:
    made: dict[int, int] = {}
    for part in chunks(ids):
        stmt = select(job_executions.c.queue_id, job_executions.c.id).where(
            job_executions.c.queue_id.in_(part)
        )
        made.update((int(q), int(e)) for q, e in connection.execute(stmt))
    if len(made) != len(ids):
        return None
    return {p.entry.id: made[p.entry.id] for p in placements}


def set_job_status(
    connection: Connection,
    job_ids: Sequence[int],
    *,
    expected: JobStatus,
    values: dict[str, Any],
) -> int:
    changed = 0
    for part in chunks(job_ids):
        stmt = (
            update(jobs).where(jobs.c.id.in_(part), jobs.c.status == str(expected)).values(**values)
        )
        changed += connection.execute(stmt).rowcount
    return changed


def _commit(
    connection: Connection,
    placements: Sequence[Placement],
    canceled: Sequence[QueueEntry],
    when: datetime,
    *,
    may_be_replay: bool,
) -> dict[int, int]:
    ids = [p.entry.id for p in placements] + [e.id for e in canceled]
    taken = _take_entries(connection, ids)
    if len(taken) != len(ids):
        replay = None
        if may_be_replay and not taken:
            replay = _already_committed(connection, placements, ids)
        if replay is not None:
            return replay
        gone = sorted(set(ids) - taken.keys())
        raise QueueConflict(f"{len(gone)} queue entries are no longer queued: {gone[:10]}")
    started = [taken[p.entry.id].job_id for p in placements]
    ended = [taken[e.id].job_id for e in canceled]
    running = {"status": "RUNNING", "started": when, "last_modified": when}
    stopped = {"status": "CANCELED", "ended": when, "error": None, "last_modified": when}
    changed = set_job_status(connection, started, expected=JobStatus.QUEUED, values=running)
    changed += set_job_status(connection, ended, expected=JobStatus.QUEUED, values=stopped)
    if changed != len(ids):
        raise QueueConflict("a job with a queue entry was not QUEUED")
    serialised: dict[Resources, RawJson] = {}  # a cycle's placements share few shapes
    rows = [_execution_row(taken[p.entry.id], p, when, serialised) for p in placements]
    rows += [_execution_row(taken[e.id], None, when, serialised) for e in canceled]
    exe_ids = allocate_ids(connection, job_executions, len(rows))
    insert_rows(
        connection, job_executions, [r | {"id": i} for i, r in zip(exe_ids, rows, strict=True)]
    )
    made = {int(r["queue_id"]): i for i, r in zip(exe_ids, rows, strict=True)}
    append_events(connection, when, list(_cycle_events(taken, placements, canceled, made)))
    return {p.entry.id: made[p.entry.id] for p in placements}


def _execution_row(
    entry: Row[Any],
    placement: Placement | None,
    when: datetime,
    serialised: dict[Resources, RawJson],
) -> dict[str, Any]:
    resources = placement.resources if placement else EMPTY
    if resources not in serialised:
        serialised[resources] = raw_json(resources_to_json(resources))
    return {
        "job_id": entry.job_id,
        "job_type_id": entry.job_type_id,
        "queue_id": entry.id,
        "exe_num": entry.exe_num,
        "priority": entry.priority,
        "node_id": placement.node_id if placement else None,
        "agent_id": placement.agent_id if placement else None,
        "status": "RUNNING" if placement else "CANCELED",
        "resources": serialised[resources],
        "input_file_size_mib": entry.input_file_size_mib,
        "timeout_seconds": entry.timeout_seconds,
        "queued": entry.queued,
        "started": when if placement else None,
        "ended": None if placement else when,
    }


def _cycle_events(
    taken: Mapping[int, Row[Any]],
    placements: Iterable[Placement],
    canceled: Iterable[QueueEntry],
    made: Mapping[int, int],
) -> Iterable[NewEvent]:
    for p in placements:
        detail = {"execution_id": made[p.entry.id], "node_id": p.node_id, "agent_id": p.agent_id}
        yield NewEvent(EntityKind.JOB, taken[p.entry.id].job_id, "scheduled", detail)
    for e in canceled:
        detail = {"execution_id": made[e.id], "reason": "its queue entry was canceled"}
        yield NewEvent(EntityKind.JOB, taken[e.id].job_id, "canceled", detail)
