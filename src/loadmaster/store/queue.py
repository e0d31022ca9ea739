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

A cycle may place 10,000 entries, so no statement of the commit is per row and no row goes
through SQLAlchemy's processing: the entries are taken with one `DELETE … RETURNING` (one
array parameter on PostgreSQL, IN lists of 2,000 on SQLite), the jobs are updated with one
`UPDATE` per new status, the executions are written with `bulk.write_rows` (one COPY on
PostgreSQL through psycopg, one `executemany` on SQLite) and their events with one
statement: on PostgreSQL an `INSERT … SELECT` that builds them from the executions just
written, on SQLite an `executemany` of rows whose JSON text is formatted here. Both paths
write the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Text,
    bindparam,
    cast,
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
from loadmaster.store.bulk import (
    RawJson,
    allocate_ids,
    insert_rows,
    raw_json,
    time_converter,
    write_rows,
)
from loadmaster.store.columns import UtcDateTime, resources_to_json
from loadmaster.store.database import Database, dump_json
from loadmaster.store.records import EntityKind, JobStatus, QueueStatus
from loadmaster.store.rows import chunks, queue_entries
from loadmaster.store.schema import events, job_executions, job_types, jobs, queue

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
# Read raw, without SQLAlchemy's result processing: the values go straight back to the
# driver in the executions' rows (on SQLite `queued` stays the text it is stored as).
_TAKEN = "id, job_id, job_type_id, exe_num, priority, queued, input_file_size_mib, timeout_seconds"
_ID, _JOB_ID, _JOB_TYPE_ID, _EXE_NUM, _PRIORITY, _QUEUED, _INPUT_SIZE, _TIMEOUT = range(8)

# The executions' columns as the commit writes them, in this order; `error` and `exit_code`
# are left NULL.
EXECUTION_COLUMNS = (
    "id",
    "job_id",
    "job_type_id",
    "queue_id",
    "exe_num",
    "priority",
    "node_id",
    "agent_id",
    "status",
    "resources",
    "input_file_size_mib",
    "timeout_seconds",
    "queued",
    "started",
    "ended",
)

EVENT_COLUMNS = ("occurred", "entity_kind", "entity_id", "what", "detail")

SCHEDULED = "scheduled"
CANCELED = "canceled"
CANCELED_REASON = "its queue entry was canceled"


