"""The cluster-backend port: what the service needs from any engine that runs tasks.

A backend is also the core's `SchedulingClient` (framework id, combine/decline offers). Every
method is non-blocking and answers from what the backend already knows; results of launches,
kills and reconciliations arrive later as status updates through `collect_updates`. One
contract suite (tests/cluster/) holds every backend to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatusUpdate
from loadmaster.resources import Resources


@dataclass(slots=True, frozen=True)
class AgentInfo:
    """A live agent: where tasks can run. The hostname is the node's identity; the agent id
    changes when the agent restarts (the node is then the same node with a new agent)."""

    agent_id: str
    hostname: str
    total: Resources


class ClusterBackend(Protocol):
    name: str

    def start(self) -> None:
        """Connect / start agents. Must be idempotent."""
        ...

    def shutdown(self, kill_tasks: bool) -> None:
        """Stop offering; kill running tasks only when asked (they may be left to finish)."""
        ...

    def is_healthy(self) -> bool: ...

    def framework_id(self) -> str | None: ...

    def agents(self) -> list[AgentInfo]:
        """The agents alive now."""
        ...

    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        """New offers since the last call (free resources of each live agent)."""
        ...

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None: ...

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None: ...

    def kill_task(self, task_id: str, agent_id: str) -> None: ...

    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        """Ask for the current state of (task id, agent id) pairs; a task the backend does not
        know is answered LOST."""
        ...

    def collect_updates(self) -> list[TaskStatusUpdate]:
        """Status updates since the last call, in the order they happened."""
        ...

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Bytes of a task's `stdout` or `stderr`; raises KeyError for an unknown task."""
        ...
