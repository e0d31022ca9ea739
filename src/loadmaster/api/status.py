"""The whole-cluster status document (the shapes of scheduling spec §9.5), built from the
service's memory only — no store reads — so building it every few seconds costs nothing the
loop would notice."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import Any

from loadmaster.api.counters import Counters
from loadmaster.api.views import agent_resources, cluster_resources, state_of
from loadmaster.model.nodes import Node
from loadmaster.model.offers import AgentResources
from loadmaster.service.scheduler import SchedulerService


def _rate(now: int, before: int, seconds: float) -> float:
    return round((now - before) / seconds, 3) if seconds > 0 else 0.0


def _metrics(
    counters: Counters, previous: Counters, when: datetime, previous_when: datetime | None
) -> dict[str, float]:
    seconds = (when - previous_when).total_seconds() if previous_when is not None else 0.0
    launched = sum(counters.tasks_launched.values())
    launched_before = sum(previous.tasks_launched.values())
    return {
        "new_offers_per_sec": _rate(counters.offers_received, previous.offers_received, seconds),
        "offers_launched_per_sec": _rate(
            counters.offers_accepted, previous.offers_accepted, seconds
        ),
        "tasks_launched_per_sec": _rate(launched, launched_before, seconds),
        "jobs_launched_per_sec": _rate(counters.placements, previous.placements, seconds),
        "jobs_finished_per_sec": _rate(
            counters.executions_finished, previous.executions_finished, seconds
        ),
        "cycles_per_sec": _rate(
            sum(counters.cycles.values()), sum(previous.cycles.values()), seconds
        ),
    }


def _scheduler_state(service: SchedulerService) -> dict[str, str]:
    if not service.status.healthy:
        return {
            "name": "UNHEALTHY",
            "title": "Unhealthy",
            "description": service.status.last_error or "The scheduler is unhealthy.",
        }
    if service.runtime.settings.is_paused:
        return {
            "name": "PAUSED",
            "title": "Paused",
            "description": "The scheduler is paused, so no new jobs will be scheduled.",
        }
    return {"name": "READY", "title": "Ready", "description": "The scheduler is running normally."}


def _node(
    node: Node, running: dict[int, list[int]], agents: dict[str, AgentResources]
) -> dict[str, Any]:
    agent = agents.get(node.agent_id) if node.agent_id else None
    return {
        "id": node.id,
        "hostname": node.hostname,
        "agent_id": node.agent_id or None,
        "state": state_of(node.state),
        "is_online": node.is_online,
        "is_paused": node.is_paused,
        "pause_reason": node.pause_reason,
        "is_active": node.is_active,
        "errors": [c.as_dict() for c in node.conditions.errors.values()],
        "warnings": [c.as_dict() for c in node.conditions.warnings.values()],
        "num_offers": len(agent.offers) if agent is not None else 0,
        "resources": agent_resources(agent),
        "job_executions": running.get(node.id, []),
        "node_tasks": sorted(node.tasks),
    }


def build_status(
    service: SchedulerService,
    when: datetime,
    counters: Counters,
    previous: Counters,
    previous_when: datetime | None,
) -> dict[str, Any]:
    with service.lock:
        runtime = service.runtime
        running: dict[int, list[int]] = {}
        by_type: dict[int, int] = {}
        for exe in runtime.executions.running():
            running.setdefault(exe.node_id, []).append(exe.id)
            by_type[exe.job_type_id] = by_type.get(exe.job_type_id, 0) + 1
        agents = {a.agent_id: a for a in runtime.offers.agents()}  # once, not once per node
        nodes = [_node(n, running, agents) for n in runtime.nodes.get_nodes()]
        warnings = [w.as_dict() for w in runtime.warnings.active()]
        job_types = [
            {
                "id": jt.id,
                "name": jt.name,
                "version": jt.version,
                "is_paused": jt.is_paused,
                "max_scheduled": jt.max_scheduled,
                "running": by_type.get(jt.id, 0),
                "unmet_resources": jt.unmet_resources,
            }
            for jt in runtime.job_types.all()
        ]
        state = _scheduler_state(service)
        status = service.status
        framework_id = service.framework_id
    return {
        "timestamp": when.isoformat(),
        "scheduler": {
            "hostname": socket.gethostname(),
            "framework_id": framework_id,
            "cycles": status.cycles,
            "last_cycle": status.last_cycle.isoformat() if status.last_cycle else None,
            "metrics": _metrics(counters, previous, when, previous_when),
            "state": state,
            "warnings": warnings,
        },
        "nodes": nodes,
        "num_offers": sum(n["num_offers"] for n in nodes if n["is_active"]),
        "resources": cluster_resources(nodes),
        "job_types": job_types,
    }
