"""Builders for replay tests: tiny hand-made workloads and the shipped trace excerpts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from loadmaster.resources import Resources
from loadmaster.sim.engine import JobOutcome, JobRecord, SimulationResult
from loadmaster.sim.workload import EPOCH, NodeSpec, TraceJob, Workload, build_job_types

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "examples" / "traces"
SDSC = TRACES / "SDSC-SP2-1998-first400jobs.swf"
HPC2N = TRACES / "HPC2N-2002-subset-first400jobs.swf"
ALIBABA_PODS = TRACES / "alibaba-gpu-v2023-openb_pod_list_first300.csv"
ALIBABA_NODES = TRACES / "alibaba-gpu-v2023-openb_node_list_every10th.csv"
# Full traces, when a checkout has them beside it (or LOADMASTER_TRACES points to them).
SHARED_TRACES = Path(os.environ.get("LOADMASTER_TRACES", REPO.parent / "shared" / "traces"))


def job(
    job_id: int,
    submit: float,
    run: float,
    cpus: float = 1.0,
    *,
    priority: int = 100,
    requested: float | None = None,
    job_type: str = "batch",
    **more: float,
) -> TraceJob:
    return TraceJob(
        job_id=job_id,
        submit_seconds=submit,
        run_seconds=run,
        resources=Resources({"cpus": cpus, **more}),
        priority=priority,
        job_type=job_type,
        requested_seconds=requested,
    )


def workload(
    jobs: Sequence[TraceJob], nodes: Sequence[Resources] | int = 1, cpus: float = 4.0
) -> Workload:
    """Jobs in trace order on `nodes` (a count of `cpus`-cpu nodes, or explicit sizes)."""
    sizes = [Resources.of(cpus=cpus)] * nodes if isinstance(nodes, int) else list(nodes)
    ordered = sorted(jobs, key=lambda j: (j.submit_seconds, j.job_id))
    return Workload(
        source="handmade",
        format="test",
        jobs=ordered,
        nodes=[NodeSpec(f"node-{i}", size) for i, size in enumerate(sizes, start=1)],
        job_types=build_job_types(ordered),
        start_time=EPOCH,
    )


def by_id(result: SimulationResult) -> dict[int, JobRecord]:
    return {record.job.job_id: record for record in result.records}


def conserved(result: SimulationResult) -> bool:
    """Every job finished, was infeasible, or was still running or queued at the end."""
    allowed = {
        JobOutcome.COMPLETED,
        JobOutcome.INFEASIBLE,
        JobOutcome.RUNNING_AT_END,
        JobOutcome.QUEUED_AT_END,
    }
    return len(result.records) == len(result.workload.jobs) and all(
        r.outcome in allowed for r in result.records
    )
