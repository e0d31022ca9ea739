"""The values the store's service-facing API takes and returns.

They are plain frozen dataclasses so the service and the API layer never hold a database row
or a session: what they read is a snapshot, and every change goes through a repository
method that is one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.job_types import REGULAR_STEPS, JobType, StepSpec
from loadmaster.model.queue import QueueMode
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources
from loadmaster.store.validation import check_job_type_spec, check_submission

DEFAULT_PRIORITY = 100  # lower runs first


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def has_ended(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


class EntityKind(StrEnum):
    JOB = "job"
    JOB_TYPE = "job_type"
    EXECUTION = "execution"
    NODE = "node"
    SCHEDULER = "scheduler"


# -- job types ---------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class JobTypeSpec:
    """What a job type is made of; validated on construction, so an invalid one never exists.

    `secret_keys` names the environment variables whose values must be masked wherever a job
    type is shown; the values themselves are stored and handed to tasks unmasked.
    """

    name: str
    version: str = "1.0"
    resources: Resources = field(default_factory=Resources)
    max_scheduled: int | None = None
    max_tries: int = 3
    timeout_seconds: float | None = None
    steps: tuple[str, ...] = REGULAR_STEPS
    commands: Mapping[str, StepSpec] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    retry_main_failures: bool = False
    is_system: bool = False
    is_long_running: bool = False
    is_paused: bool = False

    @classmethod
    def of(cls, job_type: JobType, secret_keys: frozenset[str] = frozenset()) -> JobTypeSpec:
        """The definition of an existing `JobType` value (its id is not part of it)."""
        return cls(
            name=job_type.name,
            version=job_type.version,
            resources=job_type.resources,
            max_scheduled=job_type.max_scheduled,
            max_tries=job_type.max_tries,
            timeout_seconds=job_type.timeout_seconds,
            steps=job_type.steps,
            commands=dict(job_type.commands),
            environment=dict(job_type.environment),
            secret_keys=secret_keys,
            retry_main_failures=job_type.retry_main_failures,
            is_system=job_type.is_system,
            is_long_running=job_type.is_long_running,
            is_paused=job_type.is_paused,
        )

    def __post_init__(self) -> None:
        check_job_type_spec(
            name=self.name,
            version=self.version,
            resources=self.resources,
            max_scheduled=self.max_scheduled,
            max_tries=self.max_tries,
            timeout_seconds=self.timeout_seconds,
            steps=self.steps,
            commands=self.commands,
            environment=self.environment,
            secret_keys=self.secret_keys,
        )


class JobTypeChanges(TypedDict, total=False):
    """The editable fields of a job type; name and version are its identity and never change.
    Pausing has its own methods because it stamps `paused`."""

    resources: Resources
    max_scheduled: int | None
    max_tries: int
    timeout_seconds: float | None
    steps: tuple[str, ...]
    commands: Mapping[str, StepSpec]
    environment: Mapping[str, str]
    secret_keys: frozenset[str]
    retry_main_failures: bool
    is_system: bool
    is_long_running: bool


# -- jobs --------------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class JobSubmission:
    """A request to run a job once. With an `idempotency_key`, submitting it again (a client
    retry after a timeout, say) returns the first job instead of queueing a second one."""

    job_type_id: int
    priority: int = DEFAULT_PRIORITY
    idempotency_key: str | None = None
    input_workspaces: tuple[str, ...] = ()
    output_workspaces: tuple[str, ...] = ()
    input_file_size_mib: float = 0.0
    environment: Mapping[str, str] = field(default_factory=dict)  # added to its job type's

    def __post_init__(self) -> None:
        check_submission(
            environment=self.environment,
            priority=self.priority,
            idempotency_key=self.idempotency_key,
            input_workspaces=self.input_workspaces,
            output_workspaces=self.output_workspaces,
            input_file_size_mib=self.input_file_size_mib,
        )


@dataclass(slots=True, frozen=True)
class JobRecord:
    id: int
    job_type_id: int
    priority: int
    status: JobStatus
    num_exes: int
    max_tries: int
    resources: Resources
    created: datetime
    queued: datetime | None
    started: datetime | None
    ended: datetime | None
    error: str | None
    idempotency_key: str | None
    input_workspaces: tuple[str, ...]
    output_workspaces: tuple[str, ...]
    input_file_size_mib: float
    cancel_requested: datetime | None
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True, frozen=True)
class SubmitResult:
    job: JobRecord
    created: bool  # False: the idempotency key matched an earlier submission


@dataclass(slots=True, frozen=True)
class JobFilter:
    """Empty sets and None bounds mean "any"; time bounds apply to `created`, from inclusive,
    until exclusive."""

    statuses: frozenset[JobStatus] = frozenset()
    job_type_ids: frozenset[int] = frozenset()
    priority_min: int | None = None
    priority_max: int | None = None
    created_from: datetime | None = None
    created_until: datetime | None = None


@dataclass(slots=True, frozen=True)
class JobPage:
    """Newest first; pass `next_before_id` back to get the following page (None: no more)."""

    jobs: tuple[JobRecord, ...]
    next_before_id: int | None


class CancelOutcome(StrEnum):
    CANCELED = "CANCELED"  # it was queued: its entry is gone and the job is CANCELED
    KILL_REQUESTED = "KILL_REQUESTED"  # it is running: the service must kill its tasks
    ALREADY_ENDED = "ALREADY_ENDED"


@dataclass(slots=True, frozen=True)
class KillRequest:
    execution_id: int
    job_id: int
    node_id: int | None
    agent_id: str | None
    task_ids: tuple[str, ...]  # tasks launched and not yet ended


@dataclass(slots=True, frozen=True)
class CancelResult:
    outcome: CancelOutcome
    job: JobRecord
    kill: KillRequest | None = None


# -- executions and tasks ----------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class TaskLaunch:
    execution_id: int
    task_id: str
    kind: str
    agent_id: str | None
    launched: datetime


@dataclass(slots=True, frozen=True)
class TaskRecord:
    task_id: str
    kind: str
    agent_id: str | None
    status: TaskStatus | None
    exit_code: int | None
    launched: datetime | None
    started: datetime | None
    ended: datetime | None
    last_status_update: datetime | None


@dataclass(slots=True, frozen=True)
class ExecutionRecord:
    id: int
    job_id: int
    job_type_id: int
    queue_id: int
    exe_num: int
    priority: int
    node_id: int | None
    agent_id: str | None
    status: ExecutionStatus
    error: str | None
    exit_code: int | None
    resources: Resources
    input_file_size_mib: float
    timeout_seconds: float | None
    queued: datetime
    started: datetime | None
    ended: datetime | None
    cancel_requested: datetime | None = None  # of its job: a restarted service must kill it
    environment: tuple[tuple[str, str], ...] = ()  # its job's own, added to the job type's
    tasks: tuple[TaskRecord, ...] = ()


@dataclass(slots=True, frozen=True)
class FinishResult:
    execution: ExecutionRecord
    job: JobRecord
    requeued_queue_id: int | None  # the new entry, when the job went back to the queue
    already_finished: bool = False  # a repeated call: nothing was changed


# -- nodes, configuration, events, queue status -----------------------------------------------
@dataclass(slots=True, frozen=True)
class NodeSighting:
    hostname: str
    agent_id: str | None = None


@dataclass(slots=True, frozen=True)
class NodeRecord:
    id: int
    hostname: str
    agent_id: str | None
    is_paused: bool
    pause_reason: str | None
    is_active: bool
    deprecated: datetime | None
    last_offer_received: datetime | None
    created: datetime
    last_modified: datetime


class SchedulerChanges(TypedDict, total=False):
    is_paused: bool
    queue_mode: QueueMode | str
    queue_limit: int


@dataclass(slots=True, frozen=True)
class NewEvent:
    entity_kind: EntityKind
    entity_id: int
    what: str
    detail: Mapping[str, object] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Event:
    id: int
    occurred: datetime
    entity_kind: EntityKind
    entity_id: int
    what: str
    detail: Mapping[str, object]


@dataclass(slots=True, frozen=True)
class QueueStatus:
    """One line of "what is waiting" per job type (spec §5.4)."""

    job_type_id: int
    name: str
    version: str
    is_paused: bool
    count: int
    highest_priority: int  # the lowest number, i.e. the entry that runs first
    longest_queued: datetime
    unmet_resources: str | None
