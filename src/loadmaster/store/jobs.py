"""Jobs: submit (with idempotency), read, search, cancel and requeue.

Cancelling a queued job removes its queue entry and ends the job CANCELED at once, in one
transaction, rather than flagging the entry for the next cycle to consume: the user sees the
job canceled immediately, and a canceled entry of a paused job type can no longer linger
(scheduling spec §12.2 defect 21). A cycle that had already planned that entry finds it gone
at commit and is refused as a whole (`QueueConflict`) and planned again; no execution is
recorded for a job that never ran. Cancelling a running job only records the request and
returns what the service must kill; the job ends when its execution is finished.

Lock order, as everywhere in the store: queue entry, then job, then execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.exc import IntegrityError

from loadmaster.resources import Resources
from loadmaster.store.bulk import allocate_ids, insert_rows, raw_json
from loadmaster.store.columns import resources_from_json, resources_to_json
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.queue import entry_row, insert_entries, queue_requirement
from loadmaster.store.records import (
    CancelOutcome,
    CancelResult,
    EntityKind,
    JobFilter,
    JobPage,
    JobRecord,
    JobStatus,
    JobSubmission,
    KillRequest,
    NewEvent,
    SubmitResult,
)
from loadmaster.store.rows import chunks, job_of
from loadmaster.store.schema import job_execution_tasks, job_executions, job_types, jobs, queue

MAX_PAGE = 1000
REQUEUABLE = (JobStatus.FAILED, JobStatus.CANCELED)


def lock_job(connection: Connection, job_id: int) -> Row[Any]:
    row = connection.execute(select(jobs).where(jobs.c.id == job_id).with_for_update()).first()
    if row is None:
        raise ValueError(f"job_id: no job with id {job_id}")
    return row


def _same_submission(row: Row[Any], submission: JobSubmission) -> bool:
    return (
        row.job_type_id == submission.job_type_id
        and row.priority == submission.priority
        and tuple(row.input_workspaces) == submission.input_workspaces
        and tuple(row.output_workspaces) == submission.output_workspaces
        and row.input_file_size_mib == submission.input_file_size_mib
        and [tuple(pair) for pair in row.environment] == list(submission.environment.items())
    )


def _key_reused(key: str, job_id: int) -> ValueError:
    return ValueError(
        f"idempotency_key: {key!r} was already used for a different submission (job {job_id})"
    )


def _job_row(
    submission: JobSubmission, type_row: Row[Any], resources: Resources, when: datetime
) -> dict[str, Any]:
    return {
        "job_type_id": submission.job_type_id,
        "priority": submission.priority,
        "status": str(JobStatus.QUEUED),
        "num_exes": 1,
        "max_tries": type_row.max_tries,
        "resources": resources,
        "input_workspaces": list(submission.input_workspaces),
        "output_workspaces": list(submission.output_workspaces),
        "input_file_size_mib": submission.input_file_size_mib,
        "timeout_seconds": type_row.timeout_seconds,
        "environment": [[name, value] for name, value in submission.environment.items()],
        "idempotency_key": submission.idempotency_key,
        "error": None,
        "cancel_requested": None,
        "created": when,
        "queued": when,
        "started": None,
        "ended": None,
        "last_modified": when,
    }


def _record(job_id: int, values: dict[str, Any]) -> JobRecord:
    return JobRecord(
        id=job_id,
        job_type_id=values["job_type_id"],
        priority=values["priority"],
        status=JobStatus(values["status"]),
        num_exes=values["num_exes"],
        max_tries=values["max_tries"],
        resources=values["resources"],
        created=values["created"],
        queued=values["queued"],
        started=None,
        ended=None,
        error=None,
        idempotency_key=values["idempotency_key"],
        input_workspaces=tuple(values["input_workspaces"]),
        output_workspaces=tuple(values["output_workspaces"]),
        input_file_size_mib=values["input_file_size_mib"],
        cancel_requested=None,
        environment=tuple((str(n), str(v)) for n, v in values["environment"]),
    )


def _entry_for(job_id: int, values: dict[str, Any], exe_num: int, when: datetime) -> dict[str, Any]:
    return entry_row(
        job_id=job_id,
        job_type_id=values["job_type_id"],
        exe_num=exe_num,
        priority=values["priority"],
        resources=values["resources"],
        input_workspaces=values["input_workspaces"],
        output_workspaces=values["output_workspaces"],
        input_file_size_mib=values["input_file_size_mib"],
        timeout_seconds=values["timeout_seconds"],
        environment=values["environment"],
        when=when,
    )


def _submit(
    connection: Connection, submissions: Sequence[JobSubmission], when: datetime
) -> list[SubmitResult]:
    type_ids = sorted({s.job_type_id for s in submissions})
    type_rows = {
        row.id: row
        for row in connection.execute(select(job_types).where(job_types.c.id.in_(type_ids)))
    }
    unknown = [t for t in type_ids if t not in type_rows]
    if unknown:
        raise ValueError(f"job_type_id: no job type with id {unknown[0]}")
    results, create, first_with_key = _match_keys(connection, submissions)
    made = _create_jobs(connection, [submissions[i] for i in create], type_rows, when)
    for index, job in zip(create, made, strict=True):
        results[index] = SubmitResult(job, created=True)
    for index, submission in enumerate(submissions):
        if results[index] is None and submission.idempotency_key is not None:
            first = results[first_with_key[submission.idempotency_key]]
            assert first is not None
            results[index] = SubmitResult(first.job, created=False)
    return [r for r in results if r is not None]


def _match_keys(
    connection: Connection, submissions: Sequence[JobSubmission]
) -> tuple[list[SubmitResult | None], list[int], dict[str, int]]:
    """Results already known (a key seen before), the submissions to create, and for each
    key the first submission in this batch that carries it."""
    earlier = _jobs_by_key(connection, submissions)
    results: list[SubmitResult | None] = [None] * len(submissions)
    first_with_key: dict[str, int] = {}
    create: list[int] = []
    for index, submission in enumerate(submissions):
        key = submission.idempotency_key
        if key is not None and key in earlier:
            if not _same_submission(earlier[key], submission):
                raise _key_reused(key, earlier[key].id)
            results[index] = SubmitResult(job_of(earlier[key]), created=False)
        elif key is not None and key in first_with_key:
            if submissions[first_with_key[key]] != submission:
                raise ValueError(f"idempotency_key: {key!r} is used twice in one batch")
        else:
            if key is not None:
                first_with_key[key] = index
            create.append(index)
    return results, create, first_with_key


def _create_jobs(
    connection: Connection,
    submissions: Sequence[JobSubmission],
    type_rows: dict[int, Row[Any]],
    when: datetime,
) -> list[JobRecord]:
    """Jobs, their queue entries and their events, each as one bulk insert."""
    requirements: dict[tuple[int, float], Resources] = {}  # shared: Resources is immutable
    rows = []
    for submission in submissions:
        type_row = type_rows[submission.job_type_id]
        key = (submission.job_type_id, submission.input_file_size_mib)
        if key not in requirements:
            requirements[key] = queue_requirement(
                resources_from_json(type_row.resources), submission.input_file_size_mib
            )
        rows.append(_job_row(submission, type_row, requirements[key], when))
    serialised = {r: raw_json(resources_to_json(r)) for r in requirements.values()}
    ids = allocate_ids(connection, jobs, len(rows))
    stored = [
        row | {"id": i, "resources": serialised[row["resources"]]}
        for i, row in zip(ids, rows, strict=True)
    ]
    insert_rows(connection, jobs, stored)
    insert_entries(
        connection, [_entry_for(i, row, 1, when) for i, row in zip(ids, stored, strict=True)]
    )
    append_events(
        connection,
        when,
        [
            NewEvent(EntityKind.JOB, job_id, "queued", {"exe_num": 1, "priority": row["priority"]})
            for job_id, row in zip(ids, rows, strict=True)
        ],
    )
    return [_record(job_id, row) for job_id, row in zip(ids, rows, strict=True)]


def _jobs_by_key(
    connection: Connection, submissions: Sequence[JobSubmission]
) -> dict[str, Row[Any]]:
    keys = sorted({s.idempotency_key for s in submissions if s.idempotency_key is not None})
    found: dict[str, Row[Any]] = {}
    for part in chunks(keys):
        for row in connection.execute(select(jobs).where(jobs.c.idempotency_key.in_(part))):
            found[row.idempotency_key] = row
    return found


class JobRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def submit(self, submission: JobSubmission, *, when: datetime) -> SubmitResult:
        return self.submit_many([submission], when=when)[0]

    def submit_many(
        self, submissions: Sequence[JobSubmission], *, when: datetime
    ) -> list[SubmitResult]:
        """All queued in one transaction, or none; results in the order given.

        A submission without an idempotency key that is retried after an ambiguous failure
        (the connection dropped during COMMIT) may be queued twice: give keys to make retries
        safe."""
        if not submissions:
            return []
        try:
            return self._db.write(lambda c: _submit(c, submissions, when))
        except IntegrityError:
            if not any(s.idempotency_key for s in submissions):
                raise
            # A concurrent submit inserted the same key first; a second pass finds its job.
            return self._db.write(lambda c: _submit(c, submissions, when))

    def get(self, job_id: int) -> JobRecord | None:
        stmt = select(jobs).where(jobs.c.id == job_id)
        row = self._db.read(lambda c: c.execute(stmt).first())
        return job_of(row) if row is not None else None

    def search(
        self, where: JobFilter | None = None, *, limit: int = 100, before_id: int | None = None
    ) -> JobPage:
        """Newest first, keyset-paginated by id so deep pages cost the same as the first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE}, not {limit}")
        where = where or JobFilter()
        stmt = select(jobs).order_by(jobs.c.id.desc()).limit(limit + 1)
        if where.statuses:
            stmt = stmt.where(jobs.c.status.in_(sorted(str(s) for s in where.statuses)))
        if where.job_type_ids:
            stmt = stmt.where(jobs.c.job_type_id.in_(sorted(where.job_type_ids)))
        if where.priority_min is not None:
            stmt = stmt.where(jobs.c.priority >= where.priority_min)
        if where.priority_max is not None:
            stmt = stmt.where(jobs.c.priority <= where.priority_max)
        if where.created_from is not None:
            stmt = stmt.where(jobs.c.created >= where.created_from)
        if where.created_until is not None:
            stmt = stmt.where(jobs.c.created < where.created_until)
        if before_id is not None:
            stmt = stmt.where(jobs.c.id < before_id)
        rows = self._db.read(lambda c: c.execute(stmt).all())
        page = tuple(job_of(row) for row in rows[:limit])
        return JobPage(page, page[-1].id if len(rows) > limit else None)

    def cancel(self, job_id: int, *, when: datetime) -> CancelResult:
        """Safe to repeat: a second cancel of a running job returns the same kill request."""
        return self._db.write(lambda c: _cancel(c, job_id, when))

    def requeue(self, job_id: int, *, when: datetime, priority: int | None = None) -> JobRecord:
        """Queue a FAILED or CANCELED job again with a fresh allowance of tries (its job
        type's `max_tries` more), as the reference's requeue did."""
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise ValueError(f"priority: must be an integer, not {priority!r}")
        return self._db.write(lambda c: _requeue(c, job_id, when, priority))


