"""Timing one scheduling cycle per engine on a generated cluster.

Both the wall time and the CPU time of the thread that runs the cycle are taken; rates are
computed from the CPU time, which is what "on one core" means and what stays meaningful on a
shared machine where other processes compete for the cores (the wall time is shown beside it).
It is the thread's time, not the process's: a helper thread of the numeric library may spin
for a while after the setup used it, which the process time would count. Only
`run_cycle` is timed: parsing the snapshot and building the manager happen before the
clock starts, and a fresh manager is built for every repetition (a cycle consumes its queue).
The cycle runs with the cyclic garbage collector paused, exactly as the service runs it
(`collector_paused`); the full collection the interpreter then owes is timed separately, right
after the cycle, and reported beside it.
Peak memory is taken in a separate, untimed run under tracemalloc (which slows Python down),
as the peak of what the cycle itself allocated on top of the state it was given.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loadmaster.plan.builder import RecordingClient, build_state
from loadmaster.plan.snapshot import Snapshot, parse_snapshot
from loadmaster.scheduling.engines import placement_engine
from loadmaster.scheduling.manager import collector_paused
from loadmaster.scheduling.report import CycleReport


@dataclass(slots=True)
class Measurement:
    """One engine on one snapshot: the cycle times of every repetition and what it decided."""

    engine: str
    times: list[float] = field(default_factory=list)  # CPU seconds
    wall_times: list[float] = field(default_factory=list)
    collect_times: list[float] = field(default_factory=list)  # CPU seconds, after the cycle
    decided: int = 0  # entries placed, reserved, canceled or given a reason
    placed: int = 0
    reserved: int = 0
    peak_mib: float | None = None
    queue_entries: int = 0  # entries in the snapshot measured (a prefix when sampled)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall_times)

    @property
    def collect_median(self) -> float:
        return statistics.median(self.collect_times)

    @property
    def spread(self) -> float:
        """Max minus min over the repetitions (0 for a single run)."""
        return max(self.times) - min(self.times)

    @property
    def decided_per_second(self) -> float:
        return self.decided / self.median

    @property
    def placed_per_second(self) -> float:
        return self.placed / self.median


def decided(report: CycleReport) -> int:
    """Every entry the cycle gave an outcome: scheduled, canceled or listed with a reason
    (reservations are listed too, as NODE_RESERVED); entries beyond the limit are not."""
    return len(report.scheduled) + len(report.canceled) + len(report.unscheduled)


def parse(snapshot: dict[str, Any]) -> Snapshot:
    return parse_snapshot(json.dumps(snapshot))


def _one_cycle(snapshot: Snapshot, engine: str) -> tuple[float, float, float, CycleReport]:
    """(CPU seconds, wall seconds, report) of one cycle over a freshly built state, run the
    way the service runs it (`collector_paused`), and the CPU seconds of the full collection
    right after it: the collector's deferred work, paid between cycles."""
    state = build_state(snapshot, placement_engine(engine))
    client = RecordingClient()
    gc.collect()
    wall = time.perf_counter()
    cpu = time.thread_time()
    with collector_paused():
        report = state.manager.run_cycle(client, state.when)
    seconds, wall_seconds = time.thread_time() - cpu, time.perf_counter() - wall
    after = time.thread_time()
    gc.collect()
    return seconds, wall_seconds, time.thread_time() - after, report


def _peak_mib(snapshot: Snapshot, engine: str) -> float:
    state = build_state(snapshot, placement_engine(engine))
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        with collector_paused():
            state.manager.run_cycle(RecordingClient(), state.when)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - base) / (1024 * 1024)


# A cycle slower than this is not repeated and not re-run for its memory peak.
SLOW_CYCLE_SECONDS = 10.0


def measure(
    snapshot: Snapshot,
    engine: str,
    repeat: int,
    memory: bool,
    progress: Callable[[str], None],
) -> Measurement:
    result = Measurement(engine, queue_entries=len(snapshot.queue))
    for run in range(repeat):
        progress(f"{engine}: cycle {run + 1}/{repeat}")
        seconds, wall, collect, report = _one_cycle(snapshot, engine)
        result.times.append(seconds)
        result.wall_times.append(wall)
        result.collect_times.append(collect)
        result.decided = decided(report)
        result.placed = len(report.scheduled)
        result.reserved = len(report.reservations)
        if seconds > SLOW_CYCLE_SECONDS and engine == "reference":
            progress(f"{engine}: {seconds:.0f} s for one cycle, not repeating it")
            return result
    if memory:
        progress(f"{engine}: peak memory run")
        result.peak_mib = _peak_mib(snapshot, engine)
    return result


def queue_prefix(snapshot: dict[str, Any], entries: int) -> dict[str, Any]:
    """The same cluster with only the first `entries` queue entries in queue order (so the
    prefix is what the full cycle would consider first) and a matching queue limit."""
    mode = snapshot["scheduler"]["queue_mode"]
    ordered = sorted(
        snapshot["queue"],
        key=lambda e: (e["priority"], e["queued"] if mode == "FIFO" else _negated(e["queued"])),
    )
    out = dict(snapshot)
    out["queue"] = ordered[:entries]
    out["scheduler"] = {**snapshot["scheduler"], "queue_limit": entries}
    return out


def _negated(stamp: str) -> str:
    """A key that sorts ISO stamps of one length in reverse."""
    return "".join(chr(255 - ord(c)) for c in stamp)
