"""Seeded cluster snapshots (plan format v1) for the scheduling benchmarks.

The clusters look like real batch clusters rather than like a worst case: a handful of node
models (so node sizes repeat), job types whose requests come from a small catalogue of sizes
(so queue entries share resource shapes, the way entries of one job type do), a queue ordered
by a few priority levels, and the clutter a real cycle has to wade through — running
executions waiting for their next task, pending node and system tasks, canceled entries,
paused types, per-type limits, nodes that are not READY, entries that can never run. The same
seed always gives the same snapshot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOM = "licenses"

# (weight, cpus, mem MiB, disk MiB, gpus, licenses)
_NODE_MODELS: tuple[tuple[int, float, float, float, float, float], ...] = (
    (30, 8.0, 32768.0, 200_000.0, 0.0, 0.0),
    (30, 16.0, 65536.0, 400_000.0, 0.0, 0.0),
    (20, 32.0, 131072.0, 800_000.0, 0.0, 0.0),
    (8, 64.0, 524288.0, 1_600_000.0, 0.0, 4.0),
    (7, 32.0, 262144.0, 800_000.0, 4.0, 0.0),
    (5, 48.0, 196608.0, 1_000_000.0, 8.0, 2.0),
)
_STATE_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("READY", 92),
    ("PAUSED", 2),
    ("DEGRADED", 2),
    ("OFFLINE", 1),
    ("DEPRECATED", 1),
    ("SCHEDULER_STOPPED", 1),
    ("INITIAL_CLEANUP", 1),
    ("IMAGE_PULL", 1),
)
_CPUS = (0.25, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 8.0)
_MEM = (128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0)
_DISK = (0.0, 100.0, 1024.0, 4096.0, 10240.0)
_PRIORITIES = (1, 50, 100, 100, 100, 100, 200, 200, 500)


@dataclass(slots=True, frozen=True)
class Size:
    """One benchmark cluster: node count, job type count, queue length (= queue limit)."""

    name: str
    nodes: int
    job_types: int
    queued: int

    def label(self) -> str:
        return f"{self.nodes:,} nodes / {self.job_types} types / {self.queued:,} queued"


def _pick_state(rng: random.Random) -> str:
    states, weights = zip(*_STATE_WEIGHTS, strict=True)
    return rng.choices(states, weights)[0]


def _job_types(rng: random.Random, count: int) -> list[dict[str, Any]]:
    types: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        res: dict[str, float] = {
            "cpus": rng.choice(_CPUS),
            "mem": rng.choice(_MEM),
            "disk": rng.choice(_DISK),
        }
        roll = rng.random()
        if roll < 0.08:
            res["gpus"] = float(rng.choice((1, 1, 2)))
        elif roll < 0.12:
            res[CUSTOM] = 1.0
        job_type: dict[str, Any] = {
            "id": i,
            "name": f"type-{i}",
            "version": "1.0",
            "resources": res,
            "max_scheduled": None,
            "is_paused": False,
        }
        if rng.random() < 0.04:
            job_type["is_paused"] = True
        elif rng.random() < 0.06:
            job_type["max_scheduled"] = rng.choice((0, 5, 20, 100))
        if rng.random() < 0.05:
            job_type["steps"] = ["main"]
        types.append(job_type)
    return types


def generate(size: Size, seed: int = 1) -> dict[str, Any]:
    """A snapshot dict for `size`; about 10 % of the cluster is already busy."""
    rng = random.Random(f"{seed}:{size.nodes}:{size.job_types}:{size.queued}")
    job_types = _job_types(rng, size.job_types)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(job_types))]
    nodes: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    running_tasks: list[dict[str, Any]] = []
    running_exes: list[dict[str, Any]] = []
    model_weights = [m[0] for m in _NODE_MODELS]
    exe_id = 0
    for n in range(1, size.nodes + 1):
        _, cpus, mem, disk, gpus, lic = rng.choices(_NODE_MODELS, model_weights)[0]
        agent = f"agent-{n}"
        state = _pick_state(rng)
        node: dict[str, Any] = {"id": n, "hostname": f"host-{n}", "agent_id": agent}
        node["state"] = state
        pending: list[dict[str, Any]] = []
        if rng.random() < 0.03:
            pending.append({"id": f"health-{n}", "kind": "health", "resources": _NODE_TASK})
        if state in ("INITIAL_CLEANUP", "READY") and rng.random() < 0.02:
            pending.append({"id": f"cleanup-{n}", "kind": "cleanup", "resources": _NODE_TASK})
        if state == "IMAGE_PULL":
            pending.append({"id": f"pull-{n}", "kind": "image-pull", "resources": _NODE_TASK})
        if pending:
            node["pending_node_tasks"] = pending
        nodes.append(node)
        watermark: dict[str, float] = {"cpus": cpus, "mem": mem, "disk": disk}
        if gpus:
            watermark["gpus"] = gpus
        if lic:
            watermark[CUSTOM] = lic
        used = dict.fromkeys(watermark, 0.0)
        if rng.random() < 0.3:
            running_tasks.append(
                {
                    "id": f"rt-health-{n}",
                    "agent_id": agent,
                    "kind": "health",
                    "resources": _NODE_TASK,
                }
            )
            for name, value in _NODE_TASK.items():
                used[name] += value
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            jt = rng.choices(job_types, weights)[0]
            res = jt["resources"]
            if any(res.get(k, 0.0) + used.get(k, 0.0) > watermark.get(k, 0.0) for k in res):
                continue
            exe_id += 1
            current = rng.choice((None, "pre", "main", "main"))
            remaining = {None: ["pre", "main", "post"], "pre": ["main", "post"]}.get(
                current, ["post"]
            )
            running_exes.append(
                {
                    "id": exe_id,
                    "job_type_id": jt["id"],
                    "node_id": n,
                    "agent_id": agent,
                    "priority": rng.choice(_PRIORITIES),
                    "resources": res,
                    "current_task": current,
                    "remaining_tasks": remaining,
                }
            )
            if current is not None:
                task_res = dict(res)
                if current == "post":
                    task_res["disk"] = 0.0
                running_tasks.append(
                    {
                        "id": f"rt-exe-{exe_id}",
                        "agent_id": agent,
                        "kind": current,
                        "resources": task_res,
                    }
                )
                for name, value in task_res.items():
                    used[name] = used.get(name, 0.0) + value
        free = {k: max(v - used.get(k, 0.0), 0.0) for k, v in watermark.items()}
        if state != "OFFLINE" and rng.random() < 0.97:
            received = WHEN - timedelta(seconds=rng.choice((0, 0, 0, 1, 5, 12)))
            if rng.random() < 0.3:
                half = {k: v / 2 for k, v in free.items()}
                offers.append(_offer(f"offer-{n}-a", agent, half, received))
                offers.append(_offer(f"offer-{n}-b", agent, half, received))
            else:
                offers.append(_offer(f"offer-{n}", agent, free, received))
        agent_doc: dict[str, Any] = {"agent_id": agent, "watermark": watermark, "total": None}
        if rng.random() < 0.2:
            agent_doc["total"] = watermark
        agents.append(agent_doc)
    queue = _queue(rng, size, job_types, weights)
    system_tasks = [
        {"id": "sys-db-update", "kind": "db-update", "resources": {"cpus": 0.5, "mem": 512.0}},
        {"id": "sys-msg-1", "kind": "message-handler", "resources": {"cpus": 0.5, "mem": 512.0}},
    ]
    return {
        "version": 1,
        "when": WHEN.isoformat().replace("+00:00", "Z"),
        "scheduler": {"is_paused": False, "queue_mode": "FIFO", "queue_limit": size.queued},
        "job_types": job_types,
        "workspaces": ["raw", "products", "scratch"],
        "nodes": nodes,
        "agents": agents,
        "offers": offers,
        "running_tasks": running_tasks,
        "running_executions": running_exes,
        "system_tasks": system_tasks,
        "queue": queue,
    }


_NODE_TASK = {"cpus": 0.1, "mem": 32.0}


def _offer(offer_id: str, agent: str, res: dict[str, float], received: datetime) -> dict[str, Any]:
    return {
        "id": offer_id,
        "agent_id": agent,
        "resources": res,
        "received": received.isoformat().replace("+00:00", "Z"),
    }


def _queue(
    rng: random.Random, size: Size, job_types: list[dict[str, Any]], weights: list[float]
) -> list[dict[str, Any]]:
    queue: list[dict[str, Any]] = []
    for q in range(1, size.queued + 1):
        jt = rng.choices(job_types, weights)[0]
        res = dict(jt["resources"])
        roll = rng.random()
        if roll < 0.15:
            # inputs bigger than the type's disk: the entry's disk is raised to the input size
            res["disk"] = max(res["disk"], float(rng.choice((2048, 8192, 20480, 51200))))
        elif roll < 0.17:
            res["cpus"] = res["cpus"] * 4  # a "big" entry that may need a reservation
            res["mem"] = res["mem"] * 8
        elif roll < 0.172:
            res["cpus"] = 1000.0  # bigger than any node: INSUFFICIENT_RESOURCES
        elif roll < 0.173:
            res["sharedmem"] = 64.0  # INVALID_RESOURCES
        type_id = jt["id"] if rng.random() > 0.0005 else 10_000 + q  # UNKNOWN_JOB_TYPE
        entry: dict[str, Any] = {
            "id": q,
            "job_id": 1_000_000 + q,
            "job_type_id": type_id,
            "priority": rng.choice(_PRIORITIES),
            "queued": (WHEN - timedelta(seconds=rng.randrange(1, 86_400)))
            .isoformat()
            .replace("+00:00", "Z"),
            "resources": res,
            "is_canceled": rng.random() < 0.01,
            "input_workspaces": ["raw"],
            "output_workspaces": ["products" if rng.random() > 0.001 else "missing"],
        }
        queue.append(entry)
    return queue
