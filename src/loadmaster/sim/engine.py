"""The discrete-event replay: a workload through the production `SchedulingManager`.

Each cycle does what the service does around `run_cycle`, in the same order: status updates
are applied through the task and execution registries, jobs whose submit time has come are
queued in a `MemoryStore`, the simulated cluster's offers go into the offer book, the manager
runs one cycle against the cluster as its client, and the updates of what was just launched
are applied. Everything else — the checks, scoring, reservations, offer matching — is the
core's own code.

Time: one cycle per `cycle_seconds` while cycles change something and work is queued. Any
other cycle is followed by a jump to the first tick at or after the next event that could
change something: the next arrival the cluster can hold, or — only while work is queued — the
next task end (with nothing queued, an end only frees room, and the next arrival's cycle sees
it: its update carries its own time). Arrivals no node can ever hold cause no cycle. Once
nothing can arrive any more, the replay jumps to the last task end and stops.

Nodes start READY (initial cleanup done, image pulled, health just checked) and no node task
ever runs: the manager gets no node-task factory, so cleanup, health checks and image pulls
cost nothing. Finished executions still go to their node's cleanup list as in the service;
that list only grows (and may raise SLOW_CLEANUP), which changes no scheduling decision.

Determinism: nothing is random. Arrivals keep trace order (submit time, then job number),
nodes keep trace order, and the core breaks ties by that order; `seed` is recorded and seeds a
generator the engine owns for any component that needs randomness.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from loadmaster.cluster.protocol import AgentInfo
from loadmaster.cluster.simulated import SimulatedCluster
from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import ExecutionStatus, RunningJobExecution
from loadmaster.model.job_types import JobType, JobTypeRegistry
from loadmaster.model.nodes import Node, NodeRegistry
from loadmaster.model.offers import OfferBook
from loadmaster.model.queue import DEFAULT_QUEUE_LIMIT, QueueEntry
from loadmaster.model.settings import SchedulerSettings
from loadmaster.model.system_tasks import StaticSystemTasks
from loadmaster.model.task_registry import TaskRegistry
from loadmaster.model.tasks import Task, TaskStatus
from loadmaster.scheduling.backfill import BackfillPlacement, BackfillSession
from loadmaster.scheduling.checks import resource_problems
from loadmaster.scheduling.manager import SchedulingManager
from loadmaster.scheduling.placement import PlacementEngine, ReferencePlacement
from loadmaster.scheduling.reasons import ReasonCode
from loadmaster.scheduling.report import CycleReport
from loadmaster.sim.clock import VirtualClock, next_tick
from loadmaster.sim.estimates import TraceEstimates
from loadmaster.sim.fragmentation import WaitingShapes
from loadmaster.sim.policies import get_policy
from loadmaster.sim.workload import TraceJob, Workload
from loadmaster.store.memory import MemoryStore

FloatArray = npt.NDArray[np.float64]
# An entry the cluster can never run: waiting cannot help, so the replay takes it out.
_NEVER_FITS = frozenset((ReasonCode.INVALID_RESOURCES, ReasonCode.INSUFFICIENT_RESOURCES))


class JobOutcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    INFEASIBLE = "infeasible"
    RUNNING_AT_END = "running_at_end"
    QUEUED_AT_END = "queued_at_end"
    NOT_SUBMITTED = "not_submitted"


@dataclass(slots=True, frozen=True)
class SimulationConfig:
    cycle_seconds: float = 1.0
    seed: int = 0
    queue_limit: int = DEFAULT_QUEUE_LIMIT
    until_seconds: float | None = None
    sample_fragmentation: bool = True

    def __post_init__(self) -> None:
        if self.cycle_seconds <= 0:
            raise ValueError("cycle_seconds: must be positive")
        if self.queue_limit < 1:
            raise ValueError("queue_limit: must be at least 1")


@dataclass(slots=True)
class JobRecord:
    """What happened to one trace job; times are simulated seconds since the trace start."""

    job: TraceJob
    job_type_id: int
    queue_id: int
    outcome: JobOutcome = JobOutcome.NOT_SUBMITTED
    start: float | None = None
    end: float | None = None
    node: str | None = None
    reason: str | None = None
    backfilled: bool = False

    @property
    def wait(self) -> float | None:
        return None if self.start is None else self.start - self.job.submit_seconds


@dataclass(slots=True)
class Fragmentation:
    """Per-cycle samples, kept only when they change: times, fragmented amounts per resource,
    and whether anything was waiting."""

    times: list[float] = field(default_factory=list)
    amounts: list[FloatArray] = field(default_factory=list)
    waiting: list[bool] = field(default_factory=list)


@dataclass(slots=True)
class SimulationResult:
    workload: Workload
    policy: str
    config: SimulationConfig
    records: list[JobRecord]
    resource_names: tuple[str, ...]
    capacity: dict[str, float]
    fragmentation: Fragmentation
    cycles: int
    wall_seconds: float
    end_seconds: float


CycleObserver = Callable[["Simulation", CycleReport], None]
Progress = Callable[[int, int], None]


class Simulation:
    """One replay of a workload under one placement policy."""

    def __init__(
        self,
        workload: Workload,
        policy: str | PlacementEngine = "reference",
        config: SimulationConfig | None = None,
        *,
        base: PlacementEngine | None = None,
        observer: CycleObserver | None = None,
    ) -> None:
        self.workload = workload
        self.config = config or SimulationConfig()
        self.random = random.Random(self.config.seed)
        self.observer = observer
        self.clock = VirtualClock(workload.start_time)
        self.jobs: dict[int, TraceJob] = {}
        for job in workload.jobs:
            if job.job_id in self.jobs:
                raise ValueError(f"{workload.source}: job {job.job_id} appears twice")
            self.jobs[job.job_id] = job
        self.estimates = TraceEstimates(self.jobs)
        if isinstance(policy, str):
            chosen = get_policy(policy)
            self.placement = chosen.build(self.estimates, base or ReferencePlacement())
            # the policy's name, not the engine's: "reference" over the fast base is "fast"
            self.policy_name = chosen.name
        else:
            self.placement = policy
            self.policy_name = policy.name
        self._build_state()
        type_ids = {jt.name: jt.id for jt in workload.job_types}
        self.records = [
            JobRecord(job, type_ids[job.job_type], index)
            for index, job in enumerate(workload.jobs, start=1)
        ]
        self._by_queue_id = {r.queue_id: r for r in self.records}
        self._by_job_id = {r.job.job_id: r for r in self.records}
        self._next_arrival = 0
        self._waiting = WaitingShapes(self.cluster.resource_names)
        self.fragmentation = Fragmentation()
        self.cycles = 0
        self.settled = 0
        self.last_report: CycleReport | None = None
        self.backfill_session: BackfillSession | None = None

    # -- construction -------------------------------------------------------------------------
    def _build_state(self) -> None:
        start = self.clock.now()
        self.nodes = NodeRegistry()
        self.offers = OfferBook()
        agents: list[AgentInfo] = []
        self.hostnames: dict[int, str] = {}
        for node_id, spec in enumerate(self.workload.nodes, start=1):
            agent_id = f"agent-{node_id}"
            self.nodes.add(
                Node(
                    node_id,
                    spec.hostname,
                    agent_id,
                    is_initial_cleanup_completed=True,
                    is_image_pulled=True,
                    last_health_task=start,
                    last_offer_received=start,
                )
            )
            self.hostnames[node_id] = spec.hostname
            agent = self.offers.agent(agent_id)
            agent.set_total(spec.resources)
            agent.seed_watermark(spec.resources)
            agents.append(AgentInfo(agent_id, spec.hostname, spec.resources))
        self.offers.mark_watermark_reset(start)
        self.job_types = JobTypeRegistry.of(
            JobType(jt.id, jt.name, resources=jt.resources, steps=("main",))
            for jt in self.workload.job_types
        )
        self.executions = JobExecutionManager()
        self.tasks = TaskRegistry()
        self.store = MemoryStore()
        self.cluster = SimulatedCluster(self.clock, agents, self._run_time, strict=True)
        self.cluster.start()
        self.manager = SchedulingManager(
            offers=self.offers,
            nodes=self.nodes,
            job_types=self.job_types,
            executions=self.executions,
            tasks=self.tasks,
            system_tasks=StaticSystemTasks(),
            store=self.store,
            settings=SchedulerSettings(queue_limit=self.config.queue_limit),
            placement=self.placement,
        )
        self.largest_node = self.offers.max_available_resources()
        self.node_shapes = list(dict.fromkeys(spec.resources for spec in self.workload.nodes))

    def _run_time(self, task: Task) -> float | None:
        exe = self.executions.for_task(task.id)
        if exe is None:
            return None
        return self.jobs[exe.job_id].run_seconds

    # -- the loop -----------------------------------------------------------------------------
    def run(self, progress: Progress | None = None) -> SimulationResult:
        began = time.perf_counter()
        jobs = self.workload.jobs
        if jobs:
            now = next_tick(jobs[0].submit_seconds, self.config.cycle_seconds)
            until = self.config.until_seconds
            while until is None or now <= until:
                self.clock.advance_to(max(now, self.clock.seconds))
                changed = self._cycle()
                if progress is not None:
                    progress(self.settled, len(jobs))
                following = self._next_cycle(changed)
                if following is None:
                    break
                now = following
        self._finish()
        return SimulationResult(
            workload=self.workload,
            policy=self.policy_name,
            config=self.config,
            records=self.records,
            resource_names=self.cluster.resource_names,
            capacity=dict(
                zip(
                    self.cluster.resource_names, self.cluster.capacity_total().tolist(), strict=True
                )
            ),
            fragmentation=self.fragmentation,
            cycles=self.cycles,
            wall_seconds=time.perf_counter() - began,
            end_seconds=self.clock.seconds,
        )

    def _cycle(self) -> bool:
        """One scheduling cycle at the clock's time; True if it changed anything."""
        when = self.clock.now()
        self._apply_updates()
        self._admit_arrivals()
        self.offers.add_new_offers(self.cluster.collect_offers(when))
        self.estimates.now_seconds = self.clock.seconds
        report = self.manager.run_cycle(self.cluster, when)
        self.cycles += 1
        self.last_report = report
        removed = self._absorb(report)
        self._apply_updates(frozenset(report.finished_executions))
        if self.config.sample_fragmentation:
            self._sample()
        if self.observer is not None:
            self.observer(self, report)
        return report.did_something() or removed

    def _next_cycle(self, changed: bool) -> float | None:
        """The next tick after a changing cycle while there is work left to place; otherwise
        the tick of the next event that could change something: an arrival that can run
        here, or — only while work waits — a task end."""
        step = self.config.cycle_seconds
        now = self.clock.seconds
        busy = self.store.count_queue() > 0 or self._has_waiting_tasks()
        if changed and busy:
            return now + step
        events: list[float] = []
        self._skip_infeasible_arrivals()
        if self._next_arrival < len(self.workload.jobs):
            events.append(self.workload.jobs[self._next_arrival].submit_seconds)
        ends = self.cluster.next_event_time() if busy else None
        if ends is not None:
            events.append(self.clock.seconds_of(ends))
        if not events:
            last = self.cluster.last_end_time()
            if last is None:
                return None
            events.append(self.clock.seconds_of(last))  # let what still runs finish
        return max(next_tick(min(events), step), now + step)

    def _has_waiting_tasks(self) -> bool:
        """An execution whose task could not launch yet (its offers fell short) needs cycles
        even with an empty queue."""
        report = self.last_report
        if report is not None and report.waiting_tasks:
            return True
        return any(exe.is_next_task_ready() for exe in self.executions.running())

    # -- the steps around run_cycle -----------------------------------------------------------
    def _apply_updates(self, cleaned: frozenset[int] = frozenset()) -> None:
        """As the service does: the task registry first, then the execution registry; an
        execution that ended goes to its node's cleanup list (unless the manager already put
        it there: `cleaned`). Updates are applied at their own time, not the cycle's: after
        a jump a replay may apply an end long after it happened, and the metrics need when."""
        for update in self.cluster.collect_updates():
            self.tasks.handle_task_update(update)
            exe = self.executions.for_task(update.task_id)
            if exe is None:
                continue
            if update.status is TaskStatus.RUNNING:
                self._started(exe, update.timestamp)
            self.executions.handle_task_update(update, update.timestamp)
        for exe in self.executions.drain_finished():
            self._ended(exe)
            node = self.nodes.get(exe.node_id)
            if node is not None and exe.id not in cleaned:
                node.add_job_execution_for_cleanup(exe.id, exe.finished or self.clock.now())

    def _started(self, exe: RunningJobExecution, when: datetime) -> None:
        record = self._by_job_id[exe.job_id]
        if record.start is None:
            record.start = self.clock.seconds_of(when)
            record.node = self.hostnames.get(exe.node_id)
            self.estimates.started(exe.node_id, exe.job_id, record.start)

    def _ended(self, exe: RunningJobExecution) -> None:
        record = self._by_job_id[exe.job_id]
        ended = exe.finished or self.clock.now()
        record.end = self.clock.seconds_of(ended)
        self.settled += 1
        record.outcome = (
            JobOutcome.COMPLETED if exe.status is ExecutionStatus.COMPLETED else JobOutcome.FAILED
        )
        if exe.status is not ExecutionStatus.COMPLETED:
            record.reason = exe.error
        if record.start is not None:
            self.estimates.finished(exe.node_id, exe.job_id, record.end - record.start)

    def _screen(self, record: JobRecord) -> bool:
        """A job no node can ever hold is reported infeasible instead of holding one of the
        cycle's queue slots for the rest of the replay: first the core's own resource check
        against the largest node (fixed in a simulated cluster), then whether any one node is
        large enough for the whole request."""
        requested = record.job.resources
        problems = resource_problems(requested, self.largest_node)
        if problems:
            code = (
                ReasonCode.INVALID_RESOURCES
                if problems.invalid
                else ReasonCode.INSUFFICIENT_RESOURCES
            )
            reason = f"{code}: {problems.unmet_text()}"
        elif not any(size.is_sufficient_to_meet(requested) for size in self.node_shapes):
            # Each amount fits some node, but no node has all of them: the core would keep
            # answering NO_NODE_FITS ("waiting can help") for ever.
            reason = f"{ReasonCode.NO_NODE_FITS}: no node is large enough for all of it at once"
        else:
            return True
        record.outcome = JobOutcome.INFEASIBLE
        record.reason = reason
        self.settled += 1
        return False

    def _skip_infeasible_arrivals(self) -> None:
        """An infeasible arrival changes nothing, so it must not cause a cycle (one after
        `until_seconds` is never submitted, so it is not judged either)."""
        until = self.config.until_seconds
        while self._next_arrival < len(self.records):
            record = self.records[self._next_arrival]
            if until is not None and record.job.submit_seconds > until:
                return
            if self._screen(record):
                return
            self._next_arrival += 1

    def _admit_arrivals(self) -> None:
        """Queue every job submitted by now that the cluster can hold."""
        jobs = self.workload.jobs
        now = self.clock.seconds
        entries: list[QueueEntry] = []
        while self._next_arrival < len(jobs) and jobs[self._next_arrival].submit_seconds <= now:
            record = self.records[self._next_arrival]
            self._next_arrival += 1
            job = record.job
            if record.outcome is JobOutcome.NOT_SUBMITTED and not self._screen(record):
                continue
            record.outcome = JobOutcome.QUEUED_AT_END
            entries.append(
                QueueEntry(
                    id=record.queue_id,
                    job_id=job.job_id,
                    job_type_id=record.job_type_id,
                    priority=job.priority,
                    queued=self.clock.at(job.submit_seconds),
                    resources=job.resources,
                )
            )
            self._waiting.add(record.queue_id, job.resources)
        if entries:
            self.store.enqueue(entries)

    def _absorb(self, report: CycleReport) -> bool:
        """Take the cycle's decisions into the records; True if an entry was taken out."""
        for scheduled in report.scheduled:
            self._waiting.remove(scheduled.queue_id)
        removed = False
        for unscheduled in report.unscheduled:
            if unscheduled.reason in _NEVER_FITS:
                record = self._by_queue_id[unscheduled.queue_id]
                self.store.cancel(unscheduled.queue_id)
                self._waiting.remove(unscheduled.queue_id)
                record.outcome = JobOutcome.INFEASIBLE
                record.reason = f"{unscheduled.reason}: {unscheduled.detail}"
                self.settled += 1
                removed = True
        self.backfill_session = None
        if isinstance(self.placement, BackfillPlacement):
            session = self.backfill_session = self.placement.take_last_session()
            if session is not None:
                for queue_id in session.backfilled:
                    self._by_queue_id[queue_id].backfilled = True
        return removed

    def _sample(self) -> None:
        amounts, waiting = self._waiting.fragmented(self.cluster.free_amounts())
        frag = self.fragmentation
        if (
            frag.amounts
            and frag.waiting[-1] == waiting
            and np.array_equal(frag.amounts[-1], amounts)
        ):
            return
        frag.times.append(self.clock.seconds)
        frag.amounts.append(amounts)
        frag.waiting.append(waiting)

    def _finish(self) -> None:
        """Jobs still running or queued when the replay stopped keep the last reason."""
        reasons = {}
        if self.last_report is not None:
            reasons = {u.queue_id: f"{u.reason}: {u.detail}" for u in self.last_report.unscheduled}
        for record in self.records:
            if record.outcome is JobOutcome.QUEUED_AT_END and record.start is not None:
                record.outcome = JobOutcome.RUNNING_AT_END
            elif record.outcome is JobOutcome.QUEUED_AT_END:
                record.reason = reasons.get(record.queue_id, record.reason)


def run_simulation(
    workload: Workload,
    policy: str | PlacementEngine = "reference",
    config: SimulationConfig | None = None,
    *,
    base: PlacementEngine | None = None,
    progress: Progress | None = None,
    observer: CycleObserver | None = None,
) -> SimulationResult:
    return Simulation(workload, policy, config, base=base, observer=observer).run(progress)
