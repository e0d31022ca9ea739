"""Nodes: their state machine, readiness and node-task due rules (spec §3.3, §3.5).

A node's state is derived, never stored: it is recomputed from its flags and errors by the
first matching rule, so it can never disagree with them. The three readiness predicates are
what scheduling reads; they are frozen per cycle by `SchedulingNode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from loadmaster.model.node_conditions import NodeConditions, NodeErrorName
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate

CLEANUP_ERR_THRESHOLD = timedelta(minutes=2)
HEALTH_ERR_THRESHOLD = timedelta(minutes=2)
NORMAL_HEALTH_THRESHOLD = timedelta(minutes=5)
IMAGE_PULL_ERR_THRESHOLD = timedelta(minutes=5)
NODE_REMOVAL_WITHOUT_OFFERS = timedelta(minutes=5)
MAX_JOB_EXES_PER_CLEANUP = 25

CLEANUP = "cleanup"
HEALTH = "health"
IMAGE_PULL = "image-pull"
NODE_TASK_KINDS: tuple[str, ...] = (CLEANUP, HEALTH, IMAGE_PULL)


class NodeState(StrEnum):
    DEPRECATED = "DEPRECATED"
    OFFLINE = "OFFLINE"
    PAUSED = "PAUSED"
    SCHEDULER_STOPPED = "SCHEDULER_STOPPED"
    DEGRADED = "DEGRADED"
    INITIAL_CLEANUP = "INITIAL_CLEANUP"
    IMAGE_PULL = "IMAGE_PULL"
    READY = "READY"

    @property
    def display_title(self) -> str:
        return _STATE_TEXT[self][0]

    @property
    def description(self) -> str:
        return _STATE_TEXT[self][1]


_STATE_TEXT: dict[NodeState, tuple[str, str]] = {
    NodeState.DEPRECATED: (
        "Deprecated",
        "Node is deprecated and will not be used by the scheduler. "
        "Existing jobs on the node will be failed.",
    ),
    NodeState.OFFLINE: ("Offline", "Node is offline, so no jobs can be scheduled on it."),
    NodeState.PAUSED: (
        "Paused",
        "Node is paused, so no new jobs will be scheduled on it. "
        "Existing jobs will continue to run.",
    ),
    NodeState.SCHEDULER_STOPPED: (
        "Scheduler Stopped",
        "The scheduler is paused, so no new jobs "
        "will be scheduled. Existing jobs will continue to run.",
    ),
    NodeState.DEGRADED: (
        "Degraded",
        "Node has an error condition, putting it in a degraded state. "
        "New jobs will not be scheduled, and the node will attempt to continue "
        "to run existing jobs.",
    ),
    NodeState.INITIAL_CLEANUP: (
        "Cleaning up",
        "Node is performing an initial cleanup step to remove existing containers and volumes.",
    ),
    NodeState.IMAGE_PULL: ("Pulling image", "Node is pulling the scheduler's image."),
    NodeState.READY: ("Ready", "Node is ready to run new jobs."),
}


class NodeTaskFactory(Protocol):
    """Creates real node tasks; the service provides one, a snapshot presets tasks instead."""

    def health_task(self, node: Node) -> Task: ...

    def image_pull_task(self, node: Node) -> Task: ...

    def cleanup_task(self, node: Node, execution_ids: Sequence[int], initial: bool) -> Task: ...


@dataclass(slots=True, eq=False)
class Node:
    """The scheduler's view of one node (a host offering resources through an agent)."""

    id: int
    hostname: str
    agent_id: str = ""
    is_active: bool = True
    is_online: bool = True
    is_paused: bool = False
    pause_reason: str | None = None
    is_scheduler_paused: bool = False
    is_initial_cleanup_completed: bool = False
    is_image_pulled: bool = False
    last_health_task: datetime | None = None
    is_health_normal: bool = True
    last_offer_received: datetime | None = None
    conditions: NodeConditions = field(default_factory=NodeConditions)
    tasks: dict[str, Task] = field(default_factory=dict)  # current node task per kind
    awaiting_cleanup: list[int] = field(default_factory=list)  # execution ids
    _cleaning: list[int] = field(default_factory=list)

    @property
    def state(self) -> NodeState:
        if not self.is_active:
            return NodeState.DEPRECATED
        if not self.is_online:
            return NodeState.OFFLINE
        if self.is_paused:
            return NodeState.PAUSED
        if self.is_scheduler_paused:
            return NodeState.SCHEDULER_STOPPED
        if self.conditions.has_errors():
            return NodeState.DEGRADED
        if not self.is_initial_cleanup_completed:
            return NodeState.INITIAL_CLEANUP
        if not self.is_image_pulled:
            return NodeState.IMAGE_PULL
        return NodeState.READY

    # -- readiness ----------------------------------------------------------------------------
    def is_ready_for_new_job(self) -> bool:
        return self.state is NodeState.READY

    def is_ready_for_system_task(self) -> bool:
        return self.state is NodeState.READY

    def is_ready_for_next_job_task(self) -> bool:
        """Paused, scheduler-stopped and degraded nodes keep running what they already run."""
        return self.state not in (NodeState.DEPRECATED, NodeState.OFFLINE) and self.is_image_pulled

    # -- node-task due rules ------------------------------------------------------------------
    def is_cleanup_due(self, when: datetime) -> bool:
        state = self.state
        if state in (NodeState.INITIAL_CLEANUP, NodeState.IMAGE_PULL, NodeState.READY):
            return True
        if state is not NodeState.DEGRADED or self.conditions.is_daemon_bad():
            return False
        updated = self.conditions.error_updated(NodeErrorName.CLEANUP)
        return updated is None or when - updated > CLEANUP_ERR_THRESHOLD

    def is_health_due(self, when: datetime) -> bool:
        if self.state in (NodeState.DEPRECATED, NodeState.OFFLINE):
            return False
        if self.last_health_task is None:
            return True
        threshold = NORMAL_HEALTH_THRESHOLD if self.is_health_normal else HEALTH_ERR_THRESHOLD
        return when - self.last_health_task > threshold

    def is_image_pull_due(self, when: datetime) -> bool:
        state = self.state
        if state is NodeState.IMAGE_PULL:
            return True
        if state is not NodeState.DEGRADED:
            return False
        if not self.is_initial_cleanup_completed or self.is_image_pulled:
            return False
        if self.conditions.is_pull_bad():
            return False
        updated = self.conditions.error_updated(NodeErrorName.IMAGE_PULL)
        return updated is None or when - updated > IMAGE_PULL_ERR_THRESHOLD

    def _is_due(self, kind: str, when: datetime) -> bool:
        if kind == CLEANUP:
            return self.is_cleanup_due(when)
        if kind == HEALTH:
            return self.is_health_due(when)
        return self.is_image_pull_due(when)

    def get_next_tasks(self, when: datetime, factory: NodeTaskFactory | None = None) -> list[Task]:
        """Due node tasks not yet launched, in the order cleanup, health, image pull."""
        for kind in NODE_TASK_KINDS:
            task = self.tasks.get(kind)
            if task is not None and task.agent_id != self.agent_id:
                del self.tasks[kind]
                task = None
            if task is None and factory is not None and self._is_due(kind, when):
                created = self._create_task(kind, factory)
                if created is not None:
                    self.tasks[kind] = created
        return [
            task
            for kind in NODE_TASK_KINDS
            if (task := self.tasks.get(kind)) is not None
            and not task.has_been_launched
            and self._is_due(kind, when)
        ]

    def _create_task(self, kind: str, factory: NodeTaskFactory) -> Task | None:
        if kind == HEALTH:
            return factory.health_task(self)
        if kind == IMAGE_PULL:
            return factory.image_pull_task(self)
        if not self.is_initial_cleanup_completed:
            self._cleaning = []
            return factory.cleanup_task(self, (), initial=True)
        if not self.awaiting_cleanup:
            return None
        self._cleaning = self.awaiting_cleanup[:MAX_JOB_EXES_PER_CLEANUP]
        return factory.cleanup_task(self, tuple(self._cleaning), initial=False)

    # -- updates ------------------------------------------------------------------------------
    def add_job_execution_for_cleanup(self, execution_id: int, when: datetime) -> None:
        self.awaiting_cleanup.append(execution_id)
        self.conditions.set_slow_cleanup(len(self.awaiting_cleanup), when)

    def handle_task_update(self, update: TaskStatusUpdate, when: datetime) -> bool:
        """Route an update to the matching current node task; False if it is not ours."""
        for kind, task in list(self.tasks.items()):
            if task.id == update.task_id:
                task.update(update)
                self._apply_update(kind, update.status, update.exit_code, when)
                if task.has_ended or update.status is TaskStatus.LOST:
                    del self.tasks[kind]
                return True
        return False

    def _apply_update(
        self, kind: str, status: TaskStatus, exit_code: int | None, when: datetime
    ) -> None:
        cond = self.conditions
        if kind == CLEANUP:
            if status is TaskStatus.FINISHED:
                if not self.is_initial_cleanup_completed:
                    self.is_initial_cleanup_completed = True
                else:
                    done = set(self._cleaning)
                    self.awaiting_cleanup = [e for e in self.awaiting_cleanup if e not in done]
                    cond.set_slow_cleanup(len(self.awaiting_cleanup), when)
                self._cleaning = []
                cond.clear_error(NodeErrorName.CLEANUP)
                cond.drop_old_warnings(when)
            elif status is TaskStatus.FAILED:
                cond.activate_error(NodeErrorName.CLEANUP, when)
                cond.add_numbered_warning(
                    "CLEANUP_FAILURE",
                    "Cleanup Failure",
                    f"Failed to clean up job executions {self._cleaning}",
                    when,
                )
        elif kind == HEALTH:
            if status is TaskStatus.FINISHED:
                self.last_health_task = when
                self.is_health_normal = True
                cond.clear_health_errors()
            elif status is TaskStatus.FAILED:
                self.last_health_task = when
                self.is_health_normal = False
                cond.clear_health_errors()
                cond.activate_error(
                    _HEALTH_EXIT_ERRORS.get(exit_code, NodeErrorName.HEALTH_FAIL), when
                )
        elif kind == IMAGE_PULL:
            if status is TaskStatus.FINISHED:
                self.is_image_pulled = True
                cond.clear_error(NodeErrorName.IMAGE_PULL)
            elif status is TaskStatus.FAILED:
                cond.activate_error(NodeErrorName.IMAGE_PULL, when)

    def handle_task_timeout(self, task: Task, when: datetime) -> None:
        kind = next((k for k, t in self.tasks.items() if t is task), None)
        cond = self.conditions
        if kind == CLEANUP:
            cond.activate_error(NodeErrorName.CLEANUP, when)
            cond.add_numbered_warning(
                "CLEANUP_TIMEOUT", "Cleanup Timeout", "A cleanup task did not finish in time.", when
            )
        elif kind == HEALTH:
            self.last_health_task = when
            self.is_health_normal = False
            cond.clear_health_errors()
            cond.activate_error(NodeErrorName.HEALTH_TIMEOUT, when)
        elif kind == IMAGE_PULL:
            cond.activate_error(NodeErrorName.IMAGE_PULL, when)
        if kind is not None and task.has_ended:
            del self.tasks[kind]

    def reset(self) -> None:
        """The node went offline or was deprecated: it must clean up and pull again."""
        self.awaiting_cleanup = []
        self._cleaning = []
        self.tasks = {}
        self.is_image_pulled = False
        self.is_initial_cleanup_completed = False
        self.last_health_task = None

    def set_online(self, online: bool) -> None:
        if self.is_online and not online:
            self.reset()
        self.is_online = online

    def set_active(self, active: bool) -> None:
        if self.is_active and not active:
            self.reset()
        self.is_active = active

    def should_be_removed(self, when: datetime) -> bool:
        if not self.is_active and not self.is_online:
            return True
        return (
            self.last_offer_received is not None
            and when - self.last_offer_received > NODE_REMOVAL_WITHOUT_OFFERS
        )


_HEALTH_EXIT_ERRORS: dict[int | None, NodeErrorName] = {
    2: NodeErrorName.BAD_DAEMON,
    3: NodeErrorName.LOW_DOCKER_SPACE,
    4: NodeErrorName.BAD_LOGSTASH,
}


@dataclass(slots=True)
class NodeRegistry:
    """Nodes in their tie-break order (insertion order: ascending id in the service)."""

    _nodes: dict[int, Node] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        self._nodes[node.id] = node
        return node

    def remove(self, node_id: int) -> None:
        self._nodes.pop(node_id, None)

    def get(self, node_id: int) -> Node | None:
        return self._nodes.get(node_id)

    def by_agent(self, agent_id: str) -> Node | None:
        return next((n for n in self._nodes.values() if n.agent_id == agent_id), None)

    def by_hostname(self, hostname: str) -> Node | None:
        return next((n for n in self._nodes.values() if n.hostname == hostname), None)

    def get_nodes(self) -> list[Node]:
        return list(self._nodes.values())
