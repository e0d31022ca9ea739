"""A hypothesis strategy for random but valid cluster snapshots (plan format v1)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

STATES = ["READY"] * 6 + [
    "PAUSED",
    "DEGRADED",
    "OFFLINE",
    "DEPRECATED",
    "INITIAL_CLEANUP",
    "IMAGE_PULL",
    "SCHEDULER_STOPPED",
]
KINDS = ["pull", "pre", "main", "post"]


def _res(
    draw: st.DrawFn, big: bool = False, gpus: bool = False, custom: bool = False
) -> dict[str, float]:
    cpus = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0] + ([8.0, 16.0] if big else [])))
    mem = draw(st.sampled_from([128.0, 512.0, 1024.0, 4096.0] + ([8192.0, 32768.0] if big else [])))
    out = {"cpus": cpus, "mem": mem}
    if draw(st.booleans()):
        out["disk"] = draw(st.sampled_from([0.0, 100.0, 1000.0]))
    if gpus and draw(st.booleans()):
        out["gpus"] = float(draw(st.integers(1, 2 if not big else 4)))
    if custom and draw(st.integers(0, 4)) == 0:
        out["foo"] = float(draw(st.integers(1, 3)))
    return out


@st.composite
def snapshots(draw: st.DrawFn, max_nodes: int = 6, max_queue: int = 16) -> dict[str, Any]:
    n_types = draw(st.integers(1, 4))
    job_types = [
        {
            "id": t,
            "name": f"type_{t}",
            "resources": _res(draw, gpus=True),
            "max_scheduled": draw(st.sampled_from([None, None, None, 0, 1, 2, 5])),
            "is_paused": draw(st.integers(0, 7)) == 0,
        }
        for t in range(1, n_types + 1)
    ]
    n_nodes = draw(st.integers(0, max_nodes))
    nodes: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    running_tasks: list[dict[str, Any]] = []
    for i in range(1, n_nodes + 1):
        node: dict[str, Any] = {
            "id": i,
            "hostname": f"host_{i}",
            "agent_id": f"agent_{i}",
            "state": draw(st.sampled_from(STATES)),
        }
        pending = draw(
            st.lists(st.sampled_from(["cleanup", "health", "image-pull"]), max_size=3, unique=True)
        )
        node["pending_node_tasks"] = [
            {"id": f"{kind}-{i}", "kind": kind, "resources": {"cpus": 0.1, "mem": 32.0}}
            for kind in pending
        ]
        nodes.append(node)
        for k in range(draw(st.integers(0, 2))):
            received = draw(st.sampled_from([None, "2025-12-31T23:59:45Z", "2025-12-31T23:59:55Z"]))
            offer: dict[str, Any] = {
                "id": f"offer_{i}_{k}",
                "agent_id": f"agent_{i}",
                "resources": _res(draw, big=True, gpus=True, custom=True),
            }
            if received:
                offer["received"] = received
            offers.append(offer)
        if draw(st.booleans()):
            agents.append(
                {
                    "agent_id": f"agent_{i}",
                    "watermark": _res(draw, big=True, gpus=True) if draw(st.booleans()) else None,
                    "total": _res(draw, big=True, gpus=True)
                    if draw(st.integers(0, 3)) == 0
                    else None,
                }
            )
        for k in range(draw(st.integers(0, 2))):
            running_tasks.append(
                {
                    "id": f"rt_{i}_{k}",
                    "agent_id": f"agent_{i}",
                    "kind": draw(st.sampled_from(["main", "health", "db-update"])),
                    "resources": _res(draw),
                }
            )
    if draw(st.booleans()):  # an agent with offers but no node
        offers.append(
            {
                "id": "offer_orphan",
                "agent_id": "agent_orphan",
                "resources": {"cpus": 4.0, "mem": 4096.0},
            }
        )
        agents.append({"agent_id": "agent_orphan"})
    running_executions = []
    for e in range(1, draw(st.integers(0, 4)) + 1):
        node_id = draw(st.integers(1, max(n_nodes, 1) + 1))
        same_agent = draw(st.integers(0, 5)) > 0
        current = draw(st.sampled_from([None, None, "pre", "main"]))
        remaining = draw(st.sampled_from([[], ["main", "post"], ["post"], ["main"]]))
        running_executions.append(
            {
                "id": e,
                "job_type_id": draw(st.integers(1, n_types)),
                "node_id": node_id,
                "agent_id": f"agent_{node_id}" if same_agent else "agent_elsewhere",
                "priority": draw(st.integers(1, 5)) * 10,
                "resources": _res(draw, gpus=True),
                "current_task": current,
                "remaining_tasks": remaining,
            }
        )
    system_tasks = [
        {"id": f"sys-{s}", "kind": "message-handler", "resources": {"cpus": 0.5, "mem": 512.0}}
        for s in range(draw(st.integers(0, 2)))
    ]
    queue = []
    for q in range(1, draw(st.integers(0, max_queue)) + 1):
        type_id = draw(st.integers(1, n_types + 1))  # n_types + 1 is unknown
        resources = (
            job_types[type_id - 1]["resources"]
            if type_id <= n_types and draw(st.booleans())
            else _res(draw, big=draw(st.integers(0, 3)) == 0, gpus=True, custom=True)
        )
        queue.append(
            {
                "id": q,
                "job_id": 1000 + q,
                "job_type_id": type_id,
                "priority": draw(st.integers(1, 5)) * 10,
                "queued": f"2025-12-31T23:{draw(st.integers(0, 59)):02d}:00Z",
                "resources": dict(resources),
                "is_canceled": draw(st.integers(0, 9)) == 0,
            }
        )
    return {
        "version": 1,
        "when": "2026-01-01T00:00:00Z",
        "scheduler": {
            "is_paused": draw(st.integers(0, 15)) == 0,
            "queue_mode": draw(st.sampled_from(["FIFO", "LIFO"])),
            "queue_limit": draw(st.sampled_from([500, 500, 5])),
        },
        "job_types": job_types,
        "nodes": nodes,
        "agents": agents,
        "offers": offers,
        "running_tasks": running_tasks,
        "running_executions": running_executions,
        "system_tasks": system_tasks,
        "queue": queue,
    }
