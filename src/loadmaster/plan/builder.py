"""Turn a validated snapshot into the live state objects one cycle runs over.

The reading rules are the ones docs/plan-format.md fixes, so that every reader of a snapshot
(the plan command, the benchmarks, the equivalence tests) decides alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import ExecutionSpec, RunningJobExecution, cluster_id_for
from loadmaster.model.job_types import REGULAR_STEPS, JobType, JobTypeRegistry
from loadmaster.model.node_conditions import NodeErrorName
from loadmaster.model.nodes import IMAGE_PULL, Node, NodeRegistry, NodeState
from loadmaster.model.offers import OfferBook, ResourceOffer
from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.model.settings import SchedulerSettings
from loadmaster.model.system_tasks import StaticSystemTasks
from loadmaster.model.task_registry import TaskRegistry
from loadmaster.model.tasks import Task
from loadmaster.plan.snapshot import NodeIn, QueueEntryIn, RunningExecutionIn, Snapshot, as_utc
from loadmaster.resources import Resources
from loadmaster.scheduling.manager import SchedulingManager
from loadmaster.scheduling.placement import PlacementEngine
from loadmaster.store.memory import MemoryStore

PLAN_FRAMEWORK_ID = "plan"


@dataclass(slots=True)
class RecordingClient:
    """A cluster client that launches nothing and remembers what it was asked to do."""

    framework: str | None = PLAN_FRAMEWORK_ID
    accepted: list[tuple[list[ResourceOffer], list[Task]]] = field(default_factory=list)
    declined: list[ResourceOffer] = field(default_factory=list)

    def framework_id(self) -> str | None:
        return self.framework

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        self.accepted.append((list(offers), list(tasks)))

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        self.declined.extend(offers)


@dataclass(slots=True)
class PlanState:
    manager: SchedulingManager
    store: MemoryStore
    when: datetime
    declined_at_ingestion: list[ResourceOffer]


def _res(values: Mapping[str, float] | None) -> Resources:
    return Resources(values or {})


def build_node(spec: NodeIn, scheduler_paused: bool, when: datetime) -> Node:
    """Flags that make the node's derived state equal the snapshot's state."""
    state = NodeState(spec.state)
    pending_pull = any(t.kind == IMAGE_PULL for t in spec.pending_node_tasks)
    node = Node(
        id=spec.id,
        hostname=spec.hostname,
        agent_id=spec.agent_id,
        is_active=state is not NodeState.DEPRECATED,
        is_online=state is not NodeState.OFFLINE,
        is_paused=state is NodeState.PAUSED,
        is_scheduler_paused=state is NodeState.SCHEDULER_STOPPED or scheduler_paused,
        is_initial_cleanup_completed=state is not NodeState.INITIAL_CLEANUP,
        is_image_pulled=state
        in (NodeState.READY, NodeState.PAUSED, NodeState.SCHEDULER_STOPPED, NodeState.DEGRADED)
        and not (state is NodeState.DEGRADED and pending_pull),
    )
    if state is NodeState.DEGRADED:
        node.conditions.activate_error(NodeErrorName.HEALTH_FAIL, when)
    for task in spec.pending_node_tasks:
        node.tasks[task.kind] = Task(
            task.id, task.kind, _res(task.resources), agent_id=spec.agent_id
        )
    return node


def build_execution(spec: RunningExecutionIn, when: datetime) -> RunningJobExecution:
    steps = ((spec.current_task,) if spec.current_task else ()) + tuple(spec.remaining_tasks)
    job_id = spec.job_id if spec.job_id is not None else spec.id
    exe = RunningJobExecution.create(
        ExecutionSpec(
            id=spec.id,
            job_id=job_id,
            job_type_id=spec.job_type_id,
            node_id=spec.node_id,
            agent_id=spec.agent_id,
            priority=spec.priority,
            resources=_res(spec.resources),
            queued=when,
            started=when,
            cluster_id=cluster_id_for(PLAN_FRAMEWORK_ID, job_id, spec.exe_num),
            steps=steps,
            exe_num=spec.exe_num,
        )
    )
    if spec.current_task:
        task = exe.start_next_task()
        assert task is not None
        task.launch(when)
    return exe


def build_offers(snapshot: Snapshot, when: datetime) -> tuple[OfferBook, list[ResourceOffer]]:
    """Seed agents, then take the offers in (all declined at once while the scheduler is paused)."""
    book = OfferBook()
    for agent in snapshot.agents:
        record = book.agent(agent.agent_id)
        if agent.total is not None:
            record.total = _res(agent.total)
        if agent.watermark is not None:
            record.seed_watermark(_res(agent.watermark))
    book.mark_watermark_reset(when)
    offers = [
        ResourceOffer(
            o.id, o.agent_id, _res(o.resources), as_utc(o.received) if o.received else when
        )
        for o in snapshot.offers
    ]
    if snapshot.scheduler.is_paused:
        return book, offers
    book.add_new_offers(offers)
    return book, []


def build_state(snapshot: Snapshot, placement: PlacementEngine | None = None) -> PlanState:
    when = snapshot.when_utc()
    paused = snapshot.scheduler.is_paused
    settings = SchedulerSettings(
        is_paused=paused,
        queue_mode=QueueMode(snapshot.scheduler.queue_mode),
        queue_limit=snapshot.scheduler.queue_limit,
    )
    job_types = JobTypeRegistry.of(
        JobType(
            id=t.id,
            name=t.name,
            version=t.version,
            resources=_res(t.resources),
            max_scheduled=t.max_scheduled,
            is_paused=t.is_paused,
            steps=tuple(t.steps) if t.steps is not None else REGULAR_STEPS,
        )
        for t in snapshot.job_types
    )
    nodes = NodeRegistry()
    for node_spec in snapshot.nodes:
        nodes.add(build_node(node_spec, paused, when))
    book, declined = build_offers(snapshot, when)
    tasks = TaskRegistry()
    for t in snapshot.running_tasks:
        task = Task(t.id, t.kind, _res(t.resources), agent_id=t.agent_id)
        task.launch(when)
        tasks.add_running(task)
    executions = JobExecutionManager()
    executions.schedule_job_exes(build_execution(e, when) for e in snapshot.running_executions)
    system_tasks = StaticSystemTasks(
        [Task(t.id, t.kind, _res(t.resources), running_timeout=None) for t in snapshot.system_tasks]
    )
    first_id = max((e.id for e in snapshot.running_executions), default=0) + 1
    store = MemoryStore.of((_entry(q) for q in snapshot.queue), first_execution_id=first_id)
    manager = SchedulingManager(
        offers=book,
        nodes=nodes,
        job_types=job_types,
        executions=executions,
        tasks=tasks,
        system_tasks=system_tasks,
        store=store,
        settings=settings,
        workspaces=frozenset(snapshot.workspaces),
        placement=placement,
    )
    return PlanState(manager, store, when, declined)


def _entry(q: QueueEntryIn) -> QueueEntry:
    return QueueEntry(
        id=q.id,
        job_id=q.job_id,
        job_type_id=q.job_type_id,
        priority=q.priority,
        queued=as_utc(q.queued),
        resources=_res(q.resources),
        is_canceled=q.is_canceled,
        exe_num=q.exe_num,
        input_workspaces=tuple(q.input_workspaces),
        output_workspaces=tuple(q.output_workspaces),
    )
