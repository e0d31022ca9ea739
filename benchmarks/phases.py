"""Where one fast cycle spends its time: `python -m benchmarks.phases --sizes medium,large`.

The cycle's steps are timed from outside: for the duration of one cycle, the methods that
implement them are wrapped with timers (the scheduling core itself never reads a clock).
Times are CPU seconds of the cycle's thread and exclusive — a step's figure does not include
the steps it calls (placement is inside the queue pass, execution creation inside the commit
step) — so the rows add up to the cycle. Each wrapped call costs about a microsecond more,
which shows as a slightly longer cycle than `python -m benchmarks` reports.

Besides the table, it prints the rate at which the queue pass decides entries (checks plus
placement, the decisions themselves) next to the whole cycle's rate (which also creates the
executions, commits them, allocates offers and launches tasks).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.__main__ import SIZES
from benchmarks.cycle_bench import decided, parse
from benchmarks.generator import generate
from benchmarks.tables import text_table
from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.plan.builder import RecordingClient, build_state
from loadmaster.scheduling.engines import placement_engine
from loadmaster.scheduling.fast import FastSession
from loadmaster.scheduling.manager import SchedulingManager, collector_paused

# (label, class, method): the steps of a cycle in the order they run
STEPS: tuple[tuple[str, type, str], ...] = (
    ("nodes: offers refreshed, scheduling nodes built", SchedulingManager, "_prepare_nodes"),
    ("work under way (node tasks, next tasks)", SchedulingManager, "_schedule_waiting_tasks"),
    ("system tasks", SchedulingManager, "_schedule_system_tasks"),
    ("placement session start", FastSession, "__init__"),
    ("queue pass: checks and bookkeeping", SchedulingManager, "_process_queue"),
    ("queue pass: placement decisions", FastSession, "place"),
    ("commit: report entries, hand-over", SchedulingManager, "_schedule_new_job_exes"),
    ("commit: store transaction", object, "commit_cycle"),  # the store's class, set at run
    ("commit: execution creation", SchedulingManager, "_create_execution"),
    ("commit: executions registered", JobExecutionManager, "schedule_job_exes"),
    ("offers allocated and declined", SchedulingManager, "_settle_offers"),
    ("tasks launched", SchedulingManager, "_launch_tasks"),
)
QUEUE_PASS = ("queue pass: checks and bookkeeping", "queue pass: placement decisions")


@dataclass(slots=True)
class _Clock:
    """Exclusive CPU time per label: a call's time minus the time of wrapped calls inside."""

    totals: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _inner: list[float] = field(default_factory=list)

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._inner.append(0.0)
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - started
                inner = self._inner.pop()
                self.totals[label] = self.totals.get(label, 0.0) + elapsed - inner
                self.calls[label] = self.calls.get(label, 0) + 1
                if self._inner:
                    self._inner[-1] += elapsed

        return timed


@contextmanager
def _wrapped(clock: _Clock, steps: Sequence[tuple[str, type, str]]) -> Iterator[None]:
    saved = [(owner, name, owner.__dict__[name]) for _, owner, name in steps]
    try:
        for label, owner, name in steps:
            setattr(owner, name, clock.wrap(label, owner.__dict__[name]))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


@dataclass(slots=True, frozen=True)
class Breakdown:
    total: float  # CPU seconds of the whole cycle
    decided: int
    steps: list[tuple[str, float, int]]  # label, exclusive CPU seconds, calls

    def seconds(self, labels: Sequence[str]) -> float:
        return sum(s for label, s, _ in self.steps if label in labels)


def breakdown(snapshot: dict[str, Any]) -> Breakdown:
    """One fast cycle over `snapshot` (a generated one), timed step by step."""
    state = build_state(parse(snapshot), placement_engine("fast"))
    steps = [
        (label, type(state.manager.store) if owner is object else owner, name)
        for label, owner, name in STEPS
    ]
    clock = _Clock()
    gc.collect()
    with _wrapped(clock, steps), collector_paused():
        started = time.thread_time()
        report = state.manager.run_cycle(RecordingClient(), state.when)
        total = time.thread_time() - started
    rows = [(label, clock.totals.get(label, 0.0), clock.calls.get(label, 0)) for label, *_ in steps]
    rows.append(("other (cycle code between the steps)", total - sum(s for _, s, _ in rows), 0))
    return Breakdown(total, decided(report), rows)


def _print(name: str, label: str, result: Breakdown) -> None:
    print(f"\n## {name}: {label}")
    rows = [["step", "cpu", "share", "calls", "µs per decided entry"]]
    for step, seconds, calls in result.steps:
        rows.append(
            [
                step,
                f"{seconds * 1000:,.1f} ms",
                f"{seconds / result.total:.0%}",
                f"{calls:,}" if calls else "-",
                f"{seconds / result.decided * 1e6:,.1f}",
            ]
        )
    rows.append(["whole cycle", f"{result.total * 1000:,.1f} ms", "100%", "-", ""])
    print(text_table(rows))
    queue_pass = result.seconds(QUEUE_PASS)
    print(
        f"decided: {result.decided:,} entries; whole cycle {result.decided / result.total:,.0f}/s;"
        f" queue pass alone (checks + placement) {result.decided / queue_pass:,.0f}/s"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.phases", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="medium,large", help="comma-separated size names")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for name in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        if name not in SIZES:
            parser.error(f"unknown size: {name}")
        size = SIZES[name]
        _print(name, size.label(), breakdown(generate(size, args.seed)))


if __name__ == "__main__":
    main()
