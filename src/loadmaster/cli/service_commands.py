"""Commands that run or operate the scheduler service: run, serve, submit, jobs, cancel.

`submit`, `jobs` and `cancel` talk to the API by default; with `--db` or `--config` they
work on the store directly (for scripts that run beside a daemon without its API)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from loadmaster.api.server import ApiRefused, check_settings
from loadmaster.cli.api_commands import (
    ServerOption,
    cancel_via_api,
    jobs_via_api,
    submit_via_api,
)
from loadmaster.cli.common import OutputFormat, fail
from loadmaster.scheduling.ports import StoreUnavailable
from loadmaster.service.config import ConfigError, load_config
from loadmaster.service.daemon import serve_forever
from loadmaster.service.run import RunOptions, run_workload
from loadmaster.service.scheduler import utc_now
from loadmaster.service.submission import known_job_types, submit_workload
from loadmaster.service.workload import WorkloadError, load_workload
from loadmaster.store.records import CancelOutcome
from loadmaster.store.sql import SqlStore

DbOption = Annotated[
    str | None, typer.Option("--db", help="Store URL (default: the one of --config).")
]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Configuration file.")]


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("serve")(serve)
    app.command("submit")(submit)
    app.command("jobs")(jobs)
    app.command("cancel")(cancel)


def run(
    workload: Annotated[Path, typer.Argument(help="Workload file (TOML) of job types and jobs.")],
    db: DbOption = None,
    cycle_seconds: Annotated[float, typer.Option(min=0.01)] = 0.25,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    engine: Annotated[
        str, typer.Option(help="Placement engine: fast or reference (same decisions).")
    ] = "fast",
) -> None:
    """Run a workload on an embedded scheduler with local agents, then summarize it."""
    console = Console()
    try:
        code = run_workload(
            RunOptions(workload, db, None, cycle_seconds, timeout, quiet, engine), console
        )
    except (WorkloadError, ConfigError) as exc:
        raise fail("\n".join(exc.problems)) from None
    raise typer.Exit(code)


def serve(config: ConfigOption = None) -> None:
    """Run the scheduler daemon until SIGINT or SIGTERM."""
    try:
        settings = load_config(config)
        check_settings(settings.api)
    except ConfigError as exc:
        raise fail("\n".join(exc.problems)) from None
    except ApiRefused as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(serve_forever(settings, threading.Event()))


def _store(db: str | None, config: Path | None) -> SqlStore:
    try:
        settings = load_config(config)
    except ConfigError as exc:
        raise fail("\n".join(exc.problems)) from None
    try:
        return SqlStore.open(
            db or settings.store_url(), schema=None if db else settings.store.pg_schema
        )
    except StoreUnavailable as exc:
        Console(stderr=True).print(f"error: the store is unavailable: {exc}")
        raise typer.Exit(1) from None


def submit(
    workload: Annotated[
        Path | None, typer.Argument(help="Workload file (TOML); or one job from --job-type.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
    parsable: Annotated[bool, typer.Option("--parsable", help="Print job ids only.")] = False,
    server: ServerOption = None,
    job_type: Annotated[
        str | None, typer.Option("--job-type", "-t", help="name or name:version")
    ] = None,
    priority: Annotated[int, typer.Option(help="Lower runs first.")] = 100,
    count: Annotated[int, typer.Option(min=1, max=100_000)] = 1,
    env: Annotated[list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Submit a workload file's job types and jobs (all or nothing), or one job from flags.

    Through the API (`--server`) unless `--db` or `--config` name a store to write directly."""
    if db is None and config is None:
        submit_via_api(
            server,
            workload,
            job_type,
            priority,
            count,
            env or [],
            idempotency_key,
            parsable,
            output,
        )
        return
    if workload is None:
        raise fail("the direct-store mode (--db/--config) submits workload files only")
    store = _store(db, config)
    try:
        parsed = load_workload(workload, known_job_types(store))
        submitted = submit_workload(store, parsed, utc_now())
    except WorkloadError as exc:
        raise fail("\n".join(exc.problems)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if parsable:
        typer.echo("\n".join(str(i) for i in submitted.job_ids))
    else:
        typer.echo(f"submitted {len(submitted.job_ids)} job(s): {_ranges(submitted.job_ids)}")


def _ranges(ids: list[int]) -> str:
    if not ids:
        return "-"
    return f"{min(ids)}..{max(ids)}" if len(ids) > 1 else str(ids[0])


def jobs(
    db: DbOption = None,
    config: ConfigOption = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    server: ServerOption = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="QUEUED, RUNNING …")] = None,
    job_type_id: Annotated[list[int] | None, typer.Option("--job-type-id")] = None,
) -> None:
    """List jobs, newest first (through the API unless --db or --config is given)."""
    if db is None and config is None:
        jobs_via_api(server, output, limit, [s.upper() for s in status or []], job_type_id or [])
        return
    store = _store(db, config)
    try:
        page = store.jobs.search(limit=limit)
        names = {jt.id: f"{jt.name}:{jt.version}" for jt in store.job_types.all()}
    finally:
        store.close()
    rows = [
        {
            "id": j.id,
            "job_type": names.get(j.job_type_id, str(j.job_type_id)),
            "priority": j.priority,
            "status": str(j.status),
            "num_exes": j.num_exes,
            "error": j.error,
            "created": j.created.isoformat(),
            "ended": j.ended.isoformat() if j.ended else None,
        }
        for j in page.jobs
    ]
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(show_edge=False)
    for column in ("ID", "JOB TYPE", "PRIORITY", "STATUS", "TRIES", "ERROR"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            str(row["job_type"]),
            str(row["priority"]),
            str(row["status"]),
            str(row["num_exes"]),
            str(row["error"] or ""),
        )
    Console().print(table)


def cancel(
    job_id: Annotated[int, typer.Argument()],
    db: DbOption = None,
    config: ConfigOption = None,
    server: ServerOption = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Cancel a job: a queued one leaves the queue, a running one is killed by the service."""
    if db is None and config is None:
        cancel_via_api(server, job_id, output)
        return
    store = _store(db, config)
    try:
        result = store.jobs.cancel(job_id, when=utc_now())
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if result.outcome is CancelOutcome.ALREADY_ENDED:
        Console(stderr=True).print(f"job {job_id} already ended ({result.job.status})")
        raise typer.Exit(1)
    typer.echo(f"job {job_id}: {result.outcome.value.lower().replace('_', ' ')}")
