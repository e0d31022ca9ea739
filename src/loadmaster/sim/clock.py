"""The virtual clock of a replay: simulated seconds since the trace's start.

Time only moves when the engine moves it, so a replay of months runs in minutes and every run
of the same workload sees exactly the same instants. Cycles fall on a grid of `cycle_seconds`
from the start, as a scheduler ticking at a fixed period would see them; skipping idle time
jumps to the first grid point at or after the next event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(slots=True)
class VirtualClock:
    start: datetime
    seconds: float = 0.0

    def now(self) -> datetime:
        return self.at(self.seconds)

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    def seconds_of(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def advance_to(self, seconds: float) -> None:
        """Move forward; the clock never runs backwards (events before now are late, not
        rewound)."""
        if seconds < self.seconds:
            raise ValueError(f"clock: cannot go back from {self.seconds} to {seconds}")
        self.seconds = seconds


def next_tick(seconds: float, cycle_seconds: float) -> float:
    """The first cycle time at or after `seconds` on the grid k × cycle_seconds."""
    ticks = math.ceil(round(seconds / cycle_seconds, 9))
    return ticks * cycle_seconds
