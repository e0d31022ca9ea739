"""Run-time estimates for the live service's `backfill` policy, from what it has seen.

A job type with a `timeout_seconds` is estimated by it (an upper bound, as a batch job's
requested time is for EASY backfilling); otherwise by the mean run time of its last completed
executions. Without either there is no estimate, and backfilling treats the work as never
ending — it can then only make a reserved entry's start later, never earlier.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.job_types import JobTypeRegistry
from loadmaster.scheduling.backfill import Release
from loadmaster.scheduling.queued import QueuedJobExecution

HISTORY = 20


@dataclass(slots=True)
class ObservedEstimates:
    job_types: JobTypeRegistry
    executions: JobExecutionManager
    now: datetime | None = None
    _history: dict[int, deque[float]] = field(default_factory=dict)

    def observe(self, job_type_id: int, run_seconds: float) -> None:
        self._history.setdefault(job_type_id, deque(maxlen=HISTORY)).append(run_seconds)

    def estimate_seconds(self, job_type_id: int) -> float | None:
        job_type = self.job_types.get(job_type_id)
        if job_type is not None and job_type.timeout_seconds is not None:
            return job_type.timeout_seconds
        seen = self._history.get(job_type_id)
        return sum(seen) / len(seen) if seen else None

    def releases(self, node_id: int) -> Sequence[Release]:
        out: list[Release] = []
        for exe in self.executions.running():
            if exe.node_id != node_id:
                continue
            needed = exe.current_or_next_resources()
            if needed is None:
                continue
            estimate = self.estimate_seconds(exe.job_type_id)
            left = math.inf
            if estimate is not None and self.now is not None:
                left = (exe.spec.started - self.now).total_seconds() + estimate
                if left < 0:
                    left = math.inf
            out.append(Release(left, needed))
        return out

    def duration_seconds(self, job_exe: QueuedJobExecution) -> float | None:
        return self.estimate_seconds(job_exe.entry.job_type_id)
