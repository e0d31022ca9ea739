"""Job executions: list, get (tasks with timestamps, exit codes, error) and task logs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy import select

from loadmaster.api.context import Context, IdPath, IdQuery
from loadmaster.api.convert import execution_out
from loadmaster.api.errors import ApiError, not_found
from loadmaster.api.schemas import ExecutionOut, ExecutionPageOut
from loadmaster.model.executions import ExecutionStatus
from loadmaster.store.records import ExecutionRecord
from loadmaster.store.schema import job_executions

router = APIRouter(prefix="/executions", tags=["executions"])

MAX_LOG_BYTES = 4 * 1024 * 1024  # what one logs request returns at most


@router.get("", response_model=ExecutionPageOut)
def list_executions(
    context: Context,
    job_id: IdQuery = None,
    node_id: IdQuery = None,
    status: Annotated[list[ExecutionStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: IdQuery = None,
) -> ExecutionPageOut:
    """Newest first, keyset-paginated by id: pass `next_before_id` back as `before_id`."""
    # The store has no execution search: the ids are selected here, and each execution is
    # read through the store's own reader.
    c = job_executions.c
    stmt = select(c.id).order_by(c.id.desc()).limit(limit + 1)
    if job_id is not None:
        stmt = stmt.where(c.job_id == job_id)
    if node_id is not None:
        stmt = stmt.where(c.node_id == node_id)
    if status:
        stmt = stmt.where(c.status.in_(sorted(str(s) for s in status)))
    if before_id is not None:
        stmt = stmt.where(c.id < before_id)
    with context.store.engine.connect() as connection:
        ids = [int(i) for i in connection.execute(stmt).scalars()]
    found = [e for i in ids[:limit] if (e := context.store.executions.get(i)) is not None]
    return ExecutionPageOut(
        items=[execution_out(e) for e in found],
        next_before_id=ids[limit - 1] if len(ids) > limit else None,
    )


def _require(context: Context, execution_id: int) -> ExecutionRecord:
    found = context.store.executions.get(execution_id)
    if found is None:
        raise not_found("execution_id", "execution", execution_id)
    return found


@router.get("/{execution_id}", response_model=ExecutionOut)
def get_execution(execution_id: IdPath, context: Context) -> ExecutionOut:
    return execution_out(_require(context, execution_id))


@router.get(
    "/{execution_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, 404: {"description": "no such task"}},
)
def execution_logs(
    execution_id: IdPath,
    context: Context,
    task_id: str | None = None,
    step: Literal["pull", "pre", "main", "post"] = "main",
    stream: Literal["stdout", "stderr"] = "stdout",
    tail: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    length: Annotated[int | None, Query(ge=0, le=MAX_LOG_BYTES)] = None,
) -> PlainTextResponse:
    """A task's output: the latest try of `step` unless `task_id` names one. `offset` and
    `length` select bytes; `tail` keeps the last lines of what was selected."""
    exe = _require(context, execution_id)
    tasks = [t for t in exe.tasks if (t.task_id == task_id if task_id else t.kind == step)]
    if not tasks:
        field = "task_id" if task_id else "step"
        raise ApiError(404, field, f"execution {execution_id} has no task {task_id or step!r}")
    task = tasks[-1]
    try:
        data = context.service.backend.read_log(
            task.task_id, stream, offset, MAX_LOG_BYTES if length is None else length
        )
    except KeyError:
        raise ApiError(404, "task_id", f"the backend has no logs of task {task.task_id}") from None
    text = data.decode("utf-8", errors="replace")
    if tail is not None:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-tail:])
    return PlainTextResponse(text, headers={"X-Task-Id": task.task_id})
