"""Queue entries and queue ordering (spec §5.1, §5.2).

Priority: a lower number runs first. Within a priority FIFO takes the oldest `queued` first and
LIFO the newest; equal keys keep their arrival order (the sort is stable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from loadmaster.resources import Resources

DEFAULT_QUEUE_LIMIT = 500


class QueueMode(StrEnum):
    FIFO = "FIFO"
    LIFO = "LIFO"

    @classmethod
    def parse(cls, value: str) -> QueueMode:
        """Case-insensitive, and normalised so a lowercase value cannot select a third order."""
        try:
            return cls(value.upper())
        except ValueError:
            raise ValueError(f"queue_mode: must be FIFO or LIFO, not {value!r}") from None


@dataclass(slots=True, frozen=True)
class QueueEntry:
    """A job waiting to run (one live entry per job)."""

    id: int
    job_id: int
    job_type_id: int
    priority: int
    queued: datetime
    resources: Resources
    is_canceled: bool = False
    exe_num: int = 1
    input_workspaces: tuple[str, ...] = ()
    output_workspaces: tuple[str, ...] = ()
    input_file_size_mib: float = 0.0
    timeout_seconds: float | None = None
    environment: tuple[tuple[str, str], ...] = ()  # the job's own, added to its type's

    def workspaces(self) -> tuple[str, ...]:
        return self.input_workspaces + self.output_workspaces


def queue_order_key(entry: QueueEntry, mode: QueueMode) -> tuple[int, float]:
    stamp = entry.queued.timestamp()
    return (entry.priority, -stamp if mode is QueueMode.LIFO else stamp)


def order_queue(entries: Iterable[QueueEntry], mode: QueueMode) -> list[QueueEntry]:
    return sorted(entries, key=lambda e: queue_order_key(e, mode))
