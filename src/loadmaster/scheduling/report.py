"""What one cycle decided, as data: the source of the plan, the logs and the metrics.

`perform_scheduling` returns only the number of launched tasks (the seed API); everything a
person or a program may ask about the cycle is kept here instead of in log lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.warnings import SchedulerWarning
from loadmaster.resources import Resources
from loadmaster.scheduling.reasons import Unscheduled


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class ScheduledEntry:
    queue_id: int
    job_id: int
    job_type_id: int
    node_id: int
    agent_id: str
    score: int
    resources: Resources
    execution_id: int | None = None


@dataclass(slots=True, frozen=True)
class Reservation:
    node_id: int
    queue_id: int
    score: int


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class LaunchedTask:
    id: str
    kind: str
    resources: Resources
    queue_id: int | None = None
    execution_id: int | None = None


@dataclass(slots=True, frozen=True)
class Launch:
    node_id: int
    agent_id: str
    offer_ids: tuple[str, ...]
    tasks: tuple[LaunchedTask, ...]
    error: str | None = None


@dataclass(slots=True, frozen=True)
class WaitingTask:
    id: str
    kind: str
    agent_id: str | None
    execution_id: int | None = None
    cycles_waiting: int = 1


@dataclass(slots=True)
class CycleReport:
    when: datetime
    engine: str = "reference"
    tasks_launched: int = 0
    scheduled: list[ScheduledEntry] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    launches: list[Launch] = field(default_factory=list)
    declined_offers: list[str] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    waiting_tasks: list[WaitingTask] = field(default_factory=list)
    lost_executions: list[int] = field(default_factory=list)
    finished_executions: list[int] = field(default_factory=list)
    system_tasks_scheduled: list[str] = field(default_factory=list)
    warnings: list[SchedulerWarning] = field(default_factory=list)
    unscheduled: list[Unscheduled] = field(default_factory=list)
    beyond_queue_limit: int = 0
    largest_node: Resources = field(default_factory=Resources)
    cluster_total: Resources = field(default_factory=Resources)
    abandoned: str | None = None
    store_error: str | None = None

    @property
    def job_executions_scheduled(self) -> int:
        return len(self.scheduled)

    @property
    def offers_accepted(self) -> int:
        return sum(len(launch.offer_ids) for launch in self.launches)

    def did_something(self) -> bool:
        return bool(self.tasks_launched or self.scheduled or self.canceled or self.lost_executions)
