"""One node's resources during one cycle (spec §8.2, §8.7, §8.10, §8.12).

A `SchedulingNode` is built fresh every cycle: it freezes the node's readiness at the start
(so a state change mid-cycle cannot half-apply), starts with `remaining = offered`, and every
accept moves resources from remaining to allocated. Nothing here talks to the cluster; the
manager turns the allocations into launches.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from loadmaster.model.executions import RunningJobExecution
from loadmaster.model.gpus import GpuTable
from loadmaster.model.nodes import Node, NodeTaskFactory
from loadmaster.model.offers import ResourceOffer, ResourceSet
from loadmaster.model.tasks import Task
from loadmaster.resources import EMPTY, Resources, count_satisfiable, total
from loadmaster.scheduling.queued import QueuedJobExecution


class SchedulingNode:
    __slots__ = (
        "_allocated_queued",
        "_allocated_running",
        "_gpus",
        "_node_task_factory",
        "_running_exes",
        "_running_tasks",
        "agent_id",
        "allocated_offers",
        "allocated_resources",
        "allocated_tasks",
        "hostname",
        "is_ready_for_new_job",
        "is_ready_for_next_job_task",
        "is_ready_for_system_task",
        "node",
        "node_id",
        "offered_resources",
        "remaining_resources",
        "task_resources",
        "watermark_resources",
    )

    def __init__(
        self,
        node: Node,
        agent_id: str,
        resource_set: ResourceSet,
        running_tasks: Sequence[Task],
        running_exes: Sequence[RunningJobExecution],
        gpus: GpuTable,
        node_task_factory: NodeTaskFactory | None = None,
    ) -> None:
        self.node = node
        self.node_id = node.id
        self.hostname = node.hostname
        self.agent_id = agent_id
        self.is_ready_for_new_job = node.is_ready_for_new_job()
        self.is_ready_for_next_job_task = node.is_ready_for_next_job_task()
        self.is_ready_for_system_task = node.is_ready_for_system_task()
        self.offered_resources = resource_set.offered
        self.remaining_resources = resource_set.offered
        self.task_resources = resource_set.tasks
        self.watermark_resources = resource_set.watermark
        self.allocated_offers: list[ResourceOffer] = []
        self.allocated_resources = EMPTY  # immutable: shared, not copied
        self.allocated_tasks: list[Task] = []
        self._allocated_queued: list[QueuedJobExecution] = []
        self._allocated_running: list[RunningJobExecution] = []
        self._running_tasks = list(running_tasks)
        self._running_exes = list(running_exes)
        self._gpus = gpus
        self._node_task_factory = node_task_factory
        gpu_count = int(max(resource_set.offered.gpus, resource_set.watermark.gpus))
        if gpu_count >= 1:
            gpus.define_node_gpus(node.id, gpu_count)

    # -- bookkeeping --------------------------------------------------------------------------
    def _allocate(self, resources: Resources) -> None:
        self.allocated_resources = self.allocated_resources.add(resources)
        self.remaining_resources = self.remaining_resources.subtract(resources)

    def _release(self, resources: Resources) -> None:
        self.allocated_resources = self.allocated_resources.subtract(resources)
        self.remaining_resources = self.remaining_resources.add(resources)

    def fits(self, resources: Resources) -> bool:
        return self.remaining_resources.is_sufficient_to_meet(resources)

    @property
    def allocated_queued_job_exes(self) -> list[QueuedJobExecution]:
        return list(self._allocated_queued)

    @property
    def allocated_running_job_exes(self) -> list[RunningJobExecution]:
        return list(self._allocated_running)

    @property
    def running_job_exes(self) -> list[RunningJobExecution]:
        """The executions already running here, whose priorities `reservation_available`
        weighs (read-only: lets a placement engine tell which priorities see the same node)."""
        return list(self._running_exes)

    # -- accepting work -----------------------------------------------------------------------
    def accept_node_tasks(self, when: datetime, waiting_tasks: list[Task]) -> bool:
        """Allocate due node tasks that fit; the rest wait. True if any had to wait."""
        had_waiting = False
        for task in self.node.get_next_tasks(when, self._node_task_factory):
            if self.fits(task.resources):
                self.allocated_tasks.append(task)
                self._allocate(task.resources)
            else:
                waiting_tasks.append(task)
                had_waiting = True
        return had_waiting

    def accept_job_exe_next_task(
        self, job_exe: RunningJobExecution, waiting_tasks: list[Task]
    ) -> bool:
        """Allocate the execution's next task if it fits; True only when it has to wait."""
        if not self.is_ready_for_next_job_task:
            return False
        task = job_exe.next_task()
        if task is None:
            return False
        if self.fits(task.resources):
            self._allocated_running.append(job_exe)
            self._allocate(task.resources)
            return False
        waiting_tasks.append(task)
        return True

    def accept_new_job_exe(self, job_exe: QueuedJobExecution) -> bool:
        """Needs READY, room, and (for GPU work) a GPU reservation on this node."""
        if not self.fits(job_exe.required_resources):
            return False
        return self.accept_fitting_job_exe(job_exe)

    def accept_fitting_job_exe(self, job_exe: QueuedJobExecution) -> bool:
        """`accept_new_job_exe` for an engine that has just found `fits(required)` true with
        this node's current remaining resources (the fast engine's rankings test exactly that),
        so the test is not repeated."""
        required = job_exe.required_resources
        if not self.is_ready_for_new_job:
            return False
        gpus = int(required.gpus)
        if gpus > 0 and not self._gpus.reserve(self.node_id, job_exe.id, gpus):
            return False
        self._allocated_queued.append(job_exe)
        self._allocate(required)
        job_exe.scheduled(self.agent_id, self.node_id, required)
        return True

    def accept_system_task(self, task: Task) -> bool:
        if not self.is_ready_for_system_task or not self.fits(task.resources):
            return False
        task.agent_id = self.agent_id
        self.allocated_tasks.append(task)
        self._allocate(task.resources)
        return True

    # -- scores (lower is better, None = impossible) ------------------------------------------
    def _score_for_scheduling(
        self, resources: Resources, job_type_resources: Sequence[Resources]
    ) -> int | None:
        if not self.fits(resources):
            return None
        available = (
            self.watermark_resources.subtract(self.task_resources)
            .subtract(self.allocated_resources)
            .subtract(resources)
        )
        return count_satisfiable(available, job_type_resources)

    def score_job_exe_for_scheduling(
        self, job_exe: QueuedJobExecution, job_type_resources: Sequence[Resources]
    ) -> int | None:
        return self._score_for_scheduling(job_exe.required_resources, job_type_resources)

    def score_system_task_for_scheduling(
        self, task: Task, job_type_resources: Sequence[Resources]
    ) -> int | None:
        return self._score_for_scheduling(task.resources, job_type_resources)

    def reservation_available(self, priority: int) -> Resources:
        """What the node would have if all work less important than `priority` drained."""
        return self.watermark_resources.subtract_all(self._held_at(priority))

    def _held_at(self, priority: int) -> list[Resources]:
        """What stays on the node when work less important than `priority` drains, in the
        order it is subtracted: non-job tasks, running executions, this cycle's accepts (built
        as lists: a placement engine reads this for every node at a reservation)."""
        held = [task.resources for task in self._running_tasks if not task.is_job_task]
        for exe in self._running_exes:
            if exe.priority <= priority:
                needed = exe.current_or_next_resources()
                if needed is not None:
                    held.append(needed)
        held += [q.required_resources for q in self._allocated_queued if q.priority <= priority]
        return held

    def score_job_exe_for_reservation(
        self, job_exe: QueuedJobExecution, job_type_resources: Sequence[Resources]
    ) -> int | None:
        required = job_exe.required_resources
        available = self.reservation_available(job_exe.priority)
        if not available.is_sufficient_to_meet(required):
            return None
        return count_satisfiable(available.subtract(required), job_type_resources)

    # -- hand-over and offers -----------------------------------------------------------------
    def add_scheduled_job_exes(self, job_exes: Sequence[RunningJobExecution]) -> None:
        """The queued allocations now stand for the new executions' first tasks."""
        self._allocated_queued = []
        self._allocated_running.extend(job_exes)

    def reset_new_job_exes(self) -> None:
        """Undo this cycle's queued allocations, GPU reservations included."""
        for queued in self._allocated_queued:
            self._release(queued.required_resources)
            self._gpus.release_reservation(self.node_id, queued.id)
        self._allocated_queued = []

    def add_allocated_offers(self, offers: Sequence[ResourceOffer]) -> None:
        """Attach offers; if they fall short, drop all executions, then if needed all tasks."""
        offered = total(o.resources for o in offers)
        self.allocated_offers = list(offers)
        if offered.is_sufficient_to_meet(self.allocated_resources):
            return
        for exe in self._allocated_running:
            task = exe.next_task()
            if task is not None:
                self._release(task.resources)
        self._allocated_running = []
        if offered.is_sufficient_to_meet(self.allocated_resources):
            return
        self.allocated_tasks = []
        self.allocated_resources = EMPTY  # immutable: shared, not copied
        self.remaining_resources = self.offered_resources

    def start_job_exe_tasks(self) -> None:
        for exe in self._allocated_running:
            task = exe.start_next_task()
            if task is not None:
                self.allocated_tasks.append(task)
        self._allocated_running = []
