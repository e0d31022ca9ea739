"""Tasks: the unit the cluster runs, and the status updates it reports (spec §6.1, §6.2).

Every task kind (job execution steps, node tasks, system tasks) shares this record so that the
agent's task resources, timeouts and reconciliation are computed the same way for all of them.
Time never comes from the clock: every method that needs it takes `when`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from loadmaster.resources import Resources

DEFAULT_RUNNING_TIMEOUT = timedelta(hours=1)
DEFAULT_STAGING_TIMEOUT = timedelta(minutes=2)
RECONCILE_STAGING_AFTER = timedelta(seconds=30)
RECONCILE_RUNNING_AFTER = timedelta(minutes=10)

JOB_TASK_KINDS = frozenset(("pull", "pre", "main", "post"))


class TaskStatus(StrEnum):
    STAGING = "STAGING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    LOST = "LOST"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """LOST is deliberately not terminal: a lost task is relaunched under a new id."""
        return self in _TERMINAL  # a set: a service turn asks this millions of times


_TERMINAL = frozenset((TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus.KILLED))


_MESOS_STATES = {
    "TASK_STAGING": TaskStatus.STAGING,
    "TASK_STARTING": TaskStatus.STAGING,
    "TASK_RUNNING": TaskStatus.RUNNING,
    "TASK_FINISHED": TaskStatus.FINISHED,
    "TASK_FAILED": TaskStatus.FAILED,
    "TASK_ERROR": TaskStatus.FAILED,
    "TASK_KILLED": TaskStatus.KILLED,
    "TASK_LOST": TaskStatus.LOST,
}
_EXIT_STATUS = re.compile(r"exited with status (-?\d+)")


def status_from_mesos(state: str) -> TaskStatus:
    return _MESOS_STATES.get(state, TaskStatus.UNKNOWN)


def exit_code_from_message(message: str | None, status: TaskStatus) -> int | None:
    """Parse "exited with status N"; a FINISHED update without one counts as exit 0."""
    if message:
        match = _EXIT_STATUS.search(message)
        if match:
            return int(match.group(1))
    return 0 if status is TaskStatus.FINISHED else None


@dataclass(slots=True, frozen=True)
class TaskStatusUpdate:
    """What the cluster says happened to a task."""

    task_id: str
    agent_id: str
    status: TaskStatus
    timestamp: datetime
    exit_code: int | None = None
    message: str | None = None
    reason: str | None = None
    source: str | None = None
    data: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Task:
    """A runnable task and its launch/run bookkeeping.

    `kind` names what the task is (`pull`, `pre`, `main`, `post`, `health`, `cleanup`,
    `image-pull`, or a system task's own kind). `command` is an argv list; `shell` asks the
    backend to run `command[0]` through a shell instead, which only job types that say so get.
    """

    id: str
    kind: str
    resources: Resources
    agent_id: str | None = None
    name: str = ""
    command: tuple[str, ...] = ()
    shell: bool = False
    # read-only: the steps of one execution may share one mapping
    environment: Mapping[str, str] = field(default_factory=dict)
    running_timeout: timedelta | None = DEFAULT_RUNNING_TIMEOUT
    staging_timeout: timedelta | None = DEFAULT_STAGING_TIMEOUT
    launched: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    last_status_update: datetime | None = None
    final_status: TaskStatus | None = None
    exit_code: int | None = None
    has_timed_out: bool = False
    _needs_killed: bool = False
    _force_recon: bool = False

    @property
    def is_job_task(self) -> bool:
        return self.kind in JOB_TASK_KINDS

    @property
    def has_been_launched(self) -> bool:
        return self.launched is not None

    @property
    def has_started(self) -> bool:
        return self.started is not None

    @property
    def has_ended(self) -> bool:
        return self.ended is not None

    def launch(self, when: datetime) -> None:
        self.launched = when
        self.last_status_update = when

    def update(self, update: TaskStatusUpdate) -> None:
        """Apply a status update for this task id; updates after the end change nothing."""
        if update.task_id != self.id:
            return
        self._force_recon = False
        self.last_status_update = update.timestamp
        if self.has_ended:
            return
        if update.status is TaskStatus.RUNNING:
            if self.started is None:
                self.started = update.timestamp
        elif update.status is TaskStatus.LOST:
            self.launched = None
            self.started = None
            self.last_status_update = None
        elif update.status.is_terminal:
            self.ended = update.timestamp
            self.final_status = update.status
            self.exit_code = update.exit_code

    def check_timeout(self, when: datetime) -> bool:
        """True once the running (or staging) time passed its limit; stays true until the end."""
        if self.launched is None or self.has_timed_out or self.has_ended:
            return self.has_timed_out
        if self.started is not None:
            limit, since = self.running_timeout, self.started
        else:
            limit, since = self.staging_timeout, self.launched
        if limit is not None and when - since > limit:
            self.has_timed_out = True
            self._needs_killed = True
        return self.has_timed_out

    def needs_killed(self) -> bool:
        if self.last_status_update is None or self.has_ended:
            return False
        return self._needs_killed

    def force_kill(self) -> None:
        self._needs_killed = True

    def force_reconciliation(self) -> None:
        self._force_recon = True

    def needs_reconciliation(self, when: datetime) -> bool:
        if self.launched is None:
            return False
        if self._force_recon:
            return True
        since = self.last_status_update or self.launched
        threshold = RECONCILE_RUNNING_AFTER if self.has_started else RECONCILE_STAGING_AFTER
        return when - since > threshold