def _remove_entry(connection: Connection, job_id: int) -> int | None:
    return connection.execute(
        delete(queue).where(queue.c.job_id == job_id).returning(queue.c.id)
    ).scalar()


def _cancel(connection: Connection, job_id: int, when: datetime) -> CancelResult:
    entry_id = _remove_entry(connection, job_id)
    row = lock_job(connection, job_id)
    status = JobStatus(row.status)
    if entry_id is None and status is JobStatus.QUEUED:
        # Requeued by a transaction that committed while we waited for the job's lock: its
        # new entry was not there for the first delete.
        entry_id = _remove_entry(connection, job_id)
    if entry_id is not None or status is JobStatus.QUEUED:
        values = {"status": "CANCELED", "ended": when, "error": None, "last_modified": when}
        connection.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
        detail = {"queue_id": entry_id, "was": str(status)}
        append_events(connection, when, [NewEvent(EntityKind.JOB, job_id, "canceled", detail)])
        return CancelResult(CancelOutcome.CANCELED, job_of(lock_job(connection, job_id)))
    if status is not JobStatus.RUNNING:
        return CancelResult(CancelOutcome.ALREADY_ENDED, job_of(row))
    if row.cancel_requested is None:
        connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(cancel_requested=when, last_modified=when)
        )
        append_events(connection, when, [NewEvent(EntityKind.JOB, job_id, "cancel_requested")])
        row = lock_job(connection, job_id)
    return CancelResult(
        CancelOutcome.KILL_REQUESTED, job_of(row), _kill_request(connection, job_id)
    )


