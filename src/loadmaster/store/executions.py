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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.tasks import TaskStatus, TaskStatusUpdate
from loadmaster.store.bulk import insert_rows, time_converter
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


def _task_update_sql(dialect: str) -> str:
    """One task's status update, in `_update_row`'s parameter order: the status and the time of
    the update always, `started` only if not set yet (a RUNNING update), `ended` and the exit
    code for a terminal one, the agent only if the update names one; a task that has ended
    already is left as it is (the cluster re-sends)."""
    m = "?" if dialect == "sqlite" else "%s"
    return (
        f"UPDATE {job_execution_tasks.name} SET status = {m}, last_status_update = {m},"
        f" started = coalesce(started, {m}), ended = {m}, exit_code = {m},"
        f" agent_id = coalesce({m}, agent_id) WHERE task_id = {m} AND ended IS NULL"
    )


def _update_row(update_: TaskStatusUpdate, time_of: Callable[[Any], Any]) -> tuple[Any, ...]:
    terminal = update_.status.is_terminal
    when = time_of(update_.timestamp)
    return (
        str(update_.status),
        when,
        when if update_.status is TaskStatus.RUNNING else None,
        when if terminal else None,
        update_.exit_code if terminal else None,
        update_.agent_id or None,
        update_.task_id,
    )


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
            # records close to a million updates, whose parameters at once cost ~0.5 GiB;
            # in the driver's form (times converted once per distinct value), because
            # SQLAlchemy's per-parameter processing cost twice the statement itself
            dialect = connection.dialect.name
            sql = _task_update_sql(dialect)
            time_of = time_converter(dialect)
            for part in chunks(updates, _UPDATE_CHUNK):
                connection.exec_driver_sql(sql, [_update_row(u, time_of) for u in part])

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
