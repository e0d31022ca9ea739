"""The `loadmaster` command. Exit codes: 0 ok, 1 a failure reported, 2 bad usage or input."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from loadmaster.cli import api_commands, service_commands
from loadmaster.cli.api_commands import ServerOption, plan_via_api
from loadmaster.cli.common import OutputFormat, fail
from loadmaster.plan.output import print_tables
from loadmaster.plan.run import plan_from_text
from loadmaster.plan.snapshot import SnapshotError
from loadmaster.scheduling.engines import ENGINE_NAMES, placement_engine
from loadmaster.sim.cli import simulate_command

app = typer.Typer(
    name="loadmaster",
    help="A cluster scheduler for batch job executions.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """A cluster scheduler for batch job executions."""


@app.command()
def plan(
    snapshot: Annotated[
        str | None,
        typer.Argument(help="Cluster snapshot (JSON); - reads stdin; none: the live cluster."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
    engine: Annotated[
        str, typer.Option(help="Placement engine: fast or reference (same decisions).")
    ] = "fast",
    server: ServerOption = None,
) -> None:
    """Dry-run one scheduling cycle over a cluster snapshot, or over the running scheduler's
    live state (through its API) when no snapshot is given, and print what it would do."""
    if engine not in ENGINE_NAMES:
        raise fail(f"--engine: choose one of {', '.join(ENGINE_NAMES)}, not {engine!r}")
    if snapshot is None:
        live = plan_via_api(server, engine)
        if output is OutputFormat.JSON:
            typer.echo(json.dumps(live, indent=2))
        else:
            print_tables(live, Console())
        return
    try:
        text = sys.stdin.read() if snapshot == "-" else Path(snapshot).read_text()
    except OSError as exc:
        raise fail(f"{snapshot}: {exc.strerror or exc}") from None
    try:
        doc = plan_from_text(text, placement_engine(engine))
    except SnapshotError as exc:
        raise fail("invalid snapshot:\n  " + "\n  ".join(exc.problems)) from None
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(doc, indent=2))
    else:
        print_tables(doc, Console())


service_commands.register(app)
app.command("simulate")(simulate_command)
api_commands.register(app)


def main() -> None:
    app()
