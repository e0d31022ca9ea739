"""Readable summaries of replays (rich tables), built from the metrics dictionaries only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table

from loadmaster.sim.plots import comparison_values

Metrics = Mapping[str, Any]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if abs(seconds) >= 2 * 86400:
        return f"{seconds / 86400:.2f} d"
    if abs(seconds) >= 2 * 3600:
        return f"{seconds / 3600:.2f} h"
    if abs(seconds) >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def amount(value: float) -> str:
    """Resource amounts: 393,216 rather than 3.93216e+05."""
    return f"{value:,.0f}" if abs(value) >= 1000 and value == int(value) else f"{value:,.6g}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _stat_line(values: Mapping[str, Any], fmt: Any) -> str:
    return (
        f"mean {fmt(values['mean'])} · median {fmt(values['median'])} · "
        f"p95 {fmt(values['p95'])} · max {fmt(values['max'])}"
    )


def summary_table(metrics: Metrics) -> Table:
    trace, outcomes = metrics["trace"], metrics["outcomes"]
    table = Table(
        title=f"Replay of {trace['source']} — policy {metrics['policy']}", show_header=False
    )
    table.add_column("metric", style="bold")
    table.add_column("value")
    cluster = trace["cluster"]
    capacity = ", ".join(f"{amount(v)} {n}" for n, v in cluster["capacity"].items())
    table.add_row("cluster", f"{cluster['kind']}: {cluster['nodes']:,} node(s), {capacity} in all")
    if cluster["nodes"] > 1:
        table.add_row("node shapes", cluster["shapes"])
    skipped = ", ".join(f"{n} {k}" for k, n in trace["skipped"].items()) or "none"
    table.add_row("jobs", f"{trace['jobs_loaded']:,} replayed (skipped in the trace: {skipped})")
    table.add_row(
        "outcomes",
        ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in outcomes.items() if n),
    )
    table.add_row("wait", _stat_line(metrics["wait_seconds"], duration))
    bsld = metrics["bounded_slowdown"]
    table.add_row(f"bounded slowdown (τ={bsld['tau_seconds']:g} s)", _stat_line(bsld, number))
    table.add_row("makespan", duration(metrics["makespan_seconds"]))
    table.add_row("throughput", f"{number(metrics['throughput_jobs_per_hour'])} jobs/h")
    table.add_row(
        "utilization",
        ", ".join(f"{n} {percent(v)}" for n, v in metrics["utilization"].items() if v is not None),
    )
    frag = metrics["fragmentation"]
    fragmented = ", ".join(f"{n} {percent(v)}" for n, v in frag["mean_while_waiting"].items() if v)
    table.add_row(
        "fragmentation",
        f"{fragmented or 'none'} (mean while jobs waited; "
        f"they waited {percent(frag['waiting_fraction'])} of the time)",
    )
    table.add_row("backfilled", f"{metrics['backfilled']:,} jobs")
    run = metrics["run"]
    table.add_row(
        "replay",
        f"{run['cycles']:,} cycles, {duration(run['simulated_seconds'])} simulated "
        f"in {run['wall_seconds']:.1f} s",
    )
    for note in trace["notes"]:
        table.add_row("note", note)
    return table


def group_table(title: str, key: str, groups: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column(key.upper().replace("_", " "), no_wrap=True)
    for column in ("JOBS", "DONE", "INFEAS", "WAIT MEAN", "WAIT P95", "BSLD MEAN", "BSLD P95"):
        table.add_column(column, justify="right")
    table.add_column("JOBS/H", justify="right")
    for group in groups:
        wait, bsld = group["wait_seconds"], group["bounded_slowdown"]
        table.add_row(
            str(group[key]),
            f"{group['jobs']:,}",
            f"{group['completed']:,}",
            f"{group['infeasible']:,}",
            duration(wait["mean"]),
            duration(wait["p95"]),
            number(bsld["mean"]),
            number(bsld["p95"]),
            number(group["throughput_jobs_per_hour"]),
        )
    return table


def run_report(metrics: Metrics) -> Group:
    return Group(
        summary_table(metrics),
        group_table("By job type", "job_type", metrics["by_job_type"]),
        group_table("By priority (lower runs first)", "priority", metrics["by_priority"]),
    )


def comparison_table(runs: Mapping[str, Metrics]) -> Table:
    first = next(iter(runs.values()))
    table = Table(title=f"Policies compared on {first['trace']['source']}")
    table.add_column("METRIC", style="bold")
    for policy in runs:
        table.add_column(policy.upper(), justify="right")
    rows: list[tuple[str, Any]] = [
        ("mean wait", lambda m: duration(m["wait_seconds"]["mean"])),
        ("median wait", lambda m: duration(m["wait_seconds"]["median"])),
        ("p95 wait", lambda m: duration(m["wait_seconds"]["p95"])),
        ("max wait", lambda m: duration(m["wait_seconds"]["max"])),
        ("mean bounded slowdown", lambda m: number(m["bounded_slowdown"]["mean"])),
        ("p95 bounded slowdown", lambda m: number(m["bounded_slowdown"]["p95"])),
        ("makespan", lambda m: duration(m["makespan_seconds"])),
        ("throughput (jobs/h)", lambda m: number(m["throughput_jobs_per_hour"])),
        ("cpu utilization", lambda m: f"{comparison_values(m)['cpu_utilization_percent']:.1f} %"),
        (
            "cpu fragmentation",
            lambda m: percent(m["fragmentation"]["mean_while_waiting"].get("cpus")),
        ),
        ("backfilled jobs", lambda m: f"{m['backfilled']:,}"),
        ("completed", lambda m: f"{m['outcomes']['completed']:,}"),
        ("replay wall time", lambda m: f"{m['run']['wall_seconds']:.1f} s"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(m) for m in runs.values()))
    return table
