"""The Dask backend's records of workers and tasks, and how a `run_task` result reads.

Kept apart from the backend's threads so that the mapping from what a worker returned to a
task status is a pure function, tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources

LOG_STREAMS = ("stdout", "stderr")


@dataclass(slots=True, eq=False)
class DaskAgent:
    """A live worker. `agent_id` is its address and the count of its name's sightings."""

    address: str
    hostname: str
    agent_id: str
    total: Resources
    offer_id: str | None = None


@dataclass(slots=True, eq=False)
class TrackedTask:
    """A task the backend launched that has not ended: it holds its agent's resources.
    `future` is the Dask future once submitted (`Any`: distributed is not annotated)."""

    task_id: str
    key: str
    agent: DaskAgent
    resources: Resources
    spec: dict[str, Any]
    future: Any = None
    reported_running: bool = False
    kill_requested: bool = False


@dataclass(slots=True, frozen=True)
class TaskEnd:
    """How a task ended, kept so that late kills and reconciles get the same answer, with
    the head of its output for `read_log`."""

    status: TaskStatus
    exit_code: int | None = None
    message: str | None = None
    logs: Mapping[str, bytes] = field(default_factory=dict)
    command_started: bool = False


def end_from_result(result: Mapping[str, Any]) -> TaskEnd:
    """KILLED when the worker saw the kill (whatever the exit code), else FINISHED on exit 0
    and FAILED otherwise; the message says the exit status, as the local backend's does."""
    code = result.get("exit_code")
    exit_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    raw = result.get("message")
    message = raw if isinstance(raw, str) else None
    if exit_code is not None:
        said = f"exited with status {exit_code}"
        message = said if message is None else f"{message} ({said})"
    if result.get("killed"):
        status = TaskStatus.KILLED
    else:
        status = TaskStatus.FINISHED if exit_code == 0 else TaskStatus.FAILED
    logs = {stream: bytes(result.get(stream) or b"") for stream in LOG_STREAMS}
    return TaskEnd(status, exit_code, message, logs, bool(result.get("command_started")))


def end_without_result(future_status: str, problem: str, kill_requested: bool) -> TaskEnd | None:
    """A future that brought no result: KILLED when we asked for it, FAILED when the wrapper
    raised on the worker (running it again will not help), else None — the task is LOST."""
    if kill_requested:
        return TaskEnd(TaskStatus.KILLED, None, problem)
    if future_status == "error":
        return TaskEnd(TaskStatus.FAILED, None, problem)
    return None
