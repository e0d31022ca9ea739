"""The counters the loop accumulates for `/metrics` and the per-second rates of the status
document; plain data, copied out under the monitor's lock."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadmaster.scheduling.report import CycleReport

# Cycle duration buckets in seconds: a cycle normally takes milliseconds; seconds is trouble.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NODE_TASK_KINDS = frozenset(("health", "cleanup", "image-pull"))
CYCLE_RESULTS = ("active", "idle", "error", "stopped")
TASK_CLASSES = ("job", "node", "system")


@dataclass(slots=True)
class Counters:
    """Monotonic totals since the process started (Prometheus counters)."""

    cycles: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CYCLE_RESULTS, 0))
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_count: int = 0
    duration_sum: float = 0.0
    placements: int = 0
    tasks_launched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_CLASSES, 0))
    offers_received: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    executions_finished: int = 0
    executions_lost: int = 0

    def copy(self) -> Counters:
        return Counters(
            dict(self.cycles),
            list(self.duration_buckets),
            self.duration_count,
            self.duration_sum,
            self.placements,
            dict(self.tasks_launched),
            self.offers_received,
            self.offers_accepted,
            self.offers_declined,
            self.executions_finished,
            self.executions_lost,
        )


def task_class(kind: str, execution_id: int | None, queue_id: int | None) -> str:
    if execution_id is not None or queue_id is not None:
        return "job"
    return "node" if kind in NODE_TASK_KINDS else "system"


def cycle_result(report: CycleReport | None, healthy: bool) -> str:
    """No report from a healthy service means it is stopping; from an unhealthy one, that
    the store failed during the turn."""
    if report is None:
        return "stopped" if healthy else "error"
    if report.store_error or report.abandoned:
        return "error"
    return "active" if report.did_something() else "idle"
