"""Job executions and their tasks: what runs, what the cluster said about it, how it ended.

`finish` ends an execution and decides its job's fate in the same transaction — done, failed,
canceled, or back in the queue as the next try — so there is no instant at which a crash
could leave a job with neither a live execution nor a queue entry while it is not ended.
The caller says whether the failure deserves another try; the store still refuses one when
the job is out of tries or a cancel was requested, because only under the job's row lock is
that answer certain.

Task rows follow status updates in bulk. An update for a task that has already ended changes
nothing (the cluster re-sends), and an unknown task id — a node or system task — is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, update

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.tasks import TaskStatus, TaskStatusUpdate
from loadmaster.store.bulk import insert_rows
from loadmaster.store.columns import UtcDateTime
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.jobs import lock_job, requeue_job
from loadmaster.store.records import (
    EntityKind,
    ExecutionRecord,
    FinishResult,
    NewEvent,
    TaskLaunch,
    TaskRecord,
)
from loadmaster.store.rows import chunks, execution_of, job_of, task_of
from loadmaster.store.schema import job_execution_tasks, job_executions, job_types, jobs

_UPDATE_CHUNK = 10_000  # rows per statement of `record_task_launches` and `record_task_updates`
_TASK_UPDATE = (
    update(job_execution_tasks)
    .where(
        job_execution_tasks.c.task_id == bindparam("b_task_id"),
        job_execution_tasks.c.ended.is_(None),
    )
    .values(
        status=bindparam("b_status"),
        last_status_update=bindparam("b_when", type_=UtcDateTime()),
        started=func.coalesce(
            job_execution_tasks.c.started, bindparam("b_started", type_=UtcDateTime())
        ),
        ended=bindparam("b_ended", type_=UtcDateTime()),
        exit_code=bindparam("b_exit_code"),
        agent_id=func.coalesce(bindparam("b_agent_id"), job_execution_tasks.c.agent_id),
    )
)


def _update_params(update_: TaskStatusUpdate) -> dict[str, Any]:
    terminal = update_.status.is_terminal
    return {
        "b_task_id": update_.task_id,
        "b_status": str(update_.status),
        "b_when": update_.timestamp,
        "b_started": update_.timestamp if update_.status is TaskStatus.RUNNING else None,
        "b_ended": update_.timestamp if terminal else None,
        "b_exit_code": update_.exit_code if terminal else None,
        "b_agent_id": update_.agent_id or None,
    }


def _with_job(stmt: Any) -> Any:
    columns = (jobs.c.cancel_requested, jobs.c.environment.label("job_environment"))
    return stmt.add_columns(*columns).join(jobs, jobs.c.id == job_executions.c.job_id)


def _tasks_by_execution(
    connection: Connection, execution_ids: Sequence[int]
) -> dict[int, list[TaskRecord]]:
    found: dict[int, list[TaskRecord]] = {}
    for part in chunks(execution_ids):
        stmt = (
            select(job_execution_tasks)
            .where(job_execution_tasks.c.execution_id.in_(part))
            .order_by(job_execution_tasks.c.id)
        )
        for row in connection.execute(stmt):
            found.setdefault(row.execution_id, []).append(task_of(row))
    return found


def _executions(connection: Connection, stmt: Any) -> list[ExecutionRecord]:
    rows = connection.execute(stmt).all()
    tasks = _tasks_by_execution(connection, [row.id for row in rows])
    return [execution_of(row, tasks.get(row.id, ())) for row in rows]


def load_execution(connection: Connection, execution_id: int) -> ExecutionRecord | None:
    stmt = _with_job(select(job_executions).where(job_executions.c.id == execution_id))
    found = _executions(connection, stmt)
    return found[0] if found else None


class ExecutionRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def running(self) -> list[ExecutionRecord]:
        """Every execution not yet ended, with its tasks: what a restarted service rebuilds
        its running executions from (and must kill, where `cancel_requested` is set)."""
        stmt = _with_job(
            select(job_executions)
            .where(job_executions.c.ended.is_(None))
            .order_by(job_executions.c.id)
        )
        return self._db.read(lambda c: _executions(c, stmt))

    def cancel_requested(self) -> list[int]:
        """Ids of running executions whose job a client asked to cancel: what the service
        polls for, without loading every running execution and its tasks."""
        stmt = (
            select(job_executions.c.id)
            .join(jobs, jobs.c.id == job_executions.c.job_id)
            .where(job_executions.c.ended.is_(None), jobs.c.cancel_requested.is_not(None))
            .order_by(job_executions.c.id)
        )
        return self._db.read(lambda c: [row.id for row in c.execute(stmt)])

    def get(self, execution_id: int) -> ExecutionRecord | None:
        return self._db.read(lambda c: load_execution(c, execution_id))

    def for_job(self, job_id: int) -> list[ExecutionRecord]:
        stmt = _with_job(
            select(job_executions)
            .where(job_executions.c.job_id == job_id)
            .order_by(job_executions.c.exe_num)
        )
        return self._db.read(lambda c: _executions(c, stmt))

    def record_task_launches(self, launches: Sequence[TaskLaunch]) -> None:
        """A relaunched lost task comes with its new id, so every launch is a new row. One
        transaction; the rows are built a chunk at a time (a cycle may launch 100,000s)."""
        if not launches:
            return

        def write(connection: Connection) -> None:
            for part in chunks(launches, _UPDATE_CHUNK):
                insert_rows(connection, job_execution_tasks, [_launch_row(x) for x in part])

        self._db.write(write)

    def record_task_updates(self, updates: Sequence[TaskStatusUpdate]) -> None:
        """Applied in the order given, so RUNNING then FINISHED of one task in one batch ends
        it finished."""
        if not updates:
            return

        def write(connection: Connection) -> None:
            # one transaction, parameters built a chunk at a time: a turn of a full cluster
            # records close to a million updates, whose parameters at once cost ~0.5 GiB
            for part in chunks(updates, _UPDATE_CHUNK):
                connection.execute(_TASK_UPDATE, [_update_params(u) for u in part])

        self._db.write(write)

    def finish(
        self,
        execution_id: int,
        *,
        status: ExecutionStatus,
        when: datetime,
        error: str | None = None,
        exit_code: int | None = None,
        requeue: bool = False,
    ) -> FinishResult:
        """End a running execution; a repeated call changes nothing and says so."""
        if status is ExecutionStatus.RUNNING:
            raise ValueError("status: an execution finishes COMPLETED, FAILED or CANCELED")
        return self._db.write(
            lambda c: _finish(c, execution_id, status, when, error, exit_code, requeue)
        )


def _launch_row(launch: TaskLaunch) -> dict[str, Any]:
    return {
        "execution_id": launch.execution_id,
        "task_id": launch.task_id,
        "kind": launch.kind,
        "agent_id": launch.agent_id,
        "status": None,
        "exit_code": None,
        "launched": launch.launched,
        "started": None,
        "ended": None,
        "last_status_update": launch.launched,
    }


def _finish(
    connection: Connection,
    execution_id: int,
    status: ExecutionStatus,
    when: datetime,
    error: str | None,
    exit_code: int | None,
    requeue: bool,
) -> FinishResult:
    job_id = connection.execute(
        select(job_executions.c.job_id).where(job_executions.c.id == execution_id)
    ).scalar()
    if job_id is None:
        raise ValueError(f"execution_id: no execution with id {execution_id}")
    job = lock_job(connection, job_id)
    ended = connection.execute(
        update(job_executions)
        .where(job_executions.c.id == execution_id, job_executions.c.ended.is_(None))
        .values(status=str(status), ended=when, error=error, exit_code=exit_code)
    ).rowcount
    if ended == 0:
        return _result(connection, execution_id, job_id, None, already_finished=True)
    queue_id = None
    if status is ExecutionStatus.FAILED and requeue and _may_retry(connection, job):
        queue_id = requeue_job(
            connection, job, when, priority=job.priority, max_tries=job.max_tries, why="retried"
        )
    else:
        outcome = _job_outcome(status, canceling=job.cancel_requested is not None)
        connection.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                status=outcome,
                ended=when,
                error=error if outcome == "FAILED" else None,
                last_modified=when,
            )
        )
        job_event = NewEvent(
            EntityKind.JOB, job_id, outcome.lower(), {"execution_id": execution_id}
        )
        append_events(connection, when, [job_event])
    detail = {"status": str(status), "error": error, "exit_code": exit_code}
    append_events(
        connection, when, [NewEvent(EntityKind.EXECUTION, execution_id, "finished", detail)]
    )
    return _result(connection, execution_id, job_id, queue_id, already_finished=False)


def _may_retry(connection: Connection, job: Row[Any]) -> bool:
    if job.cancel_requested is not None:
        return False
    if job.num_exes < job.max_tries:
        return True
    long_running = connection.execute(
        select(job_types.c.is_long_running).where(job_types.c.id == job.job_type_id)
    ).scalar_one()
    return bool(long_running)


def _job_outcome(status: ExecutionStatus, *, canceling: bool) -> str:
    """A job whose cancel was requested ends CANCELED unless its work completed anyway."""
    if status is ExecutionStatus.COMPLETED:
        return "COMPLETED"
    return "CANCELED" if canceling or status is ExecutionStatus.CANCELED else "FAILED"


def _result(
    connection: Connection,
    execution_id: int,
    job_id: int,
    queue_id: int | None,
    *,
    already_finished: bool,
) -> FinishResult:
    execution = load_execution(connection, execution_id)
    assert execution is not None
    job = job_of(lock_job(connection, job_id))
    return FinishResult(execution, job, queue_id, already_finished)
