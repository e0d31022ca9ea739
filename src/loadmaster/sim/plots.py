"""PNG charts of replays, drawn with matplotlib's Agg canvas.

Figures are built directly on an Agg canvas rather than through pyplot, so no display is
needed and no process-wide figure registry or backend switch is involved. Every chart takes
the metrics dictionaries of `metrics.compute_metrics`, so a chart can be redrawn from a saved
metrics JSON without replaying anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Metrics = Mapping[str, Any]
COMPARED: tuple[tuple[str, str], ...] = (
    ("mean wait (h)", "wait_mean_hours"),
    ("p95 wait (h)", "wait_p95_hours"),
    ("mean bounded slowdown", "bsld_mean"),
    ("cpu utilization (%)", "cpu_utilization_percent"),
)


def _hours(seconds: Sequence[float], origin: float) -> list[float]:
    return [(s - origin) / 3600 for s in seconds]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _axes(width: float, height: float) -> tuple[Figure, Axes]:
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _title(metrics: Metrics, what: str) -> str:
    return f"{what} — {metrics['trace']['source']} ({metrics['policy']})"


def plot_utilization(runs: Mapping[str, Metrics], path: Path) -> Path:
    fig, ax = _axes(9, 4)
    for policy, metrics in runs.items():
        series = metrics["series"]
        origin = metrics["window"]["start_seconds"]
        for name, values in series["utilization"].items():
            ax.plot(
                _hours(series["time_seconds"], origin),
                [100 * v for v in values],
                label=f"{name} ({policy})" if len(runs) > 1 else name,
                linewidth=1,
            )
    first = next(iter(runs.values()))
    ax.set_title(_title(first, "Utilization") if len(runs) == 1 else "Utilization")
    ax.set_xlabel("hours since first submit")
    ax.set_ylabel("% of capacity in use")
    ax.set_ylim(0, 105)
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_queue_length(runs: Mapping[str, Metrics], path: Path) -> Path:
    fig, ax = _axes(9, 4)
    for policy, metrics in runs.items():
        series = metrics["series"]
        origin = metrics["window"]["start_seconds"]
        ax.plot(
            _hours(series["queue_time_seconds"], origin),
            series["queue_length"],
            label=policy,
            linewidth=1,
        )
    first = next(iter(runs.values()))
    ax.set_title(_title(first, "Queue length") if len(runs) == 1 else "Queue length")
    ax.set_xlabel("hours since first submit")
    ax.set_ylabel("jobs waiting (bin average)")
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_wait_cdf(waits: Mapping[str, Sequence[float]], path: Path, source: str) -> Path:
    fig, ax = _axes(7, 4)
    for policy, values in waits.items():
        if not values:
            continue
        ordered = np.sort(np.asarray(values, dtype=float))
        fraction = np.arange(1, len(ordered) + 1) / len(ordered)
        ax.step(np.maximum(ordered, 1.0), fraction, where="post", label=policy)
    ax.set_xscale("log")
    ax.set_xlabel("wait time (s, log; waits under 1 s shown at 1 s)")
    ax.set_ylabel("fraction of started jobs")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Wait-time CDF — {source}")
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def comparison_values(metrics: Metrics) -> dict[str, float]:
    """The numbers the comparison chart and table show, flat."""
    wait = metrics["wait_seconds"]
    cpu = metrics["utilization"].get("cpus")
    return {
        "wait_mean_hours": (wait["mean"] or 0.0) / 3600,
        "wait_p95_hours": (wait["p95"] or 0.0) / 3600,
        "bsld_mean": metrics["bounded_slowdown"]["mean"] or 0.0,
        "cpu_utilization_percent": 100 * (cpu or 0.0),
    }


def plot_comparison(runs: Mapping[str, Metrics], path: Path) -> Path:
    """One panel per metric, one bar per policy: the scales differ too much for one axis."""
    fig = _figure(3.2 * len(COMPARED), 3.6)
    axes = fig.subplots(1, len(COMPARED))
    policies = list(runs)
    values = {policy: comparison_values(m) for policy, m in runs.items()}
    colors = [f"C{i}" for i in range(len(policies))]
    for ax, (label, key) in zip(axes, COMPARED, strict=True):
        heights = [values[p][key] for p in policies]
        bars = ax.bar(policies, heights, color=colors)
        ax.bar_label(bars, fmt="%.3g", fontsize="small")
        ax.set_title(label, fontsize="medium")
        ax.tick_params(axis="x", labelrotation=20)
    first = next(iter(runs.values()))
    fig.suptitle(f"Policies compared — {first['trace']['source']}")
    return _save(fig, path)


def write_run_plots(metrics: Metrics, waits: Sequence[float], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    runs = {str(metrics["policy"]): metrics}
    return [
        plot_utilization(runs, out / "utilization.png"),
        plot_queue_length(runs, out / "queue_length.png"),
        plot_wait_cdf(
            {str(metrics["policy"]): waits}, out / "wait_cdf.png", metrics["trace"]["source"]
        ),
    ]


def write_comparison_plots(
    runs: Mapping[str, Metrics], waits: Mapping[str, Sequence[float]], out: Path
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    source = str(next(iter(runs.values()))["trace"]["source"])
    return [
        plot_comparison(runs, out / "comparison.png"),
        plot_utilization(runs, out / "utilization.png"),
        plot_queue_length(runs, out / "queue_length.png"),
        plot_wait_cdf(waits, out / "wait_cdf.png", source),
    ]