def _id_lists(connection: Connection, ids: Sequence[int]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """`WHERE id …` conditions covering `ids`, with their parameters: on PostgreSQL one array
    parameter for all of them, on SQLite IN lists of at most `CHUNK`."""
    if connection.dialect.name == "postgresql":
        yield "= ANY(%s::integer[])", (list(ids),)
        return
    for part in chunks(ids):
        yield f"IN ({', '.join('?' * len(part))})", tuple(part)


def _take_entries(connection: Connection, ids: Sequence[int]) -> dict[int, Row[Any]]:
    taken: dict[int, Row[Any]] = {}
    for condition, params in _id_lists(connection, ids):
        sql = f"DELETE FROM queue WHERE id {condition} RETURNING {_TAKEN}"
        taken.update((row[_ID], row) for row in connection.exec_driver_sql(sql, params).all())
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
    """Set `values` (columns of `jobs`, times as `UtcDateTime` takes them) on those of the
    jobs that have status `expected`; returns how many did."""
    if not job_ids:
        return 0
    dialect = connection.dialect.name
    mark = "?" if dialect == "sqlite" else "%s"
    time_of = time_converter(dialect)
    names = list(values)
    settings = ", ".join(f"{name} = {mark}" for name in names)
    converted = tuple(
        time_of(values[name]) if isinstance(jobs.c[name].type, UtcDateTime) else values[name]
        for name in names
    )
    changed = 0
    for condition, ids in _id_lists(connection, job_ids):
        sql = f"UPDATE jobs SET {settings} WHERE id {condition} AND status = {mark}"
        changed += connection.exec_driver_sql(sql, converted + ids + (str(expected),)).rowcount
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
    entries = [taken[i] for i in ids]  # placements first, then canceled, as `ids`
    started = [e[_JOB_ID] for e in entries[: len(placements)]]
    ended = [e[_JOB_ID] for e in entries[len(placements) :]]
    running = {"status": "RUNNING", "started": when, "last_modified": when}
    stopped = {"status": "CANCELED", "ended": when, "error": None, "last_modified": when}
    changed = set_job_status(connection, started, expected=JobStatus.QUEUED, values=running)
    changed += set_job_status(connection, ended, expected=JobStatus.QUEUED, values=stopped)
    if changed != len(ids):
        raise QueueConflict("a job with a queue entry was not QUEUED")
    exe_ids = allocate_ids(connection, job_executions, len(ids))
    dialect = connection.dialect.name
    rows = _execution_rows(dialect, entries, exe_ids, placements, when)
    write_rows(connection, job_executions, EXECUTION_COLUMNS, rows)
    if dialect == "postgresql":
        _cycle_events_from_executions(connection, exe_ids, when)
    else:
        occurred, kind = time_converter(dialect)(when), str(EntityKind.JOB)
        event_rows = [
            (occurred, kind, job_id, what, detail)
            for job_id, what, detail in _cycle_events(entries, exe_ids, placements)
        ]
        write_rows(connection, events, EVENT_COLUMNS, event_rows)
    return {p.entry.id: exe_id for p, exe_id in zip(placements, exe_ids, strict=False)}


def _execution_rows(
    dialect: str,
    entries: Sequence[Row[Any]],
    exe_ids: Sequence[int],
    placements: Sequence[Placement],
    when: datetime,
) -> list[tuple[Any, ...]]:
    """The executions in driver form: placements RUNNING, then canceled entries CANCELED."""
    time_of = time_converter(dialect)
    now = time_of(when)
    queued_of = _stored_time if dialect == "sqlite" else time_of
    # A cycle's placements share few shapes, often as the same objects: look those up by
    # identity (hashing a `Resources` is not free), the rest by value.
    serialised: dict[Resources, RawJson] = {}
    by_identity: dict[int, tuple[Resources, RawJson]] = {}
    rows: list[tuple[Any, ...]] = []
    for index, (entry, exe_id) in enumerate(zip(entries, exe_ids, strict=True)):
        placement = placements[index] if index < len(placements) else None
        resources = placement.resources if placement else EMPTY
        known = by_identity.get(id(resources))
        if known is not None and known[0] is resources:
            json_text = known[1]
        else:
            found = serialised.get(resources)
            if found is None:
                found = serialised[resources] = raw_json(resources_to_json(resources))
            json_text = found
            by_identity[id(resources)] = (resources, found)
        rows.append(
            (
                exe_id,
                entry[_JOB_ID],
                entry[_JOB_TYPE_ID],
                entry[_ID],
                entry[_EXE_NUM],
                entry[_PRIORITY],
                placement.node_id if placement else None,
                placement.agent_id if placement else None,
                "RUNNING" if placement else "CANCELED",
                json_text,
                entry[_INPUT_SIZE],
                entry[_TIMEOUT],
                queued_of(entry[_QUEUED]),
                now if placement else None,
                None if placement else now,
            )
        )
    return rows


def _stored_time(value: Any) -> Any:
    """A time read raw from SQLite, in the form `UtcDateTime` stores (which the store's own
    writes always have: then it is returned as it is)."""
    if isinstance(value, str) and len(value) == 26:
        return value
    return time_converter("sqlite")(datetime.fromisoformat(value))


def _cycle_events(
    entries: Sequence[Row[Any]],
    exe_ids: Sequence[int],
    placements: Sequence[Placement],
) -> list[tuple[int, str, str]]:
    """(job id, what, detail as JSON text) per execution: the text `dump_json` makes of
    {"execution_id", "node_id", "agent_id"} and of {"execution_id", "reason"}."""
    agents: dict[str | None, str] = {}
    reason = dump_json(CANCELED_REASON)
    out = []
    for index, (entry, exe_id) in enumerate(zip(entries, exe_ids, strict=True)):
        if index < len(placements):
            p = placements[index]
            if type(p.node_id) is not int or type(exe_id) is not int:
                detail = dump_json(
                    {"execution_id": exe_id, "node_id": p.node_id, "agent_id": p.agent_id}
                )
            else:
                agent = agents.get(p.agent_id)
                if agent is None:
                    agent = agents[p.agent_id] = dump_json(p.agent_id)
                detail = f'{{"execution_id":{exe_id},"node_id":{p.node_id},"agent_id":{agent}}}'
            out.append((entry[_JOB_ID], SCHEDULED, detail))
        else:
            detail = f'{{"execution_id":{exe_id},"reason":{reason}}}'
            out.append((entry[_JOB_ID], CANCELED, detail))
    return out


# PostgreSQL: the events are made from the executions just written, in execution id order —
# the order of the cycle — so their ids follow it too. JSONB holds the detail as a value, not
# as text, so building it here stores exactly what the JSON text of the SQLite path does.
_EVENTS_FROM_EXECUTIONS = """\
INSERT INTO events (occurred, entity_kind, entity_id, what, detail)
SELECT %(when)s, %(kind)s, e.job_id,
    CASE WHEN e.status = 'RUNNING' THEN %(scheduled)s ELSE %(canceled)s END,
    CASE WHEN e.status = 'RUNNING'
        THEN jsonb_build_object('execution_id', e.id, 'node_id', e.node_id, 'agent_id', e.agent_id)
        ELSE jsonb_build_object('execution_id', e.id, 'reason', %(reason)s::text)
    END
FROM job_executions AS e
WHERE e.id = ANY(%(ids)s::integer[])
ORDER BY e.id"""


def _cycle_events_from_executions(
    connection: Connection, exe_ids: Sequence[int], when: datetime
) -> None:
    params = {
        "when": time_converter("postgresql")(when),
        "kind": str(EntityKind.JOB),
        "scheduled": SCHEDULED,
        "canceled": CANCELED,
        "reason": CANCELED_REASON,
        "ids": list(exe_ids),
    }
    connection.exec_driver_sql(_EVENTS_FROM_EXECUTIONS, params)
