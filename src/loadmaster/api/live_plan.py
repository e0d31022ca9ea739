"""`POST /plan`: the next cycle as a dry run over the live state.

The live state is copied into a plan-format snapshot under the service lock and handed to the
same builder `loadmaster plan SNAPSHOT` uses, so the live plan and the offline plan decide
alike and the running service is never touched. What a snapshot cannot carry (warning
history, waiting-task counters, GPU tables) starts empty, as docs/plan.md says; system tasks
are left out because asking the service for them would create their tasks.

Two things are taken as the next turn would see them rather than as memory holds them now:
job types and scheduler settings are read from the store (a turn starts by syncing them),
and an online agent holding no offer is given one for what it has free (total less its
running tasks) — backends offer every turn and unused offers are declined at its end, so
between turns the offer book is usually empty.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from loadmaster.model.executions import RunningJobExecution
from loadmaster.model.nodes import Node
from loadmaster.model.tasks import Task
from loadmaster.plan.run import plan_from_text
from loadmaster.scheduling.engines import placement_engine
from loadmaster.scheduling.ports import QueueQuery
from loadmaster.service.scheduler import SchedulerService

JOB_TASK_KINDS = ("pull", "pre", "main", "post")
NODE_TASK_KINDS = ("health", "cleanup", "image-pull")


def _iso(value: datetime) -> str:
    return value.isoformat()


def _node(node: Node) -> dict[str, Any]:
    pending = [
        {"id": t.id, "kind": kind, "resources": t.resources.as_dict()}
        for kind, t in sorted(node.tasks.items())
        if t.launched is None and kind in NODE_TASK_KINDS
    ]
    return {
        "id": node.id,
        "hostname": node.hostname,
        # A node never seen this run has no agent; the snapshot needs a unique one.
        "agent_id": node.agent_id or f"unseen-node-{node.id}",
        "state": str(node.state),
        "pending_node_tasks": pending,
    }


def _execution(exe: RunningJobExecution) -> dict[str, Any]:
    current = exe.current if exe.current is not None and exe.current.launched else None
    return {
        "id": exe.id,
        "job_id": exe.job_id,
        "job_type_id": exe.job_type_id,
        "node_id": exe.node_id,
        "agent_id": exe.agent_id,
        "priority": exe.priority,
        "exe_num": exe.spec.exe_num,
        "resources": exe.spec.resources.as_dict(),
        "current_task": current.kind if current is not None else None,
        "remaining_tasks": [t.kind for t in exe.remaining if t.kind in JOB_TASK_KINDS],
    }


def _task(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "agent_id": task.agent_id or "",
        "kind": task.kind,
        "resources": task.resources.as_dict(),
    }


def live_snapshot(service: SchedulerService) -> dict[str, Any]:
    """The live state in plan format v1; the queue head is read from the store."""
    with service.lock:
        runtime = service.runtime
        when = service.clock()
        nodes = [_node(n) for n in runtime.nodes.get_nodes()]
        node_agents = {n["agent_id"] for n in nodes}
        agents = [
            {
                "agent_id": a.agent_id,
                "watermark": a.watermark.as_dict(),
                "total": a.total.as_dict() if a.total is not None else None,
            }
            for a in runtime.offers.agents()
        ]
        known = node_agents | {a["agent_id"] for a in agents}
        offers = [
            {
                "id": o.id,
                "agent_id": o.agent_id,
                "resources": o.resources.as_dict(),
                "received": _iso(o.received),
            }
            for a in runtime.offers.agents()
            for o in a.offers
        ]
        online = {n.agent_id for n in runtime.nodes.get_nodes() if n.is_online and n.agent_id}
        for a in runtime.offers.agents():
            if a.agent_id in online and not a.offers and a.total is not None:
                free = a.total.subtract(a.tasks)
                offers.append(
                    {
                        "id": f"plan-offer-{a.agent_id}",
                        "agent_id": a.agent_id,
                        "resources": {k: max(v, 0.0) for k, v in free.as_dict().items()},
                        "received": _iso(when),
                    }
                )
        tasks = [_task(t) for t in runtime.tasks.get_all_tasks() if (t.agent_id or "") in known]
        executions = [_execution(e) for e in runtime.executions.running()]
        workspaces = sorted(runtime.manager.workspaces)
    settings = service.store.config.scheduler()
    job_types = [
        {
            "id": jt.id,
            "name": jt.name,
            "version": jt.version,
            "resources": jt.resources.as_dict(),
            "max_scheduled": jt.max_scheduled,
            "is_paused": jt.is_paused,
            "steps": [s for s in jt.steps if s in JOB_TASK_KINDS],
        }
        for jt in service.store.job_types.all()
    ]
    query = QueueQuery(settings.queue_mode, max(settings.queue_limit, 1))
    scheduler = {
        "is_paused": settings.is_paused,
        "queue_mode": str(settings.queue_mode),
        "queue_limit": settings.queue_limit,
    }
    queue = [
        {
            "id": q.id,
            "job_id": q.job_id,
            "job_type_id": q.job_type_id,
            "priority": q.priority,
            "queued": _iso(q.queued),
            "resources": q.resources.as_dict(),
            "is_canceled": q.is_canceled,
            "input_workspaces": list(q.input_workspaces),
            "output_workspaces": list(q.output_workspaces),
            "exe_num": q.exe_num,
        }
        for q in service.store.fetch_queue(query)
    ]
    return {
        "version": 1,
        "when": _iso(when),
        "scheduler": scheduler,
        "job_types": job_types,
        "workspaces": workspaces,
        "nodes": nodes,
        "agents": agents,
        "offers": offers,
        "running_tasks": tasks,
        "running_executions": executions,
        "system_tasks": [],
        "queue": queue,
    }


def live_plan(service: SchedulerService, engine: str = "fast") -> dict[str, Any]:
    return plan_from_text(json.dumps(live_snapshot(service)), placement_engine(engine))
