"""The one runtime object of a scheduler process: every piece of core state, built once.

The reference kept these as process globals; here they are fields of one object that the
service builds at start and passes down, so two schedulers (or a test and a scheduler) can
live in one process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.gpus import GpuTable
from loadmaster.model.job_types import JobTypeRegistry
from loadmaster.model.nodes import NodeRegistry, NodeTaskFactory
from loadmaster.model.offers import OfferBook
from loadmaster.model.queue import QueueMode
from loadmaster.model.settings import SchedulerSettings
from loadmaster.model.system_tasks import ServiceSpec, SystemTaskManager
from loadmaster.model.task_registry import TaskRegistry
from loadmaster.model.warnings import WarningBoard
from loadmaster.resources import Resources
from loadmaster.scheduling.backfill import BackfillPlacement
from loadmaster.scheduling.engines import placement_engine
from loadmaster.scheduling.manager import SchedulingManager
from loadmaster.scheduling.ports import SchedulingStore
from loadmaster.service.config import Config
from loadmaster.service.estimates import ObservedEstimates


def service_specs(config: Config) -> list[ServiceSpec]:
    return [
        ServiceSpec(
            name=s.name,
            command=tuple(s.command),
            resources=Resources(s.resources),
            desired_count=s.count,
            shell=s.shell,
            environment=dict(s.env),
        )
        for s in config.services
    ]


@dataclass(slots=True)
class Runtime:
    config: Config
    store: SchedulingStore
    node_task_factory: NodeTaskFactory | None
    offers: OfferBook = field(default_factory=OfferBook)
    nodes: NodeRegistry = field(default_factory=NodeRegistry)
    job_types: JobTypeRegistry = field(default_factory=JobTypeRegistry)
    gpus: GpuTable = field(default_factory=GpuTable)
    tasks: TaskRegistry = field(default_factory=TaskRegistry)
    warnings: WarningBoard = field(default_factory=WarningBoard)
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    executions: JobExecutionManager = field(init=False)
    system_tasks: SystemTaskManager = field(init=False)
    manager: SchedulingManager = field(init=False)
    estimates: ObservedEstimates = field(init=False)

    def __post_init__(self) -> None:
        scheduler = self.config.scheduler
        self.settings.queue_mode = QueueMode(scheduler.queue_mode)
        self.settings.queue_limit = scheduler.queue_limit
        self.executions = JobExecutionManager(gpus=self.gpus)
        self.system_tasks = SystemTaskManager.of(scheduler.framework_id, service_specs(self.config))
        self.estimates = ObservedEstimates(self.job_types, self.executions)
        placement = placement_engine(scheduler.engine)
        if scheduler.policy == "backfill":
            placement = BackfillPlacement(self.estimates, base=placement)
        self.manager = SchedulingManager(
            offers=self.offers,
            nodes=self.nodes,
            job_types=self.job_types,
            executions=self.executions,
            tasks=self.tasks,
            system_tasks=self.system_tasks,
            store=self.store,
            settings=self.settings,
            warnings=self.warnings,
            node_task_factory=self.node_task_factory,
            placement=placement,
            count_beyond_queue_limit=False,
        )
