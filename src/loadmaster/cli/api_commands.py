"""Commands that talk to a running scheduler over its HTTP API (`--server`, default from
`LOADMASTER_SERVER`; the token from `LOADMASTER_TOKEN`). Tables by default, `--output json`
prints what the server returned. Exit codes: 0 ok, 1 the server refused or could not be
reached, 2 bad usage."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from loadmaster.cli.api_client import ApiClient
from loadmaster.cli.common import OutputFormat, fail
from loadmaster.cli.tables import (
    job_types_table,
    job_view,
    jobs_table,
    nodes_table,
    queue_table,
    status_view,
)

ServerOption = Annotated[
    str | None,
    typer.Option("--server", "-s", help="API URL (default: $LOADMASTER_SERVER or local)."),
]
Output = Annotated[OutputFormat, typer.Option("--output", "-o")]

node_app = typer.Typer(help="Pause, resume, deprecate or reactivate a node.", no_args_is_help=True)
job_type_app = typer.Typer(help="Pause or resume a job type.", no_args_is_help=True)
scheduler_app = typer.Typer(help="Pause or resume the scheduler.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("job")(job)
    app.command("queue")(queue)
    app.command("nodes")(nodes)
    app.command("status")(status)
    app.command("requeue")(requeue)
    app.command("job-types")(job_types)
    app.command("logs")(logs)
    app.add_typer(node_app, name="node")
    app.add_typer(job_type_app, name="job-type")
    app.add_typer(scheduler_app, name="scheduler")


def show(data: Any, output: OutputFormat, table: RenderableType | None) -> None:
    if output is OutputFormat.JSON or table is None:
        typer.echo(json.dumps(data, indent=2))
    else:
        Console().print(table)


# -- submit, jobs, cancel: called by the commands that also have a direct-store mode --------
def _env_pairs(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"--env: expected KEY=VALUE, not {pair!r}")
        env[key] = value
    return env


def submit_via_api(
    server: str | None,
    workload: Path | None,
    job_type: str | None,
    priority: int,
    count: int,
    env: list[str],
    idempotency_key: str | None,
    parsable: bool,
    output: OutputFormat,
) -> None:
    client = ApiClient(server)
    if workload is not None:
        if job_type is not None:
            raise fail("give a workload file or --job-type, not both")
        try:
            data = tomllib.loads(workload.read_text())
        except OSError as exc:
            raise fail(f"{workload}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise fail(f"{workload}: not valid TOML: {exc}") from None
        ids = list(client.post("/workloads", data)["job_ids"])
    elif job_type is not None:
        one = {"job_type": job_type, "priority": priority, "env": _env_pairs(env)}
        if count == 1:
            body = one | ({"idempotency_key": idempotency_key} if idempotency_key else {})
            ids = [client.post("/jobs", body)["job"]["id"]]
        else:
            if idempotency_key:
                raise fail("--idempotency-key: only for a single job (--count 1)")
            result = client.post("/jobs/batch", {"jobs": [one] * count})
            ids = [r["job"]["id"] for r in result["jobs"]]
    else:
        raise fail("give a workload file or --job-type")
    if parsable:
        typer.echo("\n".join(str(i) for i in ids))
    elif output is OutputFormat.JSON:
        typer.echo(json.dumps({"job_ids": ids}, indent=2))
    else:
        typer.echo(f"submitted {len(ids)} job(s): {' '.join(str(i) for i in ids)}")


def jobs_via_api(
    server: str | None,
    output: OutputFormat,
    limit: int,
    status: list[str],
    job_type_id: list[int],
) -> None:
    page = ApiClient(server).get(
        "/jobs", limit=limit, status=status or None, job_type_id=job_type_id or None
    )
    show(page["items"], output, jobs_table(page["items"]))


def cancel_via_api(server: str | None, job_id: int, output: OutputFormat) -> None:
    result = ApiClient(server).post(f"/jobs/{job_id}/cancel")
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"job {job_id}: {result['outcome'].lower().replace('_', ' ')}")


def plan_via_api(server: str | None, engine: str) -> dict[str, Any]:
    result: dict[str, Any] = ApiClient(server).post(f"/plan?engine={engine}")
    return result


# -- API-only commands -----------------------------------------------------------------------
def job(
    job_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Describe a job: its fields, every execution's tasks, and its event history."""
    client = ApiClient(server)
    detail = client.get(f"/jobs/{job_id}")
    executions = client.get(f"/jobs/{job_id}/executions")
    events = client.get(f"/jobs/{job_id}/events")
    doc = {"job": detail, "executions": executions, "events": events}
    show(doc, output, job_view(detail, executions, events))


