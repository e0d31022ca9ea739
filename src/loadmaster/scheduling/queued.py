"""A queue entry during one cycle, remembering where it was placed (spec §5.5)."""

from __future__ import annotations

from loadmaster.model.queue import QueueEntry
from loadmaster.resources import Resources


class QueuedJobExecution:
    """The entry's id, priority and request are copied in: placement reads them several times
    per entry, and a queue entry is immutable."""

    __slots__ = (
        "entry",
        "id",
        "priority",
        "required_resources",
        "scheduled_agent_id",
        "scheduled_node_id",
        "scheduled_resources",
    )

    def __init__(self, entry: QueueEntry) -> None:
        self.entry = entry
        self.id: int = entry.id
        self.priority: int = entry.priority
        self.required_resources: Resources = entry.resources
        self.scheduled_agent_id: str | None = None
        self.scheduled_node_id: int | None = None
        self.scheduled_resources: Resources | None = None

    @property
    def is_canceled(self) -> bool:
        return self.entry.is_canceled

    def scheduled(self, agent_id: str, node_id: int, resources: Resources) -> None:
        self.scheduled_agent_id = agent_id
        self.scheduled_node_id = node_id
        self.scheduled_resources = resources
