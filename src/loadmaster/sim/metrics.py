"""Metrics of a replay, computed afterwards from the job records (exact, not sampled).

Definitions (times in simulated seconds):

* wait = start − submit, over jobs that started;
* bounded slowdown = max(1, (wait + run) / max(run, τ)), τ = 10 s, over completed jobs;
* the replay window runs from the first submit of a job that entered the queue to the last end
  (or to the end of the replay while jobs still run); makespan is its length;
* utilization of a resource = ∫ used(t) dt / (capacity × makespan), used(t) being the sum of
  the requests of the jobs running at t;
* throughput = completed jobs per hour of makespan;
* fragmentation of a resource at a cycle = the free amount on nodes where *no* waiting entry
  fits (all of its requested resources), over the cluster's capacity; counted only while some
  entry waits. Free room where some waiting entry would fit is not fragmentation: it is held
  back by the policy (a reservation) or by the queue limit. Reported as its time-weighted mean
  over the time something waited, and as the share of the makespan something waited;
* statistics: mean, median, 95th percentile (linear interpolation between closest ranks, as
  NumPy's default) and maximum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loadmaster.sim.engine import JobOutcome, JobRecord, SimulationResult

BSLD_TAU_SECONDS = 10.0
SERIES_POINTS = 500
FloatArray = npt.NDArray[np.float64]


def bounded_slowdown(wait: float, run: float, tau: float = BSLD_TAU_SECONDS) -> float:
    return max(1.0, (wait + run) / max(run, tau))


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p95": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {
        "count": len(values),
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "p95": float(np.percentile(array, 95)),
        "max": float(array.max()),
    }


@dataclass(slots=True, frozen=True)
class Window:
    start: float
    end: float

    @property
    def length(self) -> float:
        return max(self.end - self.start, 0.0)


def replay_window(result: SimulationResult) -> Window:
    queued = [r for r in result.records if r.outcome is not JobOutcome.INFEASIBLE and _submitted(r)]
    if not queued:
        return Window(0.0, 0.0)
    start = min(r.job.submit_seconds for r in queued)
    ends = [r.end for r in queued if r.end is not None]
    running = any(r.outcome is JobOutcome.RUNNING_AT_END for r in queued)
    end = max([*ends, result.end_seconds] if running or not ends else ends)
    return Window(start, max(end, start))


def _submitted(record: JobRecord) -> bool:
    return record.outcome is not JobOutcome.NOT_SUBMITTED


def _intervals(result: SimulationResult, window: Window) -> list[tuple[float, float, JobRecord]]:
    out: list[tuple[float, float, JobRecord]] = []
    for record in result.records:
        if record.start is None:
            continue
        end = record.end if record.end is not None else window.end
        out.append((record.start, end, record))
    return out


def step_series(
    changes: Iterable[tuple[float, FloatArray]], window: Window, width: int
) -> tuple[FloatArray, FloatArray]:
    """Sorted (time, delta) changes of a step function → its value at each change time."""
    ordered = sorted(changes, key=lambda c: c[0])
    times = np.array([window.start] + [t for t, _ in ordered], dtype=float)
    deltas = (
        np.vstack([np.zeros(width)] + [d for _, d in ordered]) if ordered else np.zeros((1, width))
    )
    return times, np.cumsum(deltas, axis=0)


def integrate(times: FloatArray, values: FloatArray, window: Window) -> FloatArray:
    """∫ of a step function (value[i] from times[i] to times[i + 1]) over the window."""
    clipped = np.clip(np.append(times, window.end), window.start, window.end)
    durations = np.diff(clipped)
    result: FloatArray = (values * durations[:, None]).sum(axis=0)
    return result


def resample(
    times: FloatArray, values: FloatArray, window: Window, points: int = SERIES_POINTS
) -> tuple[list[float], FloatArray]:
    """Bin averages of a step function: a faithful curve of any length in `points` points."""
    if window.length <= 0:
        return [window.start], values[-1:] if len(values) else np.zeros((1, values.shape[1]))
    edges = np.linspace(window.start, window.end, points + 1)
    cumulative = _cumulative(times, values, window)
    at_edges = np.vstack([cumulative(edge) for edge in edges])
    averages: FloatArray = np.diff(at_edges, axis=0) / np.diff(edges)[:, None]
    return edges[:-1].tolist(), averages


def _cumulative(
    times: FloatArray, values: FloatArray, window: Window
) -> Callable[[float], FloatArray]:
    starts = np.clip(times, window.start, window.end)
    ends = np.clip(np.append(times[1:], window.end), window.start, window.end)
    areas = np.cumsum(values * (ends - starts)[:, None], axis=0)
    areas = np.vstack([np.zeros(values.shape[1]), areas])

    def at(t: float) -> FloatArray:
        index = int(np.searchsorted(starts, t, side="right")) - 1
        if index < 0:
            return np.zeros(values.shape[1])
        partial: FloatArray = areas[index] + values[index] * (min(t, ends[index]) - starts[index])
        return partial

    return at


def utilization_series(result: SimulationResult, window: Window) -> tuple[FloatArray, FloatArray]:
    names = result.resource_names
    changes: list[tuple[float, FloatArray]] = []
    for start, end, record in _intervals(result, window):
        vector = np.array([record.job.resources.get(n) for n in names])
        changes.append((start, vector))
        changes.append((end, -vector))
    return step_series(changes, window, len(names))


def queue_series(result: SimulationResult, window: Window) -> tuple[FloatArray, FloatArray]:
    changes: list[tuple[float, FloatArray]] = []
    one = np.ones(1)
    for record in result.records:
        if record.outcome in (JobOutcome.INFEASIBLE, JobOutcome.NOT_SUBMITTED):
            continue
        changes.append((record.job.submit_seconds, one))
        if record.start is not None:
            changes.append((record.start, -one))
    return step_series(changes, window, 1)


def fragmentation_summary(result: SimulationResult, window: Window) -> dict[str, object]:
    frag = result.fragmentation
    names = result.resource_names
    capacity = np.array([result.capacity.get(n, 0.0) for n in names])
    if not frag.times or window.length <= 0:
        return {"waiting_fraction": 0.0, "mean_while_waiting": dict.fromkeys(names, 0.0)}
    times = np.array(frag.times)
    amounts = np.vstack(frag.amounts)
    waiting = np.array(frag.waiting, dtype=float)[:, None]
    waited = float(integrate(times, waiting, window)[0])
    fragmented = integrate(times, amounts, window)
    means = {
        name: (
            float(fragmented[i] / (capacity[i] * waited)) if waited > 0 and capacity[i] > 0 else 0.0
        )
        for i, name in enumerate(names)
    }
    return {"waiting_fraction": waited / window.length, "mean_while_waiting": means}


def _group_metrics(records: Sequence[JobRecord], hours: float) -> dict[str, object]:
    waits = [r.wait for r in records if r.wait is not None]
    completed = [r for r in records if r.outcome is JobOutcome.COMPLETED]
    slowdowns = [
        bounded_slowdown(r.wait or 0.0, (r.end or 0.0) - (r.start or 0.0)) for r in completed
    ]
    return {
        "jobs": len(records),
        "completed": len(completed),
        "infeasible": sum(1 for r in records if r.outcome is JobOutcome.INFEASIBLE),
        "wait_seconds": stats(waits),
        "bounded_slowdown": stats(slowdowns),
        "throughput_jobs_per_hour": len(completed) / hours if hours > 0 else None,
    }


def _trace_section(result: SimulationResult) -> dict[str, object]:
    workload = result.workload
    return {
        "source": workload.source,
        "format": workload.format,
        "jobs_loaded": len(workload.jobs),
        "skipped": dict(workload.skipped),
        "notes": list(workload.notes),
        "cluster": {
            "kind": workload.cluster_kind,
            "nodes": len(workload.nodes),
            "shapes": workload.describe_nodes(),
            "capacity": {n: v for n, v in result.capacity.items() if v > 0},
        },
    }


def _utilization(
    result: SimulationResult, window: Window
) -> tuple[dict[str, float | None], dict[str, object]]:
    """Mean utilization per resource, and the binned curves of utilization and queue length."""
    names, capacity = result.resource_names, result.capacity
    used_times, used = utilization_series(result, window)
    area = integrate(used_times, used, window)
    means = {
        name: (
            float(area[i] / (capacity[name] * window.length))
            if capacity.get(name, 0.0) > 0 and window.length > 0
            else None
        )
        for i, name in enumerate(names)
    }
    times, binned = resample(used_times, used, window)
    queue_times, queue = queue_series(result, window)
    queue_bins, queue_binned = resample(queue_times, queue, window)
    series = {
        "time_seconds": times,
        "utilization": {
            name: (binned[:, i] / capacity[name]).tolist()
            for i, name in enumerate(names)
            if capacity.get(name, 0.0) > 0
        },
        "queue_time_seconds": queue_bins,
        "queue_length": queue_binned[:, 0].tolist(),
    }
    return means, series


def _groups(result: SimulationResult, hours: float) -> tuple[list[object], list[object]]:
    records = result.records
    by_type: list[object] = [
        {
            "job_type": job_type.name,
            "id": job_type.id,
            **_group_metrics([r for r in records if r.job_type_id == job_type.id], hours),
        }
        for job_type in result.workload.job_types
    ]
    by_priority: list[object] = [
        {"priority": priority, **_group_metrics(group, hours)}
        for priority, group in sorted(_by_priority(records).items())
    ]
    return by_type, by_priority


def compute_metrics(result: SimulationResult) -> dict[str, object]:
    """Everything `--output json` prints and `--out` writes, as plain JSON-able data."""
    window = replay_window(result)
    hours = window.length / 3600
    records = result.records
    everyone = _group_metrics(records, hours)
    utilization, series = _utilization(result, window)
    by_type, by_priority = _groups(result, hours)
    config = result.config
    return {
        "trace": _trace_section(result),
        "policy": result.policy,
        "config": {
            "cycle_seconds": config.cycle_seconds,
            "seed": config.seed,
            "queue_limit": config.queue_limit,
            "until_seconds": config.until_seconds,
        },
        "run": {
            "cycles": result.cycles,
            "wall_seconds": result.wall_seconds,
            "simulated_seconds": result.end_seconds,
        },
        "outcomes": {o.value: sum(1 for r in records if r.outcome is o) for o in JobOutcome},
        "backfilled": sum(1 for r in records if r.backfilled),
        "wait_seconds": everyone["wait_seconds"],
        "bounded_slowdown": {
            **_as_dict(everyone["bounded_slowdown"]),
            "tau_seconds": BSLD_TAU_SECONDS,
        },
        "makespan_seconds": window.length,
        "window": {"start_seconds": window.start, "end_seconds": window.end},
        "throughput_jobs_per_hour": everyone["throughput_jobs_per_hour"],
        "utilization": utilization,
        "fragmentation": fragmentation_summary(result, window),
        "by_job_type": by_type,
        "by_priority": by_priority,
        "series": series,
    }


def _as_dict(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return dict(value)


def _by_priority(records: Iterable[JobRecord]) -> dict[int, list[JobRecord]]:
    out: dict[int, list[JobRecord]] = {}
    for record in records:
        out.setdefault(record.job.priority, []).append(record)
    return out


def wait_times(result: SimulationResult) -> list[float]:
    return [r.wait for r in result.records if r.wait is not None]
