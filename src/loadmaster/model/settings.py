"""Scheduler-wide settings the cycle reads (spec §9.2): pause, queue mode and queue limit."""

from __future__ import annotations

from dataclasses import dataclass

from loadmaster.model.queue import DEFAULT_QUEUE_LIMIT, QueueMode


@dataclass(slots=True)
class SchedulerSettings:
    is_paused: bool = False
    queue_mode: QueueMode = QueueMode.FIFO
    queue_limit: int = DEFAULT_QUEUE_LIMIT

    def __post_init__(self) -> None:
        if self.queue_limit < 0:
            raise ValueError("queue_limit: must be zero or more")
