"""Run-time estimates for backfilling in a replay, using only what a scheduler could know.

A job's estimate is its requested time (the user's limit, SWF field 9) when the trace has one;
otherwise the mean run time of the jobs of its type that have *finished so far* in this
replay — never the job's own recorded run time, which no scheduler knows in advance. A job of
a type with no finished job yet has no estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loadmaster.scheduling.backfill import Release
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.sim.workload import TraceJob


@dataclass(slots=True)
class _Started:
    job: TraceJob
    start_seconds: float


@dataclass(slots=True)
class TraceEstimates:
    """The simulator's `EstimateSource`; the engine moves `now_seconds` before each cycle."""

    jobs: Mapping[int, TraceJob]
    now_seconds: float = 0.0
    _running: dict[int, dict[int, _Started]] = field(default_factory=dict)
    _type_total: dict[str, float] = field(default_factory=dict)
    _type_count: dict[str, int] = field(default_factory=dict)

    def estimate_seconds(self, job: TraceJob) -> float | None:
        if job.requested_seconds is not None:
            return job.requested_seconds
        done = self._type_count.get(job.job_type, 0)
        return self._type_total[job.job_type] / done if done else None

    def started(self, node_id: int, job_id: int, start_seconds: float) -> None:
        self._running.setdefault(node_id, {})[job_id] = _Started(self.jobs[job_id], start_seconds)

    def finished(self, node_id: int, job_id: int, run_seconds: float) -> None:
        self._running.get(node_id, {}).pop(job_id, None)
        job_type = self.jobs[job_id].job_type
        self._type_total[job_type] = self._type_total.get(job_type, 0.0) + run_seconds
        self._type_count[job_type] = self._type_count.get(job_type, 0) + 1

    def releases(self, node_id: int) -> Sequence[Release]:
        """Overdue executions (past their estimate) have an unknown end: math.inf."""
        out: list[Release] = []
        for started in self._running.get(node_id, {}).values():
            estimate = self.estimate_seconds(started.job)
            left = math.inf
            if estimate is not None:
                left = started.start_seconds + estimate - self.now_seconds
                if left < 0:
                    left = math.inf
            out.append(Release(left, started.job.resources))
        return out

    def duration_seconds(self, job_exe: QueuedJobExecution) -> float | None:
        job = self.jobs.get(job_exe.entry.job_id)
        return self.estimate_seconds(job) if job is not None else None
