"""The cluster snapshot format v1 (docs/plan-format.md), validated at the edge.

Parsing is strict: unknown fields, wrong types, negative resources, duplicate ids and offers or
tasks of an agent nobody declared are errors that name the field's path, so that a snapshot
that reaches the core is one it can trust.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loadmaster.input_errors import InputError, validation_problems

NodeStateName = Literal[
    "DEPRECATED",
    "OFFLINE",
    "PAUSED",
    "SCHEDULER_STOPPED",
    "DEGRADED",
    "INITIAL_CLEANUP",
    "IMAGE_PULL",
    "READY",
]
JobTaskKind = Literal["pull", "pre", "main", "post"]
NodeTaskKind = Literal["health", "cleanup", "image-pull"]
ResourceMap = dict[str, float]


class SnapshotError(InputError):
    """A snapshot that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _check_resources(value: ResourceMap | None) -> ResourceMap | None:
    if value is None:
        return None
    for name, amount in value.items():
        if not name:
            raise ValueError("resource names must not be empty")
        if amount < 0:
            raise ValueError(f"{name}: must not be negative (got {amount:g})")
        if amount != amount or amount in (float("inf"), float("-inf")):
            raise ValueError(f"{name}: must be a finite number")
    return value


class _HasResources(_Strict):
    resources: ResourceMap = Field(default_factory=dict)

    @field_validator("resources")
    @classmethod
    def _non_negative(cls, value: ResourceMap) -> ResourceMap:
        _check_resources(value)
        return value


class SchedulerIn(_Strict):
    is_paused: bool = False
    queue_mode: Literal["FIFO", "LIFO"] = "FIFO"
    queue_limit: Annotated[int, Field(ge=0)] = 500


class JobTypeIn(_HasResources):
    id: int
    name: str
    version: str = "1.0"
    max_scheduled: Annotated[int, Field(ge=0)] | None = None
    is_paused: bool = False
    steps: list[JobTaskKind] | None = None

    @field_validator("steps")
    @classmethod
    def _has_main(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and "main" not in value:
            raise ValueError("must include main")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not repeat a step")
        return value


class NodeTaskIn(_HasResources):
    id: str
    kind: NodeTaskKind


class NodeIn(_Strict):
    id: int
    hostname: str
    agent_id: str
    state: NodeStateName = "READY"
    pending_node_tasks: list[NodeTaskIn] = Field(default_factory=list)

    @field_validator("pending_node_tasks")
    @classmethod
    def _one_per_kind(cls, value: list[NodeTaskIn]) -> list[NodeTaskIn]:
        kinds = Counter(t.kind for t in value)
        repeated = [k for k, n in kinds.items() if n > 1]
        if repeated:
            raise ValueError(f"at most one pending task per kind; repeated: {', '.join(repeated)}")
        return value


class AgentIn(_Strict):
    agent_id: str
    watermark: ResourceMap | None = None
    total: ResourceMap | None = None

    @field_validator("watermark", "total")
    @classmethod
    def _non_negative(cls, value: ResourceMap | None) -> ResourceMap | None:
        return _check_resources(value)


class OfferIn(_HasResources):
    id: str
    agent_id: str
    received: datetime | None = None


class RunningTaskIn(_HasResources):
    id: str
    agent_id: str
    kind: str


class RunningExecutionIn(_HasResources):
    id: int
    job_type_id: int
    node_id: int
    agent_id: str
    priority: int
    current_task: JobTaskKind | None = None
    remaining_tasks: list[JobTaskKind] = Field(default_factory=list)
    job_id: int | None = None
    exe_num: Annotated[int, Field(ge=1)] = 1


class SystemTaskIn(_HasResources):
    id: str
    kind: str


class QueueEntryIn(_HasResources):
    id: int
    job_id: int
    job_type_id: int
    priority: int
    queued: datetime
    is_canceled: bool = False
    input_workspaces: list[str] = Field(default_factory=list)
    output_workspaces: list[str] = Field(default_factory=list)
    exe_num: Annotated[int, Field(ge=1)] = 1


class Snapshot(_Strict):
    version: Literal[1]
    when: datetime
    scheduler: SchedulerIn = Field(default_factory=SchedulerIn)
    job_types: list[JobTypeIn] = Field(default_factory=list)
    workspaces: list[str] = Field(default_factory=list)
    nodes: list[NodeIn] = Field(default_factory=list)
    agents: list[AgentIn] = Field(default_factory=list)
    offers: list[OfferIn] = Field(default_factory=list)
    running_tasks: list[RunningTaskIn] = Field(default_factory=list)
    running_executions: list[RunningExecutionIn] = Field(default_factory=list)
    system_tasks: list[SystemTaskIn] = Field(default_factory=list)
    queue: list[QueueEntryIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Snapshot:
        problems = list(self._duplicate_problems()) + list(self._agent_problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _duplicate_problems(self) -> Iterable[str]:
        yield from _duplicates("job_types", "id", [t.id for t in self.job_types])
        yield from _duplicates("nodes", "id", [n.id for n in self.nodes])
        yield from _duplicates("nodes", "hostname", [n.hostname for n in self.nodes])
        yield from _duplicates("nodes", "agent_id", [n.agent_id for n in self.nodes])
        yield from _duplicates("agents", "agent_id", [a.agent_id for a in self.agents])
        yield from _duplicates("offers", "id", [o.id for o in self.offers])
        yield from _duplicates("running_executions", "id", [e.id for e in self.running_executions])
        yield from _duplicates("queue", "id", [q.id for q in self.queue])
        yield from _duplicates("queue", "job_id", [q.job_id for q in self.queue])
        task_ids = (
            [t.id for t in self.running_tasks]
            + [t.id for n in self.nodes for t in n.pending_node_tasks]
            + [t.id for t in self.system_tasks]
        )
        yield from _duplicates("tasks", "id", task_ids)

    def _agent_problems(self) -> Iterable[str]:
        known = {n.agent_id for n in self.nodes} | {a.agent_id for a in self.agents}
        for i, offer in enumerate(self.offers):
            if offer.agent_id not in known:
                yield f"offers[{i}].agent_id: agent {offer.agent_id!r} is neither a node's agent nor listed in agents"
        for i, task in enumerate(self.running_tasks):
            if task.agent_id not in known:
                yield f"running_tasks[{i}].agent_id: agent {task.agent_id!r} is neither a node's agent nor listed in agents"

    def when_utc(self) -> datetime:
        return as_utc(self.when)


def as_utc(value: datetime) -> datetime:
    """Naive times in a snapshot are read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _duplicates(section: str, key: str, values: Sequence[object]) -> Iterable[str]:
    for value, count in Counter(values).items():
        if count > 1:
            yield f"{section}: duplicate {key} {value!r}"


def parse_snapshot(text: str | bytes) -> Snapshot:
    """Parse and validate; raises SnapshotError with one line per problem."""
    try:
        return Snapshot.model_validate_json(text)
    except ValidationError as exc:
        raise SnapshotError(validation_problems(exc)) from None
