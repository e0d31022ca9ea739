"""What the loop learns each turn, kept for the API: counters for `/metrics` and the
whole-cluster status document.

The loop calls `after_step` after every turn; it folds the cycle report into counters and,
every `status_seconds`, rebuilds the status document from memory under the service lock, so
`GET /status` never touches the store and is never staler than a few seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loadmaster.api.counters import DURATION_BUCKETS, Counters, cycle_result, task_class
from loadmaster.api.status import build_status
from loadmaster.scheduling.report import CycleReport
from loadmaster.service.scheduler import SchedulerService, utc_now


class ServiceMonitor:
    """Thread-safe: the loop writes, API threads read copies."""

    def __init__(
        self,
        service: SchedulerService,
        status_seconds: float = 2.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.service = service
        self.status_seconds = status_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._counters = Counters()
        self._offer_ids: set[str] = set()
        self._running: set[int] = set()
        self._status: dict[str, Any] | None = None
        self._status_built: datetime | None = None
        self._status_counters = Counters()

    def counters(self) -> Counters:
        with self._lock:
            return self._counters.copy()

    def step(self) -> CycleReport | None:
        """One turn of the service, measured and recorded (what the daemon's loop runs)."""
        started = self.clock()
        report = self.service.step()
        seconds = (self.clock() - started).total_seconds()
        self.after_step(report, seconds)
        return report

    def after_step(self, report: CycleReport | None, seconds: float) -> None:
        with self.service.lock:
            current = {o.id for a in self.service.runtime.offers.agents() for o in a.offers}
            running = {e.id for e in self.service.runtime.executions.running()}
        with self._lock:
            c = self._counters
            c.cycles[cycle_result(report, self.service.status.healthy)] += 1
            c.duration_count += 1
            # An execution the service no longer runs has ended (and is recorded in the store).
            c.executions_finished += len(self._running - running)
            self._running = running
            c.duration_sum += seconds
            for i, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    c.duration_buckets[i] += 1
            if report is not None:
                used = {o for launch in report.launches for o in launch.offer_ids}
                seen = current | used | set(report.declined_offers)
                c.offers_received += len(seen - self._offer_ids)
                self._offer_ids = current
                c.placements += len(report.scheduled)
                for launch in report.launches:
                    for task in launch.tasks:
                        c.tasks_launched[
                            task_class(task.kind, task.execution_id, task.queue_id)
                        ] += 1
                c.offers_accepted += report.offers_accepted
                c.offers_declined += len(report.declined_offers)
                c.executions_lost += len(report.lost_executions)
        self.refresh_status()

    # -- the status document ------------------------------------------------------------------
    def refresh_status(self, force: bool = False) -> None:
        when = self.clock()
        with self._lock:
            built = self._status_built
        if not force and built is not None and (when - built).total_seconds() < self.status_seconds:
            return
        counters = self.counters()
        with self._lock:
            previous, previous_when = self._status_counters, self._status_built
        doc = build_status(self.service, when, counters, previous, previous_when)
        with self._lock:
            self._status = doc
            self._status_built = when
            self._status_counters = counters

    def status(self) -> tuple[dict[str, Any] | None, datetime | None]:
        with self._lock:
            return self._status, self._status_built
