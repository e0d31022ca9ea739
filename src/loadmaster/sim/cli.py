"""`loadmaster simulate`: replay a trace through the scheduling core and report how it went.

Exit codes: 0 done, 2 bad input (unreadable or malformed trace, unknown policy, impossible
option combination) with a message naming the problem on stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from loadmaster.model.queue import DEFAULT_QUEUE_LIMIT
from loadmaster.scheduling.placement import PlacementEngine, ReferencePlacement
from loadmaster.sim.engine import SimulationConfig, run_simulation
from loadmaster.sim.loaders import (
    ClusterOptions,
    LoadOptions,
    PrioritySource,
    TraceError,
    TraceFormat,
    detect_format,
    load_trace,
)
from loadmaster.sim.metrics import compute_metrics, wait_times
from loadmaster.sim.plots import write_comparison_plots, write_run_plots
from loadmaster.sim.policies import Policy, parse_policies
from loadmaster.sim.tables import comparison_table, run_report
from loadmaster.sim.workload import Workload

EXIT_BAD_INPUT = 2
OUTPUTS = ("table", "json")


class BadInput(Exception):
    """A problem with what the user gave; shown as is, exit code 2."""


class _ProgressBar:
    """Jobs settled (finished or found infeasible) out of all, refreshed at most 10× a second
    so that drawing never costs more than the replay."""

    def __init__(self, progress: Progress, description: str, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task(description, total=total)
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= 0.1 or done == total:
            self._last = now
            self._progress.update(self._task, completed=done)


def _base_engine(name: str) -> PlacementEngine:
    if name == "reference":
        return ReferencePlacement()
    try:
        from loadmaster.scheduling.engines import placement_engine
    except ImportError:  # pragma: no cover - depends on the installed core
        raise BadInput(f"--engine: only 'reference' is available, not {name!r}") from None
    try:
        return placement_engine(name)
    except ValueError as exc:
        raise BadInput(f"--engine: {exc}") from None


def _cluster_options(
    fmt: TraceFormat,
    nodes: int | None,
    cpus_per_node: float | None,
    mem_per_node: float | None,
    machines: Path | None,
    nodes_file: Path | None,
) -> ClusterOptions | None:
    if fmt is TraceFormat.ALIBABA:
        if nodes is not None or cpus_per_node is not None or machines or mem_per_node:
            raise BadInput(
                "--nodes/--cpus-per-node/--mem-per-node/--machines: an Alibaba trace "
                "brings its own node list (--nodes-file)"
            )
        return None
    if nodes_file is not None:
        raise BadInput("--nodes-file: only for Alibaba traces (SWF: --nodes or --machines)")
    if machines is not None and not machines.is_file():
        raise BadInput(f"--machines: {machines}: no such file")
    return ClusterOptions(nodes, cpus_per_node, mem_per_node, machines)


def _validate(
    limit: int | None, cycle_seconds: float, queue_limit: int, output: str, until: float | None
) -> None:
    if limit is not None and limit < 1:
        raise BadInput("--limit: must be at least 1")
    if cycle_seconds <= 0:
        raise BadInput("--cycle-seconds: must be positive")
    if queue_limit < 1:
        raise BadInput("--queue-limit: must be at least 1")
    if output not in OUTPUTS:
        raise BadInput(f"--output: must be one of {', '.join(OUTPUTS)}, not {output!r}")
    if until is not None and until <= 0:
        raise BadInput("--until: must be positive")


def _policies(policy: str, compare: str | None) -> list[Policy]:
    try:
        return parse_policies(compare if compare is not None else policy)
    except KeyError as exc:
        option = "--compare" if compare is not None else "--policy"
        raise BadInput(f"{option}: {exc.args[0]}") from None


def _replay(
    workload: Workload,
    policies: list[Policy],
    config: SimulationConfig,
    engine: str,
    quiet: bool,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[float]]]:
    err = Console(stderr=True)
    show = not quiet and err.is_terminal
    metrics: dict[str, dict[str, Any]] = {}
    waits: dict[str, list[float]] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not show,
        transient=False,
    ) as progress:
        for policy in policies:
            bar = _ProgressBar(progress, f"{workload.source} · {policy.name}", len(workload.jobs))
            result = run_simulation(
                workload, policy.name, config, base=_base_engine(engine), progress=bar
            )
            metrics[policy.name] = compute_metrics(result)
            waits[policy.name] = wait_times(result)
    return metrics, waits


def _write(
    out: Path,
    metrics: Mapping[str, dict[str, Any]],
    waits: Mapping[str, list[float]],
) -> list[Path]:
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        if len(metrics) == 1:
            (only,) = metrics.values()
            path = out / "metrics.json"
            path.write_text(json.dumps(only, indent=2) + "\n", encoding="utf-8")
            return [path, *write_run_plots(only, waits[only["policy"]], out)]
        for name, data in metrics.items():
            folder = out / name
            folder.mkdir(exist_ok=True)
            path = folder / "metrics.json"
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            written += [path, *write_run_plots(data, waits[name], folder)]
        path = out / "comparison.json"
        path.write_text(json.dumps(dict(metrics), indent=2) + "\n", encoding="utf-8")
        written += [path, *write_comparison_plots(metrics, waits, out)]
    except OSError as exc:
        raise BadInput(f"--out: {out}: {exc.strerror or exc}") from None
    return written


def simulate_command(
    trace: Annotated[Path, typer.Argument(help="Trace file: .swf, or an Alibaba pod list .csv")],
    trace_format: Annotated[
        str | None, typer.Option("--format", help="swf or alibaba (default: from the extension)")
    ] = None,
    nodes_file: Annotated[
        Path | None,
        typer.Option("--nodes-file", help="Alibaba node list (default: the sibling node_list CSV)"),
    ] = None,
    machines: Annotated[
        Path | None,
        typer.Option("--machines", help="SWF: nodes from an Alea .machines file"),
    ] = None,
    nodes: Annotated[
        int | None, typer.Option("--nodes", help="SWF: this many nodes (default: one pool)")
    ] = None,
    cpus_per_node: Annotated[
        float | None, typer.Option("--cpus-per-node", help="SWF: cpus of each node")
    ] = None,
    mem_per_node: Annotated[
        float | None,
        typer.Option("--mem-per-node", help="SWF: MiB of each node (memory is ignored without)"),
    ] = None,
    policy: Annotated[str, typer.Option("--policy", help="reference or backfill")] = "reference",
    compare: Annotated[
        str | None,
        typer.Option("--compare", help="Comma-separated policies to replay and compare"),
    ] = None,
    engine: Annotated[
        str,
        typer.Option("--engine", help="Base placement engine the policies run on (same decisions)"),
    ] = "fast",
    priorities: Annotated[
        PrioritySource,
        typer.Option(
            "--priorities", help="trace: from the queue or QoS; flat: all equal, so submit order"
        ),
    ] = PrioritySource.TRACE,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Replay only the first N replayable jobs")
    ] = None,
    cycle_seconds: Annotated[
        float, typer.Option("--cycle-seconds", help="Simulated seconds between cycles")
    ] = 1.0,
    until: Annotated[
        float | None, typer.Option("--until", help="Stop at this simulated second")
    ] = None,
    queue_limit: Annotated[
        int, typer.Option("--queue-limit", help="Queue entries looked at per cycle")
    ] = DEFAULT_QUEUE_LIMIT,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the replay's random generator")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory for metrics JSON and PNG charts")
    ] = None,
    output: Annotated[str, typer.Option("--output", help="table or json")] = "table",
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
) -> None:
    """Replay a workload trace through the scheduling core on a simulated cluster."""
    stdout = Console()
    try:
        _validate(limit, cycle_seconds, queue_limit, output, until)
        fmt = detect_format(trace, trace_format)
        cluster = _cluster_options(fmt, nodes, cpus_per_node, mem_per_node, machines, nodes_file)
        chosen = _policies(policy, compare)
        workload = load_trace(
            trace,
            fmt.value,
            nodes_file=nodes_file,
            cluster=cluster,
            options=LoadOptions(limit=limit, priorities=priorities),
        )
        if not workload.jobs:
            raise BadInput(f"{trace}: no replayable job")
        config = SimulationConfig(
            cycle_seconds=cycle_seconds, seed=seed, queue_limit=queue_limit, until_seconds=until
        )
        metrics, waits = _replay(workload, chosen, config, engine, quiet)
        written = _write(out, metrics, waits) if out is not None else []
    except (BadInput, TraceError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if output == "json":
        payload: object = next(iter(metrics.values())) if len(metrics) == 1 else metrics
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    for data in metrics.values():
        stdout.print(run_report(data))
    if len(metrics) > 1:
        stdout.print(comparison_table(metrics))
    if written:
        stdout.print(f"wrote {len(written)} files to {out}", highlight=False)
    elif len(metrics) > 1:
        stdout.print("add --out DIR to write the comparison chart and the metrics", highlight=False)


app = typer.Typer(add_completion=False, help="Trace replay through the scheduling core.")
app.command("simulate")(simulate_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