def _kill_request(connection: Connection, job_id: int) -> KillRequest | None:
    exe = connection.execute(
        select(job_executions).where(
            job_executions.c.job_id == job_id, job_executions.c.ended.is_(None)
        )
    ).first()
    if exe is None:
        return None
    t = job_execution_tasks.c
    task_ids = connection.execute(
        select(t.task_id)
        .where(t.execution_id == exe.id, t.ended.is_(None), t.launched.is_not(None))
        .where((t.status.is_(None)) | (t.status != "LOST"))
        .order_by(t.id)
    ).scalars()
    return KillRequest(exe.id, job_id, exe.node_id, exe.agent_id, tuple(task_ids))


def _requeue(
    connection: Connection, job_id: int, when: datetime, priority: int | None
) -> JobRecord:
    row = lock_job(connection, job_id)
    status = JobStatus(row.status)
    if status not in REQUEUABLE:
        raise ValueError(
            f"job_id: job {job_id} is {status}; only FAILED or CANCELED jobs can be requeued"
        )
    type_tries = connection.execute(
        select(job_types.c.max_tries).where(job_types.c.id == row.job_type_id)
    ).scalar_one()
    requeue_job(
        connection,
        row,
        when,
        priority=row.priority if priority is None else priority,
        max_tries=max(row.max_tries, row.num_exes + type_tries),
        why="requeued",
    )
    return job_of(lock_job(connection, job_id))


def requeue_job(
    connection: Connection,
    row: Row[Any],
    when: datetime,
    *,
    priority: int,
    max_tries: int,
    why: str,
) -> int:
    """Put a locked job back in the queue as its next execution; returns the queue id."""
    exe_num = row.num_exes + 1
    connection.execute(
        update(jobs)
        .where(jobs.c.id == row.id)
        .values(
            status="QUEUED",
            num_exes=exe_num,
            max_tries=max_tries,
            priority=priority,
            queued=when,
            started=None,
            ended=None,
            error=None,
            cancel_requested=None,
            last_modified=when,
        )
    )
    values = dict(row._mapping) | {"priority": priority}
    (queue_id,) = insert_entries(connection, [_entry_for(row.id, values, exe_num, when)])
    detail = {"exe_num": exe_num, "priority": priority, "queue_id": queue_id}
    append_events(connection, when, [NewEvent(EntityKind.JOB, row.id, why, detail)])
    return int(queue_id)
