"""Table layouts of the API commands, as pure functions of the API's JSON (so their layout is
tested against golden files without a server). Column names follow Slurm where one exists:
`queue` is squeue with a REASON column, `nodes` is sinfo with resources."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def _short(value: str | None) -> str:
    """Timestamps to the second, without the zone (always UTC)."""
    if not value:
        return ""
    return value.replace("T", " ")[:19]


def _amount(value: float) -> str:
    return f"{value:g}"


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = _table("ID", "JOB TYPE", "PRIORITY", "STATUS", "TRIES", "CREATED", "ERROR")
    for j in jobs:
        table.add_row(
            str(j["id"]),
            str(j.get("job_type") or j["job_type_id"]),
            str(j["priority"]),
            str(j["status"]),
            f"{j['num_exes']}/{j['max_tries']}",
            _short(j.get("created")),
            str(j.get("error") or ""),
        )
    return table


def queue_table(jobs: list[dict[str, Any]], reasons: dict[int, str]) -> Table:
    """Queued jobs in the order they run (priority, then age) with the last cycle's reason."""
    table = _table("JOBID", "JOB TYPE", "PRIORITY", "QUEUED", "TRY", "REASON")
    for j in sorted(jobs, key=lambda j: (j["priority"], j.get("queued") or "", j["id"])):
        table.add_row(
            str(j["id"]),
            str(j.get("job_type") or j["job_type_id"]),
            str(j["priority"]),
            _short(j.get("queued")),
            str(j["num_exes"]),
            reasons.get(j["id"], "(next cycle)"),
        )
    return table


def _free_of(node: dict[str, Any], name: str) -> str:
    res = node["resources"]
    return f"{_amount(res['free'].get(name, 0.0))}/{_amount(res['total'].get(name, 0.0))}"


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = _table(
        "ID", "HOSTNAME", "STATE", "CPUS(F/T)", "MEM(F/T)", "DISK(F/T)", "EXES", "REASON"
    )
    for n in nodes:
        reason = n.get("pause_reason") or ", ".join(e["name"] for e in n.get("errors", []))
        table.add_row(
            str(n["id"]),
            n["hostname"],
            n["state"]["name"],
            _free_of(n, "cpus"),
            _free_of(n, "mem"),
            _free_of(n, "disk"),
            str(len(n.get("job_executions", []))),
            reason,
        )
    return table


def job_types_table(job_types: list[dict[str, Any]]) -> Table:
    table = _table("ID", "NAME", "VERSION", "CPUS", "MEM", "MAX SCHEDULED", "TRIES", "PAUSED")
    for t in job_types:
        res = t["resources"]
        limit = t.get("max_scheduled")
        table.add_row(
            str(t["id"]),
            t["name"],
            t["version"],
            _amount(res.get("cpus", 0.0)),
            _amount(res.get("mem", 0.0)),
            "-" if limit is None else str(limit),
            str(t["max_tries"]),
            "yes" if t["is_paused"] else "no",
        )
    return table


def status_view(doc: dict[str, Any]) -> RenderableType:
    scheduler = doc["scheduler"]
    lines = [
        f"scheduler: {scheduler['state']['name']} ({scheduler['state']['description']})",
        f"cycles: {scheduler.get('cycles', 0)}   last cycle: {_short(scheduler.get('last_cycle'))}",
    ]
    lines += [f"warning: {w['name']}: {w['description']}" for w in scheduler.get("warnings", [])]
    totals = _table("RESOURCE", "RUNNING", "OFFERED", "FREE", "UNAVAILABLE", "TOTAL")
    for name, kinds in doc.get("resources", {}).items():
        totals.add_row(
            name,
            *(
                _amount(kinds.get(k, 0.0))
                for k in ("running", "offered", "free", "unavailable", "total")
            ),
        )
    return Group(Text("\n".join(lines)), Text(""), totals, Text(""), nodes_table(doc["nodes"]))


def job_view(
    job: dict[str, Any], executions: list[dict[str, Any]], events: list[dict[str, Any]]
) -> RenderableType:
    """Like `kubectl describe`: the job's fields, then its executions' tasks, then history."""
    fields = [
        ("Job", str(job["id"])),
        ("Job type", str(job.get("job_type") or job["job_type_id"])),
        ("Status", job["status"]),
        ("Priority", str(job["priority"])),
        ("Tries", f"{job['num_exes']}/{job['max_tries']}"),
        ("Created", _short(job.get("created"))),
        ("Started", _short(job.get("started"))),
        ("Ended", _short(job.get("ended"))),
        ("Error", job.get("error") or ""),
    ]
    width = max(len(k) for k, _ in fields) + 1
    head = Text("\n".join(f"{k + ':':<{width}} {v}" for k, v in fields))
    tasks = _table("EXE", "TASK", "STATUS", "EXIT", "NODE", "STARTED", "ENDED")
    for exe in executions:
        for t in exe["tasks"]:
            tasks.add_row(
                str(exe["exe_num"]),
                t["kind"],
                str(t.get("status") or ""),
                "" if t.get("exit_code") is None else str(t["exit_code"]),
                "" if exe.get("node_id") is None else str(exe["node_id"]),
                _short(t.get("started")),
                _short(t.get("ended")),
            )
    history = _table("WHEN", "EVENT", "DETAIL")
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.get("detail", {}).items()))
        history.add_row(_short(e["occurred"]), e["what"], detail)
    return Group(head, Text(""), tasks, Text(""), history)


def render_text(renderable: RenderableType, width: int = 120) -> str:
    """Plain text of a renderable, for golden files and for pipes."""
    console = Console(width=width, record=True, color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()
