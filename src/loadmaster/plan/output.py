"""The plan: the JSON document of docs/plan-format.md and its readable table form."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from loadmaster.model.offers import ResourceOffer, standard_view
from loadmaster.scheduling.report import CycleReport

PLAN_VERSION = 1


def _iso(report: CycleReport) -> str:
    return report.when.isoformat().replace("+00:00", "Z")


def plan_document(
    report: CycleReport, declined_at_ingestion: list[ResourceOffer]
) -> dict[str, Any]:
    """The plan as JSON-ready data; every offer appears once, launched or declined."""
    return {
        "version": PLAN_VERSION,
        "when": _iso(report),
        "engine": report.engine,
        "tasks_launched": report.tasks_launched,
        "job_executions_scheduled": report.job_executions_scheduled,
        "scheduled": [
            {
                "queue_id": s.queue_id,
                "job_id": s.job_id,
                "node_id": s.node_id,
                "agent_id": s.agent_id,
                "score": s.score,
            }
            for s in report.scheduled
        ],
        "canceled": list(report.canceled),
        "launches": [
            {
                "node_id": launch.node_id,
                "agent_id": launch.agent_id,
                "offer_ids": list(launch.offer_ids),
                "tasks": [
                    {
                        "id": t.id,
                        "kind": t.kind,
                        "queue_id": t.queue_id,
                        "execution_id": t.execution_id,
                        "resources": standard_view(t.resources),
                    }
                    for t in launch.tasks
                ],
            }
            for launch in report.launches
        ],
        "declined_offers": [o.id for o in declined_at_ingestion] + list(report.declined_offers),
        "reservations": [
            {"node_id": r.node_id, "queue_id": r.queue_id, "score": r.score}
            for r in report.reservations
        ],
        "waiting_tasks": [
            {"id": w.id, "kind": w.kind, "agent_id": w.agent_id, "execution_id": w.execution_id}
            for w in report.waiting_tasks
        ],
        "lost_executions": list(report.lost_executions),
        "warnings": [
            {"name": w.name, "title": w.title, "description": w.description}
            for w in report.warnings
        ],
        "unscheduled": [
            {
                "queue_id": u.queue_id,
                "job_id": u.job_id,
                "job_type_id": u.job_type_id,
                "reason": str(u.reason),
                "detail": u.detail,
                "can_wait_help": u.reason.can_wait_help,
            }
            for u in report.unscheduled
        ],
        "beyond_queue_limit": report.beyond_queue_limit,
        "cluster_resources": {
            "largest_node": standard_view(report.largest_node),
            "total": standard_view(report.cluster_total),
        },
    }


def _fmt_res(res: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in res.items() if value)


def print_tables(doc: dict[str, Any], console: Console) -> None:
    """The readable summary: a headline, then one table per non-empty section."""
    console.print(
        f"[bold]Plan at {doc['when']}[/bold]: {doc['job_executions_scheduled']} execution(s) scheduled, "
        f"{doc['tasks_launched']} task(s) launched, {len(doc['canceled'])} canceled, "
        f"{len(doc['declined_offers'])} offer(s) declined"
    )
    sections: list[tuple[str, list[str], list[list[str]]]] = [
        (
            "Scheduled",
            ["QUEUE ID", "JOB ID", "NODE", "AGENT", "SCORE"],
            [
                [
                    str(s["queue_id"]),
                    str(s["job_id"]),
                    str(s["node_id"]),
                    s["agent_id"],
                    str(s["score"]),
                ]
                for s in doc["scheduled"]
            ],
        ),
        (
            "Launches",
            ["NODE", "OFFERS", "TASK", "KIND", "RESOURCES"],
            [
                [
                    str(launch["node_id"]),
                    ",".join(launch["offer_ids"]),
                    t["id"],
                    t["kind"],
                    _fmt_res(t["resources"]),
                ]
                for launch in doc["launches"]
                for t in (launch["tasks"] or [{"id": "-", "kind": "-", "resources": {}}])
            ],
        ),
        (
            "Reservations",
            ["NODE", "RESERVED FOR", "SCORE"],
            [
                [str(r["node_id"]), f"queue {r['queue_id']}", str(r["score"])]
                for r in doc["reservations"]
            ],
        ),
        (
            "Pending",
            ["QUEUE ID", "JOB ID", "REASON", "DETAIL"],
            [
                [str(u["queue_id"]), str(u["job_id"]), u["reason"], u["detail"]]
                for u in doc["unscheduled"]
            ],
        ),
        (
            "Waiting tasks",
            ["TASK", "KIND", "AGENT", "EXECUTION"],
            [
                [w["id"], w["kind"], str(w["agent_id"]), str(w["execution_id"] or "-")]
                for w in doc["waiting_tasks"]
            ],
        ),
        (
            "Warnings",
            ["NAME", "TITLE", "DESCRIPTION"],
            [[w["name"], w["title"], w["description"]] for w in doc["warnings"]],
        ),
    ]
    for title, columns, rows in sections:
        if not rows:
            continue
        table = Table(title=title, title_justify="left", show_edge=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if doc["lost_executions"]:
        console.print(f"Lost executions: {', '.join(map(str, doc['lost_executions']))}")
    if doc["declined_offers"]:
        console.print(f"Declined offers: {', '.join(doc['declined_offers'])}")
    if doc["beyond_queue_limit"]:
        console.print(
            f"{doc['beyond_queue_limit']} queue entries beyond the queue limit were not considered"
        )
    cluster = doc["cluster_resources"]
    console.print(
        f"Largest node: {_fmt_res(cluster['largest_node']) or '-'}; cluster total: {_fmt_res(cluster['total']) or '-'}"
    )
