"""Request bodies and response shapes (pydantic at the edge only). Unknown fields are refused
so a typo is an error, not a silently ignored setting."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loadmaster.service.workload import JobTypeIn

ResourceMap = dict[Annotated[str, Field(min_length=1, max_length=64)], float]
StepName = Literal["pull", "pre", "main", "post"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _non_negative(value: dict[str, float] | None) -> dict[str, float] | None:
    for name, amount in (value or {}).items():
        if amount != amount or amount in (float("inf"), float("-inf")):
            raise ValueError(f"{name}: must be a finite number")
        if amount < 0:
            raise ValueError(f"{name}: must not be negative (got {amount:g})")
    return value


class JobTypeCreate(JobTypeIn):
    """A workload file's job type, plus the environment keys whose values are secret."""

    secret_keys: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)

    @field_validator("resources")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        _non_negative(value)
        return value


class JobTypeUpdate(_In):
    """Only the fields given change; `null` clears `max_scheduled` and `timeout_seconds`."""

    resources: ResourceMap | None = None
    max_scheduled: Annotated[int, Field(ge=0)] | None = None
    max_tries: Annotated[int, Field(ge=1)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    steps: dict[StepName, Annotated[list[str], Field(min_length=1)]] | None = None
    shell: bool | None = None
    env: dict[str, str] | None = None
    secret_keys: list[Annotated[str, Field(min_length=1)]] | None = None
    retry_main_failures: bool | None = None

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _non_negative(value)


class StepOut(BaseModel):
    command: list[str]
    shell: bool


class JobTypeOut(BaseModel):
    id: int
    name: str
    version: str
    resources: dict[str, float]
    max_scheduled: int | None
    max_tries: int
    timeout_seconds: float | None
    steps: list[str]
    commands: dict[str, StepOut]
    env: dict[str, str]
    secret_keys: list[str]
    retry_main_failures: bool
    is_paused: bool
    is_system: bool


class JobSubmit(_In):
    """`job_type_id`, or `job_type` as `name:version` (or a bare name with one version)."""

    job_type_id: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    job_type: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    priority: int = Field(default=100, ge=-(2**31), le=2**31 - 1)
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    input_workspaces: list[str] = Field(default_factory=list)
    output_workspaces: list[str] = Field(default_factory=list)
    input_file_size_mib: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0


class JobBatch(_In):
    jobs: Annotated[list[JobSubmit], Field(min_length=1)]


class JobOut(BaseModel):
    id: int
    job_type_id: int
    job_type: str | None
    priority: int
    status: str
    num_exes: int
    max_tries: int
    resources: dict[str, float]
    created: datetime
    queued: datetime | None
    started: datetime | None
    ended: datetime | None
    error: str | None
    idempotency_key: str | None
    cancel_requested: datetime | None
    env: dict[str, str]
    input_workspaces: list[str]
    output_workspaces: list[str]
    input_file_size_mib: float


class SubmitOut(BaseModel):
    job: JobOut
    created: bool


class BatchOut(BaseModel):
    jobs: list[SubmitOut]


class JobPageOut(BaseModel):
    items: list[JobOut]
    next_before_id: int | None


class CancelOut(BaseModel):
    outcome: str
    job: JobOut


class Requeue(_In):
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)


class TaskOut(BaseModel):
    task_id: str
    kind: str
    agent_id: str | None
    status: str | None
    exit_code: int | None
    launched: datetime | None
    started: datetime | None
    ended: datetime | None
    last_status_update: datetime | None


class ExecutionOut(BaseModel):
    id: int
    job_id: int
    job_type_id: int
    exe_num: int
    priority: int
    node_id: int | None
    agent_id: str | None
    status: str
    error: str | None
    exit_code: int | None
    resources: dict[str, float]
    queued: datetime
    started: datetime | None
    ended: datetime | None
    tasks: list[TaskOut]


class ExecutionPageOut(BaseModel):
    items: list[ExecutionOut]
    next_before_id: int | None


class EventOut(BaseModel):
    id: int
    occurred: datetime
    what: str
    detail: dict[str, object]


class NodePause(_In):
    reason: Annotated[str, Field(min_length=1, max_length=250)]


class SchedulerOut(BaseModel):
    is_paused: bool
    queue_mode: str
    queue_limit: int


class SchedulerUpdate(_In):
    is_paused: bool | None = None
    queue_mode: Literal["FIFO", "LIFO", "fifo", "lifo"] | None = None
    queue_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class QueueStatusOut(BaseModel):
    job_type_id: int
    name: str
    version: str
    is_paused: bool
    count: int
    highest_priority: int
    longest_queued: datetime
    unmet_resources: str | None


class PendingJobOut(BaseModel):
    job_id: int
    queue_id: int
    job_type_id: int
    reason: str
    detail: str
    can_wait_help: bool


class PendingOut(BaseModel):
    cycle: datetime | None
    reasons: dict[str, int]
    jobs: list[PendingJobOut]


class WorkloadSubmit(_In):
    """A workload file's content (job types, then jobs), as JSON."""

    job_types: list[dict[str, object]] = Field(default_factory=list)
    jobs: list[dict[str, object]] = Field(default_factory=list)


class WorkloadOut(BaseModel):
    job_ids: list[int]
    job_type_ids: list[int]
