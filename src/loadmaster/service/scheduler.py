"""The scheduler service: the imperative shell around the scheduling core.

One `step` is one turn of the loop, in this order, each for a reason:

1. sync from the store (every `sync_seconds`): job types, scheduler settings, node pause and
   deprecation, cancellations requested by other processes;
2. agents: new agents become nodes, a changed agent id is the same node with a new agent, a
   missing agent makes its node OFFLINE (its executions are lost in the cycle and retried);
3. status updates, made durable before they change anything in memory;
4. timeouts and kills;
5. offers (declined at once while the scheduler is paused);
6. the scheduling cycle, through a client that records job-task launches in the store before
   the backend is asked to run them — so a crash can never leave a running task the store
   does not know about;
7. executions that ended are finished in the store together with the retry decision.

A store that stays down makes `step` raise nothing: the service turns unhealthy, schedules
nothing new, and tries again next turn. Submitted jobs live in the store and are never lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loadmaster.cluster.protocol import ClusterBackend
from loadmaster.model.errors import error as error_kind
from loadmaster.model.executions import ExecutionStatus, RunningJobExecution
from loadmaster.model.job_types import JobType
from loadmaster.model.nodes import Node, NodeTaskFactory
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import total
from loadmaster.scheduling.manager import collector_paused
from loadmaster.scheduling.ports import StoreUnavailable
from loadmaster.scheduling.report import CycleReport
from loadmaster.service.config import Config
from loadmaster.service.recovery import recover
from loadmaster.service.runtime import Runtime
from loadmaster.store.records import NodeSighting, TaskLaunch
from loadmaster.store.sql import SqlStore

KILL_RESEND = timedelta(seconds=5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def should_retry(exe: RunningJobExecution, job_type: JobType | None) -> bool:
    """Retryable errors (launch failures, node lost, starvation, timeouts of pre/post …) are
    retried while tries remain; a failing `main` only when its job type asks for it."""
    if exe.status is not ExecutionStatus.FAILED or job_type is None:
        return False
    name = exe.error or "unknown"
    retryable = error_kind(name).should_be_retried or (
        name == "algorithm-unknown" and job_type.retry_main_failures
    )
    return retryable and exe.spec.exe_num < job_type.max_tries


def last_exit_code(exe: RunningJobExecution) -> int | None:
    return next((t.exit_code for t in reversed(exe.tasks) if t.has_ended), None)


@dataclass(slots=True)
class JournalingClient:
    """The cycle's cluster client: job-task launches are written to the store first.

    A cycle hands over all its launches first (`prepare_launches`): they are journaled in one
    transaction — at 10,000 nodes one commit instead of one per node — before any is sent. If
    that write fails, nothing was journaled and each node's `combine_offers` journals its own
    launches as it would without the batch (and, failing too, gives its tasks up as lost)."""

    backend: ClusterBackend
    service: SchedulerService
    _journaled: set[str] = field(default_factory=set)  # task ids of this cycle's batch

    def framework_id(self) -> str | None:
        return self.backend.framework_id()

    def prepare_launches(
        self, launches: Sequence[tuple[Sequence[ResourceOffer], Sequence[Task]]]
    ) -> None:
        self._journaled = set()
        batch = [launch for _, tasks in launches for launch in self._launches(tasks)]
        try:
            self.service.store.executions.record_task_launches(batch)
        except StoreUnavailable:
            return  # journaled node by node below, as without a batch
        self._journaled = {launch.task_id for launch in batch}

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        journaled = self._journaled
        launches = self._launches(t for t in tasks if t.id not in journaled)
        try:
            self.service.store.executions.record_task_launches(launches)
        except StoreUnavailable:
            # Not recorded, so not launched: the tasks come back as lost and are retried.
            self.backend.decline_offers(offers)
            self.service.lose_tasks(tasks)
            raise
        self.backend.combine_offers(offers, tasks)

    def _launches(self, tasks: Iterable[Task]) -> list[TaskLaunch]:
        """The journal rows of the job tasks among `tasks` (other tasks are not journaled)."""
        executions = self.service.runtime.executions
        launches = []
        for task in tasks:
            exe = executions.for_task(task.id)
            if exe is not None and task.launched is not None:
                launches.append(
                    TaskLaunch(exe.id, task.id, task.kind, task.agent_id, task.launched)
                )
        return launches

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        self.backend.decline_offers(offers)


class _NodeTaskOwners:
    """Which nodes hold a current node task of a given id, for one batch of status updates.

    An update that is not a job task's used to be offered to every node in turn: with 10,000
    nodes, the 30,000 updates of one round of health checks cost 300 million calls (tens of
    seconds of one turn). The index is built on first use from the nodes' current tasks and
    lists, per task id, the nodes in registry order, so offering the update to them in that
    order is exactly the old scan: while a batch is applied no node gains a node task (they
    are created by the cycle) and no node is added (the syncs that add them run before), so a
    node not listed could never have matched, and a listed node that has since let the task
    go answers False as it did before."""

    __slots__ = ("_index", "_nodes")

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._nodes = nodes
        self._index: dict[str, list[Node]] | None = None

    def of(self, task_id: str) -> Sequence[Node]:
        if self._index is None:
            index: dict[str, list[Node]] = {}
            for node in self._nodes:
                for held in dict.fromkeys(task.id for task in node.tasks.values()):
                    index.setdefault(held, []).append(node)
            self._index = index
        return self._index.get(task_id, ())


@dataclass(slots=True)
class ServiceStatus:
    healthy: bool = True
    last_error: str | None = None
    cycles: int = 0
    last_cycle: datetime | None = None
    started: datetime | None = None


class SchedulerService:
    def __init__(
        self,
        config: Config,
        store: SqlStore,
        backend: ClusterBackend,
        *,
        node_task_factory: NodeTaskFactory | None = None,
        clock: Callable[[], datetime] = utc_now,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend
        self.clock = clock
        self.log = logger or logging.getLogger("loadmaster.service")
        self.runtime = Runtime(config, store, node_task_factory)
        self.client = JournalingClient(backend, self)
        self.status = ServiceStatus()
        self._synthetic_updates: list[TaskStatusUpdate] = []
        self._timed_out: set[str] = set()
        self._kills_sent: dict[str, datetime] = {}
        self._last_sync: datetime | None = None
        self._stopping = False
        self._cluster_ids: dict[int, str] = {}  # of ended executions awaiting cleanup
        # Held by `step` for a whole turn; readers in other threads (the API) take it briefly.
        self.lock = threading.RLock()
        self._sync_requested = threading.Event()

    def request_sync(self) -> None:
        """Re-read the store at the start of the next turn instead of after `sync_seconds`:
        a change made through the API then takes effect within one cycle. Thread-safe."""
        self._sync_requested.set()

    def cluster_id_of(self, execution_id: int) -> str | None:
        """What node cleanup needs to find an ended execution's directories."""
        exe = self.runtime.executions.get(execution_id)
        return exe.spec.cluster_id if exe is not None else self._cluster_ids.get(execution_id)

    @property
    def framework_id(self) -> str:
        return self.backend.framework_id() or self.config.scheduler.framework_id

    # -- start and stop -----------------------------------------------------------------------
    def start(self) -> None:
        """Load everything from the store, start the backend, rebuild running executions and
        ask the backend about their live tasks."""
        when = self.clock()
        self.status.started = when
        self.backend.start()
        self._apply_configured_settings(when)
        self._sync_from_store(when)
        self._recover(when)

    def _apply_configured_settings(self, when: datetime) -> None:
        """Queue mode and limit set in the configuration file are written to the store at
        start; otherwise the stored settings (changed at run time by operators) stand."""
        scheduler = self.config.scheduler
        changes = {
            k: getattr(scheduler, k)
            for k in ("queue_mode", "queue_limit")
            if k in scheduler.model_fields_set
        }
        if changes:
            self.store.config.update_scheduler(when=when, **changes)

    def _recover(self, when: datetime) -> None:
        job_types = {jt.id: jt for jt in self.runtime.job_types.all()}
        result = recover(self.framework_id, job_types, self.store.executions.running())
        for record in result.unknown_job_type:
            self.store.executions.finish(
                record.id, status=ExecutionStatus.FAILED, when=when, error="scheduler-lost"
            )
        to_reconcile: list[tuple[str, str]] = []
        for recovered in result.running:
            exe = recovered.execution
            self.runtime.executions.schedule_job_exes([exe])
            if recovered.live_task is not None:
                self.runtime.tasks.add_running(recovered.live_task)
                to_reconcile.append((recovered.live_task.id, exe.agent_id))
        if to_reconcile:
            self.backend.reconcile(to_reconcile)
        self._finish_ended(when)
        self.log.info(
            "recovered running executions",
            extra={"fields": {"executions": len(result.running), "reconciling": len(to_reconcile)}},
        )

    def shutdown(self, kill_tasks: bool | None = None) -> None:
        """Stop launching; kill running tasks or leave them to finish, as configured."""
        self._stopping = True
        kill = self.config.scheduler.on_shutdown == "kill" if kill_tasks is None else kill_tasks
        self.backend.shutdown(kill)

    # -- one turn of the loop -----------------------------------------------------------------
    def step(self) -> CycleReport | None:
        with self.lock:
            return self._step()

    def _step(self) -> CycleReport | None:
        when = self.clock()
        try:
            if (
                self._sync_requested.is_set()
                or self._last_sync is None
                or when - self._last_sync >= timedelta(seconds=self.config.scheduler.sync_seconds)
            ):
                self._sync_requested.clear()
                self._sync_from_store(when)
            self._sync_agents(when)
            self._handle_updates(when)
            self._handle_timeouts_and_kills(when)
            self._take_offers(when)
            self.runtime.estimates.now = when
            with collector_paused():
                report = (
                    None if self._stopping else self.runtime.manager.run_cycle(self.client, when)
                )
            self._finish_ended(
                when, frozenset(report.finished_executions) if report else frozenset()
            )
        except StoreUnavailable as exc:
            self._unhealthy(f"store unavailable: {exc}")
            return None
        self.status.cycles += 1
        self.status.last_cycle = when
        if report is not None and report.store_error:
            self._unhealthy(f"store unavailable: {report.store_error}")
        else:
            self.status.healthy = self.backend.is_healthy()
            self.status.last_error = None if self.status.healthy else "backend unhealthy"
        if report is not None:
            self._log_cycle(report)
        return report

    def _unhealthy(self, message: str) -> None:
        if self.status.healthy:
            self.log.error(message)
        self.status.healthy = False
        self.status.last_error = message

    # -- 1. store sync ------------------------------------------------------------------------
    def _sync_from_store(self, when: datetime) -> None:
        self._last_sync = when
        runtime = self.runtime
        for job_type in self.store.job_types.all():
            runtime.job_types.add(job_type)
        settings = self.store.config.scheduler()
        runtime.settings.is_paused = settings.is_paused
        runtime.settings.queue_mode = settings.queue_mode
        runtime.settings.queue_limit = settings.queue_limit
        for record in self.store.nodes.all():
            node = runtime.nodes.get(record.id)
            if node is None:
                node = runtime.nodes.add(Node(record.id, record.hostname, "", is_online=False))
            node.is_paused = record.is_paused
            node.pause_reason = record.pause_reason
            node.set_active(record.is_active)
            node.is_scheduler_paused = settings.is_paused
        for execution_id in self.store.executions.cancel_requested():
            self.runtime.executions.cancel(execution_id, when)
        awaiting = {e for node in runtime.nodes.get_nodes() for e in node.awaiting_cleanup}
        for execution_id in [e for e in self._cluster_ids if e not in awaiting]:
            del self._cluster_ids[execution_id]

    # -- 2. agents ----------------------------------------------------------------------------
    def _sync_agents(self, when: datetime) -> None:
        runtime = self.runtime
        live = {agent.hostname: agent for agent in self.backend.agents()}
        # One set, not a registry scan per agent: that was O(agents x nodes) every turn.
        known = {node.hostname for node in runtime.nodes.get_nodes()}
        new = [
            NodeSighting(host, agent.agent_id) for host, agent in live.items() if host not in known
        ]
        if new:
            for record in self.store.nodes.upsert(new, when=when):
                if runtime.nodes.get(record.id) is None:
                    runtime.nodes.add(
                        Node(
                            record.id,
                            record.hostname,
                            record.agent_id or "",
                            is_paused=record.is_paused,
                            is_active=record.is_active,
                            is_scheduler_paused=runtime.settings.is_paused,
                        )
                    )
        for node in runtime.nodes.get_nodes():
            agent = live.get(node.hostname)
            if agent is None:
                if node.is_online:
                    self.log.warning("agent lost", extra={"fields": {"node": node.hostname}})
                    node.set_online(False)
                    self.backend.decline_offers(runtime.offers.lost_agent(node.agent_id))
                continue
            if node.agent_id != agent.agent_id:
                if node.agent_id:
                    self.backend.decline_offers(runtime.offers.lost_agent(node.agent_id))
                node.agent_id = agent.agent_id
            if not node.is_online:
                node.set_online(True)
            node.last_offer_received = when
            resources = runtime.offers.agent(agent.agent_id)
            if resources.total != agent.total:
                resources.set_total(agent.total)

    # -- 3. status updates --------------------------------------------------------------------
    def lose_tasks(self, tasks: Sequence[Task]) -> None:
        """Tasks that were never sent: report them lost so their executions relaunch them."""
        when = self.clock()
        self._synthetic_updates.extend(
            TaskStatusUpdate(t.id, t.agent_id or "", TaskStatus.LOST, when, message="not launched")
            for t in tasks
        )

    def _handle_updates(self, when: datetime) -> None:
        updates = self._synthetic_updates + self.backend.collect_updates()
        self._synthetic_updates = []
        if not updates:
            return
        executions = self.runtime.executions
        self.store.executions.record_task_updates(
            [u for u in updates if executions.for_task(u.task_id) is not None]
        )
        owners = _NodeTaskOwners(self.runtime.nodes.get_nodes())
        for update in updates:
            self._apply_update(update, when, owners)

    def _apply_update(
        self, update: TaskStatusUpdate, when: datetime, owners: _NodeTaskOwners
    ) -> None:
        runtime = self.runtime
        runtime.tasks.handle_task_update(update)
        if update.status.is_terminal or update.status is TaskStatus.LOST:
            self._timed_out.discard(update.task_id)
            self._kills_sent.pop(update.task_id, None)
        if runtime.executions.for_task(update.task_id) is not None:
            runtime.executions.handle_task_update(update, when)
            return
        for node in owners.of(update.task_id):
            if node.handle_task_update(update, when):
                return
        runtime.system_tasks.handle_task_update(update)

    # -- 4. timeouts and kills ----------------------------------------------------------------
    def _handle_timeouts_and_kills(self, when: datetime) -> None:
        runtime = self.runtime
        for task in runtime.tasks.get_timeout_tasks(when):
            if task.id in self._timed_out:
                continue
            self._timed_out.add(task.id)
            self.log.warning("task timed out", extra={"fields": {"task": task.id}})
            if runtime.executions.for_task(task.id) is not None:
                runtime.executions.handle_task_timeout(task, when)
            else:
                node = runtime.nodes.by_agent(task.agent_id or "")
                if node is not None:
                    node.handle_task_timeout(task, when)
        to_kill = runtime.tasks.get_tasks_to_kill() + runtime.system_tasks.get_tasks_to_kill()
        for task in to_kill:
            sent = self._kills_sent.get(task.id)
            if sent is None or when - sent >= KILL_RESEND:
                self._kills_sent[task.id] = when
                self.backend.kill_task(task.id, task.agent_id or "")

    # -- 5. offers ----------------------------------------------------------------------------
    def _take_offers(self, when: datetime) -> None:
        offers = self.backend.collect_offers(when)
        if not offers:
            return
        if self.runtime.settings.is_paused or self._stopping:
            self.backend.decline_offers(offers)
        else:
            self.runtime.offers.add_new_offers(offers)

    # -- 7. ended executions ------------------------------------------------------------------
    def _finish_ended(self, when: datetime, sent_to_cleanup: frozenset[int] = frozenset()) -> None:
        """Record every ended execution; those the cycle did not already hand to their node's
        cleanup (starved and lost ones it did) are handed now."""
        runtime = self.runtime
        for exe in runtime.executions.drain_finished():
            job_type = runtime.job_types.get(exe.job_type_id)
            retry = should_retry(exe, job_type)
            result = self.store.executions.finish(
                exe.id,
                status=exe.status,
                when=when,
                error=exe.error,
                exit_code=last_exit_code(exe),
                requeue=retry,
            )
            self._cluster_ids[exe.id] = exe.spec.cluster_id
            if exe.status is ExecutionStatus.COMPLETED and exe.finished is not None:
                runtime.estimates.observe(
                    exe.job_type_id, (exe.finished - exe.spec.started).total_seconds()
                )
            node = runtime.nodes.get(exe.node_id)
            if node is not None and exe.id not in sent_to_cleanup:
                node.add_job_execution_for_cleanup(exe.id, when)
            self.log.info(
                "execution ended",
                extra={
                    "fields": {
                        "execution": exe.id,
                        "job": exe.job_id,
                        "status": str(exe.status),
                        "error": exe.error,
                        "retried": result.requeued_queue_id is not None,
                    }
                },
            )

    # -- logging ------------------------------------------------------------------------------
    def _log_cycle(self, report: CycleReport) -> None:
        if not report.did_something():
            return
        placed = {s.node_id for s in report.scheduled}
        resources = total(s.resources for s in report.scheduled)
        self.log.info(
            f"scheduled {len(report.scheduled)} new job(s) with {resources} on "
            f"{len(placed)} node(s); launched {report.tasks_launched} task(s)",
            extra={
                "fields": {
                    "scheduled": len(report.scheduled),
                    "tasks_launched": report.tasks_launched,
                    "offers_accepted": report.offers_accepted,
                    "offers_declined": len(report.declined_offers),
                    "canceled": len(report.canceled),
                    "lost": len(report.lost_executions),
                    "reservations": len(report.reservations),
                }
            },
        )


@dataclass(slots=True)
class LoopTiming:
    """Sleep so that turns start `cycle_seconds` apart (never less), as the reference's
    throttle does."""

    cycle_seconds: float
    history: list[float] = field(default_factory=list)

    def pause_after(self, elapsed: float) -> float:
        self.history.append(elapsed)
        del self.history[:-100]
        return max(self.cycle_seconds - elapsed, 0.0)