def queue(
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 1000,
) -> None:
    """Queued jobs in run order, with why each is waiting (REASON, from the last cycle)."""
    client = ApiClient(server)
    queued = client.get("/jobs", status=["QUEUED"], limit=limit)["items"]
    pending = client.get("/queue/pending")
    reasons = {p["job_id"]: p["reason"] for p in pending["jobs"]}
    doc = {"jobs": queued, "pending": pending}
    show(doc, output, queue_table(queued, reasons))


def nodes(server: ServerOption = None, output: Output = OutputFormat.TABLE) -> None:
    """Nodes with state, free/total resources and why they are not taking work."""
    found = ApiClient(server).get("/nodes")
    show(found, output, nodes_table(found))


def status(server: ServerOption = None, output: Output = OutputFormat.TABLE) -> None:
    """The whole cluster: scheduler state, warnings, resources and nodes."""
    doc = ApiClient(server).get("/status")
    show(doc, output, status_view(doc))


def requeue(
    job_id: Annotated[int, typer.Argument()],
    priority: Annotated[int | None, typer.Option(help="A new priority (lower runs first).")] = None,
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Queue a FAILED or CANCELED job again."""
    body = {"priority": priority} if priority is not None else {}
    result = ApiClient(server).post(f"/jobs/{job_id}/requeue", body)
    show(result, output, jobs_table([result]))


def job_types(server: ServerOption = None, output: Output = OutputFormat.TABLE) -> None:
    """List job types."""
    found = ApiClient(server).get("/job-types")
    show(found, output, job_types_table(found))


def logs(
    execution_id: Annotated[int, typer.Argument()],
    step: Annotated[str, typer.Option(help="pull, pre, main or post.")] = "main",
    stream: Annotated[str, typer.Option(help="stdout or stderr.")] = "stdout",
    tail: Annotated[int | None, typer.Option(min=1, help="Only the last N lines.")] = None,
    task_id: Annotated[str | None, typer.Option("--task-id")] = None,
    server: ServerOption = None,
) -> None:
    """Print a task's output (the latest try of --step unless --task-id names one)."""
    if stream not in ("stdout", "stderr"):
        raise fail(f"--stream: stdout or stderr, not {stream!r}")
    text = ApiClient(server).text(
        f"/executions/{execution_id}/logs", step=step, stream=stream, tail=tail, task_id=task_id
    )
    typer.echo(text, nl=False)


def _node_action(
    action: str, node_id: int, server: str | None, output: OutputFormat, body: Any = None
) -> None:
    result = ApiClient(server).post(f"/nodes/{node_id}/{action}", body)
    show(result, output, nodes_table([result]))


@node_app.command("pause")
def node_pause(
    node_id: Annotated[int, typer.Argument()],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (shown in `nodes`).")],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """No new work goes to the node; what runs there carries on."""
    _node_action("pause", node_id, server, output, {"reason": reason})


@node_app.command("resume")
def node_resume(
    node_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Let the node take new work again."""
    _node_action("resume", node_id, server, output)


@node_app.command("deprecate")
def node_deprecate(
    node_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Take the node out of service."""
    _node_action("deprecate", node_id, server, output)


@node_app.command("reactivate")
def node_reactivate(
    node_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Bring a deprecated node back."""
    _node_action("reactivate", node_id, server, output)


@job_type_app.command("pause")
def job_type_pause(
    job_type_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Its queued jobs stay queued but are not scheduled."""
    result = ApiClient(server).post(f"/job-types/{job_type_id}/pause")
    show(result, output, job_types_table([result]))


@job_type_app.command("resume")
def job_type_resume(
    job_type_id: Annotated[int, typer.Argument()],
    server: ServerOption = None,
    output: Output = OutputFormat.TABLE,
) -> None:
    """Schedule its jobs again."""
    result = ApiClient(server).post(f"/job-types/{job_type_id}/resume")
    show(result, output, job_types_table([result]))


@scheduler_app.command("pause")
def scheduler_pause(server: ServerOption = None, output: Output = OutputFormat.JSON) -> None:
    """Schedule nothing new; running work carries on."""
    show(ApiClient(server).post("/scheduler/pause"), output, None)


@scheduler_app.command("resume")
def scheduler_resume(server: ServerOption = None, output: Output = OutputFormat.JSON) -> None:
    """Schedule again."""
    show(ApiClient(server).post("/scheduler/resume"), output, None)
