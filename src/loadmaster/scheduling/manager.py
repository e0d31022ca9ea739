"""The scheduling cycle (spec §8): one call places what fits and launches it.

The steps run in the order of the specification, because each one's place is a policy:
work already under way (node tasks, next tasks of running executions) is served first so it
never starves behind new work; system tasks come next and, while one waits, no new job is
started; then the queue; then the store turns placements into executions in one atomic step;
only then are offers matched to allocations, the rest declined, and tasks launched.

The manager owns no I/O: the state objects are passed in, time is `when`, and effects go out
through the client and store ports.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import RunningJobExecution, StepTemplateCache
from loadmaster.model.job_execution_spec import spec_for_job, step_commands
from loadmaster.model.job_types import JobTypeRegistry
from loadmaster.model.nodes import NodeRegistry, NodeTaskFactory
from loadmaster.model.offers import OfferBook, ResourceOffer, ResourceSet
from loadmaster.model.queue import QueueEntry
from loadmaster.model.settings import SchedulerSettings
from loadmaster.model.system_tasks import SystemTaskSource
from loadmaster.model.task_registry import TaskRegistry
from loadmaster.model.tasks import Task
from loadmaster.model.warnings import (
    INSUFFICIENT_RESOURCES,
    INVALID_RESOURCES,
    WarningBoard,
    insufficient_resources,
    invalid_resources,
    unknown_job_type,
    waiting_system_tasks,
)
from loadmaster.resources import Resources, total
from loadmaster.scheduling.checks import (
    job_type_limits,
    missing_workspaces,
    resource_problems,
)
from loadmaster.scheduling.placement import (
    Decision,
    Outcome,
    PlacementEngine,
    ReferencePlacement,
    rank_system_task,
)
from loadmaster.scheduling.ports import (
    Placement,
    PreparesLaunches,
    QueueQuery,
    SchedulingClient,
    SchedulingStore,
    StoreUnavailable,
)
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.reasons import ReasonCode, Unscheduled
from loadmaster.scheduling.report import (
    CycleReport,
    Launch,
    LaunchedTask,
    Reservation,
    ScheduledEntry,
    WaitingTask,
)
from loadmaster.scheduling.scheduling_node import SchedulingNode

TASK_SHORTAGE_WAIT_COUNT = 10


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run a block (a cycle) with Python's cyclic garbage collector paused, restored as it was.

    A cycle at cluster scale allocates millions of small objects (executions, tasks, report
    entries) and frees almost none of them within the cycle, so the collector's passes over
    them during the cycle find nothing while repeatedly scanning the whole heap (a third of
    the cycle at 10,000 nodes). Reference counting still frees everything acyclic at once;
    cyclic garbage waits for the collector's next pass after the block. The service runs each
    cycle this way, and the benchmark measures it the same way."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# (job type id, request, input workspaces, output workspaces)
_CheckKey = tuple[int, tuple[tuple[str, float], ...], tuple[str, ...], tuple[str, ...]]


@dataclass(slots=True)
class _QueuePass:
    """Per-cycle accumulators of queue processing."""

    scheduled: list[QueuedJobExecution] = field(default_factory=list)
    scores: dict[int, int] = field(default_factory=dict)
    canceled: list[QueueEntry] = field(default_factory=list)
    # per job-type subject: (type id, invalid names, insufficient names), first seen first
    problems: dict[str, tuple[int, dict[str, None], dict[str, None]]] = field(default_factory=dict)
    # the reason `_static_checks` found (`()`: none), by everything it reads of an entry:
    # entries of one job type with one request and one set of workspaces are checked once
    checked: dict[_CheckKey, tuple[ReasonCode, str] | tuple[()]] = field(default_factory=dict)

    def note(
        self, subject: str, type_id: int, invalid: Sequence[str], insufficient: Sequence[str]
    ) -> None:
        found = self.problems.setdefault(subject, (type_id, {}, {}))
        found[1].update(dict.fromkeys(invalid))
        found[2].update(dict.fromkeys(insufficient))


class SchedulingManager:
    """Runs scheduling cycles over the state it is given; keeps only the waiting-task counts."""

    def __init__(
        self,
        *,
        offers: OfferBook,
        nodes: NodeRegistry,
        job_types: JobTypeRegistry,
        executions: JobExecutionManager,
        tasks: TaskRegistry,
        system_tasks: SystemTaskSource,
        store: SchedulingStore,
        settings: SchedulerSettings | None = None,
        workspaces: Set[str] = frozenset(),
        warnings: WarningBoard | None = None,
        node_task_factory: NodeTaskFactory | None = None,
        placement: PlacementEngine | None = None,
        count_beyond_queue_limit: bool = True,
    ) -> None:
        self.offers = offers
        # Counting the whole queue costs a query per cycle once the head is full; a plan wants
        # the number, the service reads queue depth on its own schedule instead.
        self.count_beyond_queue_limit = count_beyond_queue_limit
        self.nodes = nodes
        self.job_types = job_types
        self.executions = executions
        self.tasks = tasks
        self.system_tasks = system_tasks
        self.store = store
        self.settings = settings or SchedulerSettings()
        self.workspaces = workspaces
        self.warnings = warnings or WarningBoard()
        self.node_task_factory = node_task_factory
        self.placement: PlacementEngine = placement or ReferencePlacement()
        self.waiting_tasks: dict[str, int] = {}
        self.last_report: CycleReport | None = None

    # -- the seed API -------------------------------------------------------------------------
    def perform_scheduling(self, client: SchedulingClient, when: datetime) -> int:
        """Run one cycle; the number of tasks launched."""
        return self.run_cycle(client, when).tasks_launched

    def run_cycle(self, client: SchedulingClient, when: datetime) -> CycleReport:
        report = CycleReport(when=when, engine=self.placement.name)
        self.last_report = report
        framework_id = client.framework_id()
        if framework_id is None:
            report.abandoned = "not connected to the cluster"
            return report
        job_type_resources = self.job_types.resource_list()
        running = self.executions.running()
        nodes = self._prepare_nodes(self.tasks.get_all_tasks(), running, when)
        report.largest_node = self.offers.max_available_resources()
        report.cluster_total = self.offers.all_available_resources()
        fulfilled = self._schedule_waiting_tasks(nodes, running, when, report)
        system_tasks_placed = self._schedule_system_tasks(
            fulfilled, job_type_resources, when, report
        )
        self._schedule_new_job_exes(
            framework_id,
            fulfilled,
            job_type_resources,
            running,
            not system_tasks_placed,
            when,
            report,
        )
        if client.framework_id() != framework_id:
            self._abandon(client, nodes, report, "the framework id changed during the cycle")
        else:
            self._settle_offers(client, nodes, when, report)
            self._launch_tasks(client, nodes, when, report)
        report.warnings = [w.warning for w in self.warnings.active()]
        return report

    # -- step 1: nodes ------------------------------------------------------------------------
    def _prepare_nodes(
        self, tasks: Sequence[Task], running: Sequence[RunningJobExecution], when: datetime
    ) -> dict[int, SchedulingNode]:
        """A fresh SchedulingNode per node, with its agent's offers, tasks and watermark."""
        resource_sets = self.offers.refresh_agent_resources(tasks, when)
        tasks_by_agent: dict[str, list[Task]] = {}
        for task in tasks:
            if task.agent_id is not None:
                tasks_by_agent.setdefault(task.agent_id, []).append(task)
        exes_by_node: dict[int, list[RunningJobExecution]] = {}
        for exe in running:
            exes_by_node.setdefault(exe.node_id, []).append(exe)
        nodes: dict[int, SchedulingNode] = {}
        for node in self.nodes.get_nodes():
            agent_id = node.agent_id
            nodes[node.id] = SchedulingNode(
                node,
                agent_id,
                resource_sets.get(agent_id, ResourceSet()),
                tasks_by_agent.get(agent_id, []),
                exes_by_node.get(node.id, []),
                self.executions.gpus,
                self.node_task_factory,
            )
        return nodes

    # -- step 2: work under way ---------------------------------------------------------------
    def _schedule_waiting_tasks(
        self,
        nodes: dict[int, SchedulingNode],
        running: Sequence[RunningJobExecution],
        when: datetime,
        report: CycleReport,
    ) -> dict[int, SchedulingNode]:
        """Node tasks, then next tasks of running executions; a node with waiting work is not
        offered to new work this cycle so that what it is already doing is never starved."""
        waiting: list[Task] = []
        fulfilled: dict[int, SchedulingNode] = {}
        for node_id, node in nodes.items():
            had_waiting = node.accept_node_tasks(when, waiting)
            if node.is_ready_for_next_job_task and not had_waiting:
                fulfilled[node_id] = node
        lost: list[int] = []
        waiting_exes: dict[str, int] = {}
        for exe in running:
            host = nodes.get(exe.node_id)
            if host is None or not host.is_ready_for_next_job_task or host.agent_id != exe.agent_id:
                lost.append(exe.id)
                continue
            if exe.is_next_task_ready():
                before = len(waiting)
                if host.accept_job_exe_next_task(exe, waiting):
                    fulfilled.pop(host.node_id, None)
                    waiting_exes.update({t.id: exe.id for t in waiting[before:]})
        finished = self.executions.check_for_starvation(when)
        if lost:
            finished += self.executions.lost_job_exes(lost, when)
        report.lost_executions = lost
        self._send_to_cleanup(finished, when, report)
        self._count_shortages(waiting, waiting_exes, report)
        return fulfilled

    def _send_to_cleanup(
        self, finished: Sequence[RunningJobExecution], when: datetime, report: CycleReport
    ) -> None:
        for exe in finished:
            report.finished_executions.append(exe.id)
            node = self.nodes.get(exe.node_id)
            if node is not None:
                node.add_job_execution_for_cleanup(exe.id, when)

    def _count_shortages(
        self, waiting: Sequence[Task], waiting_exes: dict[str, int], report: CycleReport
    ) -> None:
        """Count consecutive waiting cycles; after 10, the task's needs become its agent's
        shortage (kept for operators; the reference computed it and never read it)."""
        counts = {task.id: self.waiting_tasks.get(task.id, 0) + 1 for task in waiting}
        self.waiting_tasks = counts
        shortages: dict[str, list[Resources]] = {}
        for task in waiting:
            if counts[task.id] >= TASK_SHORTAGE_WAIT_COUNT and task.agent_id is not None:
                shortages.setdefault(task.agent_id, []).append(task.resources)
            report.waiting_tasks.append(
                WaitingTask(
                    task.id, task.kind, task.agent_id, waiting_exes.get(task.id), counts[task.id]
                )
            )
        for agent in self.offers.agents():
            found = shortages.get(agent.agent_id)
            agent.shortage = total(found) if found else None

    # -- step 3: system tasks -----------------------------------------------------------------
    def _schedule_system_tasks(
        self,
        fulfilled: dict[int, SchedulingNode],
        job_type_resources: Sequence[Resources],
        when: datetime,
        report: CycleReport,
    ) -> bool:
        """Place each system task on the best node able to take it; True if none waits.

        Only nodes ready for system tasks compete, and a failed accept falls back to the next
        best, so a paused or degraded node can no longer make a task wait (§12.2 defect 4)."""
        waiting = 0
        ready = [node for node in fulfilled.values() if node.is_ready_for_system_task]
        for task in self.system_tasks.get_tasks_to_schedule(when):
            ranked = rank_system_task(self.placement, ready, task, job_type_resources)
            if any(node.accept_system_task(task) for node in ranked):
                report.system_tasks_scheduled.append(task.id)
            else:
                waiting += 1
        if waiting:
            self.warnings.activate(waiting_system_tasks(waiting), when)
        return waiting == 0

    # -- step 4: the queue --------------------------------------------------------------------
    def _schedule_new_job_exes(
        self,
        framework_id: str,
        fulfilled: dict[int, SchedulingNode],
        job_type_resources: Sequence[Resources],
        running: Sequence[RunningJobExecution],
        system_tasks_waiting: bool,
        when: datetime,
        report: CycleReport,
    ) -> None:
        """Only when no system task waits (otherwise entries are told so and nothing runs)."""
        available = [node for node in fulfilled.values() if node.is_ready_for_new_job]
        try:
            outcome = self._process_queue(
                available, job_type_resources, running, system_tasks_waiting, when, report
            )
            self._record_resource_problems(outcome, when)
        except StoreUnavailable as exc:
            # Reading the queue failed: nothing new this cycle, but work under way still runs.
            for node in available:
                node.reset_new_job_exes()
            report.store_error = str(exc) or type(exc).__name__
            return
        if not outcome.scheduled and not outcome.canceled:
            return
        try:
            execution_ids = self.store.commit_cycle(
                [self._placement_of(q) for q in outcome.scheduled], outcome.canceled, when
            )
        except StoreUnavailable as exc:
            for node in available:
                node.reset_new_job_exes()
            report.store_error = str(exc) or type(exc).__name__
            report.unscheduled.extend(
                _unscheduled(q.entry, ReasonCode.STORE_UNAVAILABLE, f"the store failed: {exc}")
                for q in outcome.scheduled
            )
            return
        report.canceled = [entry.id for entry in outcome.canceled]
        new_by_node: dict[int, list[RunningJobExecution]] = {}
        commands: dict[int, dict[str, tuple[tuple[str, ...], bool]]] = {}
        templates = StepTemplateCache()
        for queued in outcome.scheduled:
            exe = self._create_execution(
                framework_id, queued, execution_ids[queued.id], when, commands, templates
            )
            new_by_node.setdefault(exe.node_id, []).append(exe)
            report.scheduled.append(
                ScheduledEntry(
                    queued.id,
                    queued.entry.job_id,
                    queued.entry.job_type_id,
                    exe.node_id,
                    exe.agent_id,
                    outcome.scores[queued.id],
                    queued.required_resources,
                    exe.id,
                )
            )
        self.executions.schedule_job_exes(e for exes in new_by_node.values() for e in exes)
        for node_id, exes in new_by_node.items():
            fulfilled[node_id].add_scheduled_job_exes(exes)

    def _process_queue(
        self,
        available: Sequence[SchedulingNode],
        job_type_resources: Sequence[Resources],
        running: Sequence[RunningJobExecution],
        system_tasks_waiting: bool,
        when: datetime,
        report: CycleReport,
    ) -> _QueuePass:
        """Checks in the order of §8.6, then placement; every entry gets one outcome."""
        outcome = _QueuePass()
        settings = self.settings
        limits = job_type_limits(
            {jt.id: jt for jt in self.job_types.all()}, Counter(e.job_type_id for e in running)
        )
        paused = frozenset(jt.id for jt in self.job_types.all() if jt.is_paused)
        ignored = paused | frozenset(t for t, left in limits.items() if left < 1)
        entries = self.store.fetch_queue(
            QueueQuery(settings.queue_mode, settings.queue_limit, ignored)
        )
        excluded = self._report_excluded(ignored, paused, report)
        limit = settings.queue_limit
        if self.count_beyond_queue_limit and (len(entries) >= limit or excluded >= limit):
            report.beyond_queue_limit = max(self.store.count_queue() - len(entries) - excluded, 0)
        blocked = self._blocked_reason(available, system_tasks_waiting)
        if blocked is not None:
            report.unscheduled.extend(_unscheduled(e, *blocked) for e in entries)
            return outcome
        largest = report.largest_node
        session = self.placement.start(available, job_type_resources)
        for entry in entries:
            if entry.is_canceled:
                outcome.canceled.append(entry)
                continue
            rejection = self._check_entry(entry, largest, limits, outcome, when)
            if rejection is not None:
                report.unscheduled.append(_unscheduled(entry, *rejection))
                continue
            queued = QueuedJobExecution(entry)
            decision = session.place(queued)
            if decision.outcome is Outcome.SCHEDULED and decision.score is not None:
                outcome.scheduled.append(queued)
                outcome.scores[queued.id] = decision.score
                if entry.job_type_id in limits:
                    limits[entry.job_type_id] -= 1
                continue
            if decision.outcome is Outcome.RESERVED and decision.node is not None:
                report.reservations.append(
                    Reservation(decision.node.node_id, entry.id, decision.score or 0)
                )
            report.unscheduled.append(
                _unscheduled(entry, *_placement_reason(decision, session.reserved_count()))
            )
        return outcome

    def _blocked_reason(
        self, available: Sequence[SchedulingNode], system_tasks_waiting: bool
    ) -> tuple[ReasonCode, str] | None:
        """Why no entry at all can be scheduled this cycle (canceled ones are not consumed
        either, as in the reference)."""
        if self.settings.is_paused:
            return ReasonCode.SCHEDULER_PAUSED, "the scheduler is paused"
        if system_tasks_waiting:
            return ReasonCode.WAITING_SYSTEM_TASKS, "system tasks are waiting for resources"
        if not available:
            return ReasonCode.NO_READY_NODES, "no node is READY with its work under way served"
        return None

    def _report_excluded(
        self, ignored: frozenset[int], paused: frozenset[int], report: CycleReport
    ) -> int:
        """Entries of paused or limit-reached types are not scheduled (and do not count against
        the queue limit), but "why is my job pending?" must still have an answer for them."""
        if not ignored:
            return 0
        query = QueueQuery(
            self.settings.queue_mode, self.settings.queue_limit, only_job_type_ids=ignored
        )
        entries = self.store.fetch_queue(query)
        for entry in entries:
            if entry.job_type_id in paused:
                report.unscheduled.append(
                    _unscheduled(entry, ReasonCode.JOB_TYPE_PAUSED, "its job type is paused")
                )
            else:
                report.unscheduled.append(
                    _unscheduled(
                        entry,
                        ReasonCode.JOB_TYPE_LIMIT,
                        "its job type runs at its max_scheduled limit",
                    )
                )
        return len(entries)

    def _check_entry(
        self,
        entry: QueueEntry,
        largest: Resources,
        limits: dict[int, int],
        outcome: _QueuePass,
        when: datetime,
    ) -> tuple[ReasonCode, str] | None:
        """Resources, job type, workspaces, limit: the first failing check is the reason."""
        key = (
            entry.job_type_id,
            entry.resources.ordered_key(),
            entry.input_workspaces,
            entry.output_workspaces,
        )
        reason = outcome.checked.get(key)
        if reason is None:
            reason = outcome.checked[key] = self._static_checks(entry, largest, outcome, when)
        if reason:
            return reason
        left = limits.get(entry.job_type_id)
        if left is not None and left < 1:
            job_type = self.job_types.get(entry.job_type_id)
            assert job_type is not None
            return (
                ReasonCode.JOB_TYPE_LIMIT,
                f"{job_type.name} already runs max_scheduled={job_type.max_scheduled}",
            )
        return None

    def _static_checks(
        self, entry: QueueEntry, largest: Resources, outcome: _QueuePass, when: datetime
    ) -> tuple[ReasonCode, str] | tuple[()]:
        """The checks whose answer — reason and text — is the same for every entry with the
        same job type, request and workspaces during one pass, with their side effects (noting
        resource problems for the job type, the unknown-type warning), which repeat identically
        for such entries and so are done once: noting the same names again and re-activating a
        warning at the same `when` change nothing."""
        job_type = self.job_types.get(entry.job_type_id)
        subject = job_type.name if job_type is not None else f"#{entry.job_type_id}"
        problems = resource_problems(entry.resources, largest)
        outcome.note(subject, entry.job_type_id, problems.invalid, problems.insufficient)
        if problems.invalid:
            return (
                ReasonCode.INVALID_RESOURCES,
                f"the cluster has no {', '.join(problems.invalid)}",
            )
        if problems.insufficient:
            names = ", ".join(
                f"{n} {entry.resources.get(n):g} > {largest.get(n):g}"
                for n in problems.insufficient
            )
            return ReasonCode.INSUFFICIENT_RESOURCES, f"no node is big enough: {names}"
        if job_type is None:
            self.warnings.activate(unknown_job_type(entry.job_type_id), when, subject)
            return (
                ReasonCode.UNKNOWN_JOB_TYPE,
                f"job type {entry.job_type_id} is not known to the scheduler",
            )
        missing = missing_workspaces(entry, self.workspaces)
        if missing:
            return ReasonCode.MISSING_WORKSPACE, f"missing workspaces: {', '.join(missing)}"
        return ()

    def _record_resource_problems(self, outcome: _QueuePass, when: datetime) -> None:
        """Per job type seen this cycle: its warnings and `unmet_resources` reflect all of its
        entries the cycle checked, refreshed every cycle (the reference skipped a flagged type
        until its warning expired, up to an hour, §12.2 defect 3). Only changes are written,
        once a cycle (the reference wrote every row, every cycle)."""
        changes: dict[int, str | None] = {}
        for subject, (type_id, invalid, insufficient) in outcome.problems.items():
            if invalid:
                self.warnings.activate(invalid_resources(subject, list(invalid)), when, subject)
            else:
                self.warnings.deactivate(INVALID_RESOURCES, subject)
            if insufficient:
                warning = insufficient_resources(subject, list(insufficient))
                self.warnings.activate(warning, when, subject)
            else:
                self.warnings.deactivate(INSUFFICIENT_RESOURCES, subject)
            job_type = self.job_types.get(type_id)
            text = ",".join([*invalid, *insufficient]) or None
            if job_type is not None and job_type.unmet_resources != text:
                job_type.unmet_resources = text
                changes[job_type.id] = text
        if changes:
            self.store.record_unmet_resources(changes)

    @staticmethod
    def _placement_of(queued: QueuedJobExecution) -> Placement:
        assert queued.scheduled_node_id is not None and queued.scheduled_agent_id is not None
        return Placement(
            queued.entry,
            queued.scheduled_node_id,
            queued.scheduled_agent_id,
            queued.required_resources,
        )

    def _create_execution(
        self,
        framework_id: str,
        queued: QueuedJobExecution,
        execution_id: int,
        when: datetime,
        commands: dict[int, dict[str, tuple[tuple[str, ...], bool]]],
        templates: StepTemplateCache,
    ) -> RunningJobExecution:
        """`commands` caches each job type's step commands for the cycle, `templates` the
        steps' tasks for each request shape."""
        entry = queued.entry
        job_type = self.job_types.get(entry.job_type_id)
        assert job_type is not None and queued.scheduled_node_id is not None
        node_id = queued.scheduled_node_id
        steps = commands.get(job_type.id)
        if steps is None:
            steps = commands[job_type.id] = step_commands(job_type)
        spec = spec_for_job(
            framework_id,
            job_type,
            execution_id=execution_id,
            job_id=entry.job_id,
            exe_num=entry.exe_num,
            node_id=node_id,
            agent_id=queued.scheduled_agent_id or "",
            priority=entry.priority,
            resources=queued.required_resources,
            queued=entry.queued,
            started=when,
            input_file_size_mib=entry.input_file_size_mib,
            timeout_seconds=entry.timeout_seconds,
            job_environment=entry.environment,
            gpu_indexes=self.executions.gpus.assign(node_id, entry.id, entry.job_id),
            commands=steps,
        )
        return RunningJobExecution.create(spec, templates)

    # -- step 5: offers -----------------------------------------------------------------------
    def _settle_offers(
        self,
        client: SchedulingClient,
        nodes: dict[int, SchedulingNode],
        when: datetime,
        report: CycleReport,
    ) -> None:
        """Give each node the offers its allocation needs, decline all the others."""
        requests = {
            node.agent_id: node.allocated_resources for node in nodes.values() if node.agent_id
        }
        allocated, declined = self.offers.settle(requests, when)
        for node in nodes.values():
            node.add_allocated_offers(allocated.get(node.agent_id, []))
        _decline(client, report, declined)

    def _abandon(
        self,
        client: SchedulingClient,
        nodes: dict[int, SchedulingNode],
        report: CycleReport,
        why: str,
    ) -> None:
        """Give everything back and decline every offer (the reference left them held, §12.2
        defect 16); executions already committed get their tasks in a later cycle."""
        for node in nodes.values():
            node.reset_new_job_exes()
        _decline(client, report, self.offers.decline_offers())
        report.abandoned = why

    # -- step 6: launch -----------------------------------------------------------------------
    def _launch_tasks(
        self,
        client: SchedulingClient,
        nodes: dict[int, SchedulingNode],
        when: datetime,
        report: CycleReport,
    ) -> None:
        for node in nodes.values():
            node.start_job_exe_tasks()
        self.tasks.launch_tasks((t for n in nodes.values() for t in n.allocated_tasks), when)
        if isinstance(client, PreparesLaunches):
            client.prepare_launches(
                [
                    (n.allocated_offers, n.allocated_tasks)
                    for n in nodes.values()
                    if n.allocated_offers
                ]
            )
        origin = {s.execution_id: s.queue_id for s in report.scheduled}
        for node in nodes.values():
            if not node.allocated_offers:
                continue
            error: str | None = None
            try:
                client.combine_offers(node.allocated_offers, node.allocated_tasks)
            except Exception as exc:  # one node's failure must not stop the others' launches
                error = f"{type(exc).__name__}: {exc}"
            launched = tuple(self._launched_task(t, origin) for t in node.allocated_tasks)
            report.launches.append(
                Launch(
                    node.node_id,
                    node.agent_id,
                    tuple(o.id for o in node.allocated_offers),
                    launched,
                    error,
                )
            )
            report.tasks_launched += len(launched)

    def _launched_task(self, task: Task, origin: dict[int | None, int]) -> LaunchedTask:
        execution_id: int | None = None
        queue_id: int | None = None
        if task.is_job_task:
            exe = self.executions.for_task(task.id)
            if exe is not None:
                queue_id = origin.get(exe.id)
                execution_id = None if queue_id is not None else exe.id
        return LaunchedTask(task.id, task.kind, task.resources, queue_id, execution_id)


def _decline(
    client: SchedulingClient, report: CycleReport, declined: Sequence[ResourceOffer]
) -> None:
    report.declined_offers = [offer.id for offer in declined]
    if declined:
        client.decline_offers(declined)


def _unscheduled(entry: QueueEntry, reason: ReasonCode, detail: str) -> Unscheduled:
    return Unscheduled(entry.id, entry.job_id, entry.job_type_id, reason, detail)


def _placement_reason(decision: Decision, reserved: int) -> tuple[ReasonCode, str]:
    if decision.outcome is Outcome.RESERVED and decision.node is not None:
        return (
            ReasonCode.NODE_RESERVED,
            f"node {decision.node.hostname} is reserved for it and drains lower-priority work",
        )
    if decision.outcome is Outcome.ACCEPT_FAILED:
        return (
            ReasonCode.GPUS_UNAVAILABLE,
            f"{decision.candidates} node(s) fit but none could reserve its GPUs",
        )
    suffix = f"; {reserved} node(s) are reserved for more important entries" if reserved else ""
    return ReasonCode.NO_NODE_FITS, "no available node has enough free resources now" + suffix
