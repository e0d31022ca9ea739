"""What a replay is made of: the trace's jobs, the cluster they ran on, and their job types.

A `Workload` is plain data, built once by a loader and never changed by a replay, so the same
workload can be replayed under several policies and compared job by job.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loadmaster.resources import STANDARD_NAMES, Resources

# The core rounds agent resources to 2 decimals every cycle (spec §2.4). Requests finer than
# that could be placed on a rounded-up offer the cluster cannot honour, so loaders round
# requests up and node sizes down to this step.
AMOUNT_STEP = 0.01
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def round_up(value: float) -> float:
    """Round a request up to the core's precision (a tiny float excess does not count)."""
    return math.ceil(round(value / AMOUNT_STEP, 6)) * AMOUNT_STEP if value > 0 else 0.0


def round_down(value: float) -> float:
    """Round a node size down to the core's precision."""
    return math.floor(round(value / AMOUNT_STEP, 6)) * AMOUNT_STEP if value > 0 else 0.0


def request(**values: float) -> Resources:
    return Resources({name: round(round_up(v), 2) for name, v in values.items()})


def capacity(**values: float) -> Resources:
    return Resources({name: round(round_down(v), 2) for name, v in values.items()})


@dataclass(slots=True, frozen=True)
class TraceJob:
    """One job of the trace; it becomes one queue entry and one single-task execution.

    Priority: a lower number runs first (the core's convention). `requested_seconds` is the
    user's run-time limit when the trace has one — what EASY-style backfilling plans with.
    """

    job_id: int
    submit_seconds: float
    run_seconds: float
    resources: Resources
    priority: int
    job_type: str
    requested_seconds: float | None = None
    status: str = ""
    name: str = ""


@dataclass(slots=True, frozen=True)
class NodeSpec:
    hostname: str
    resources: Resources
    model: str = ""


@dataclass(slots=True, frozen=True)
class JobTypeSpec:
    """A job type of the replay; `resources` is its typical request, which the reference's
    fit score counts against (spec §8.7)."""

    id: int
    name: str
    resources: Resources
    jobs: int


@dataclass(slots=True)
class Workload:
    source: str
    format: str
    jobs: list[TraceJob]
    nodes: list[NodeSpec]
    job_types: list[JobTypeSpec]
    start_time: datetime = EPOCH
    header: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cluster_kind: str = "nodes"

    def describe_nodes(self, shapes: int = 4) -> str:
        """ "549 × [96 cpus, 393216 mem, 8 gpus]; …" — the most common node shapes first."""
        counts: dict[tuple[tuple[str, float], ...], int] = {}
        for node in self.nodes:
            key = tuple((n, v) for n, v in node.resources.items() if v > 0)
            counts[key] = counts.get(key, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: -kv[1])
        parts = [
            f"{n} × [{', '.join(f'{v:,.6g} {name}' for name, v in key)}]"
            for key, n in ordered[:shapes]
        ]
        more = len(ordered) - shapes
        return "; ".join(parts) + (f"; {more} more shapes" if more > 0 else "")


def typical_resources(requests: Sequence[Resources]) -> Resources:
    """The median of each resource over a type's requests: a robust "usual size", which is
    what the fit score needs (one huge job must not make the type look huge)."""
    names: list[str] = list(STANDARD_NAMES)
    for res in requests:
        names.extend(n for n in res.names() if n not in names)
    return Resources(
        {
            name: statistics.median(r.get(name) for r in requests) if requests else 0.0
            for name in names
        }
    )


def build_job_types(jobs: Iterable[TraceJob]) -> list[JobTypeSpec]:
    """One job type per distinct `job_type` key, ids in sorted-name order (stable)."""
    by_type: dict[str, list[Resources]] = {}
    for job in jobs:
        by_type.setdefault(job.job_type, []).append(job.resources)
    return [
        JobTypeSpec(index, name, typical_resources(requests), len(requests))
        for index, (name, requests) in enumerate(sorted(by_type.items()), start=1)
    ]


def count(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1
