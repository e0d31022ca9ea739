"""Read-only views of the service's in-memory state, shared by the status document, the node
endpoints and the metrics. Callers hold `service.lock`; everything returned is plain data.
"""

from __future__ import annotations

from typing import Any

from loadmaster.model.nodes import Node, NodeState
from loadmaster.model.offers import AgentResources
from loadmaster.resources import EMPTY, Resources
from loadmaster.service.scheduler import SchedulerService
from loadmaster.store.records import NodeRecord

STANDARD = ("cpus", "mem", "disk", "gpus")


def _amounts(res: Resources, names: list[str]) -> dict[str, float]:
    return {name: round(res.get(name), 2) for name in names}


def resource_names(*parts: Resources | None) -> list[str]:
    """The standard four first, then any custom resource in name order."""
    extra = sorted({n for p in parts if p is not None for n in p.names()} - set(STANDARD))
    return [*STANDARD, *extra]


def agent_resources(agent: AgentResources | None) -> dict[str, dict[str, float]]:
    """offered / running / free / unavailable / total as spec §9.5 defines them: free is
    watermark − running − offered, unavailable is total − watermark."""
    if agent is None:
        names = list(STANDARD)
        zero = _amounts(EMPTY, names)
        return {k: dict(zero) for k in ("offered", "running", "free", "unavailable", "total")}
    total = agent.total if agent.total is not None else agent.watermark
    names = resource_names(agent.offered, agent.tasks, agent.watermark, total)
    free = agent.watermark.subtract(agent.tasks).subtract(agent.offered)
    return {
        "offered": _amounts(agent.offered, names),
        "running": _amounts(agent.tasks, names),
        "free": _amounts(free, names),
        "unavailable": _amounts(total.subtract(agent.watermark), names),
        "total": _amounts(total, names),
    }


def state_of(state: NodeState) -> dict[str, str]:
    return {"name": str(state), "title": state.display_title, "description": state.description}


def record_state(record: NodeRecord) -> NodeState:
    """A node the store knows but the service has not seen this run is offline."""
    if not record.is_active:
        return NodeState.DEPRECATED
    return NodeState.OFFLINE


def node_view(service: SchedulerService, record: NodeRecord, node: Node | None) -> dict[str, Any]:
    runtime = service.runtime
    agent = None
    if node is not None and node.agent_id:
        agent = next((a for a in runtime.offers.agents() if a.agent_id == node.agent_id), None)
    running = [e.id for e in runtime.executions.running() if e.node_id == record.id]
    conditions = node.conditions if node is not None else None
    return {
        "id": record.id,
        "hostname": record.hostname,
        "agent_id": (node.agent_id or None) if node is not None else record.agent_id,
        "state": state_of(node.state if node is not None else record_state(record)),
        "is_online": bool(node and node.is_online),
        "is_paused": record.is_paused,
        "pause_reason": record.pause_reason,
        "is_active": record.is_active,
        "deprecated": record.deprecated,
        "created": record.created,
        "last_modified": record.last_modified,
        "errors": [c.as_dict() for c in conditions.errors.values()] if conditions else [],
        "warnings": [c.as_dict() for c in conditions.warnings.values()] if conditions else [],
        "num_offers": len(agent.offers) if agent is not None else 0,
        "resources": agent_resources(agent),
        "job_executions": running,
        "node_tasks": sorted(node.tasks) if node is not None else [],
    }


def node_views(service: SchedulerService, records: list[NodeRecord]) -> list[dict[str, Any]]:
    with service.lock:
        return [node_view(service, r, service.runtime.nodes.get(r.id)) for r in records]


def cluster_resources(nodes: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per resource, the sum over active nodes (deprecated ones are left out, as in §9.5)."""
    out: dict[str, dict[str, float]] = {}
    for node in nodes:
        if not node["is_active"]:
            continue
        for kind, amounts in node["resources"].items():
            for name, value in amounts.items():
                slot = out.setdefault(name, {})
                slot[kind] = round(slot.get(kind, 0.0) + value, 2)
    return out
