"""Why a queue entry was not scheduled: one primary reason code per entry per cycle.

Codes are stable once released. `can_wait_help` says whether the entry may run later without
anyone changing anything (Kubernetes' Unschedulable vs UnschedulableAndUnresolvable): a full
cluster drains, but a cluster without a `gpus` resource never grows one by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReasonCode(StrEnum):
    SCHEDULER_PAUSED = "SCHEDULER_PAUSED"
    NO_READY_NODES = "NO_READY_NODES"
    WAITING_SYSTEM_TASKS = "WAITING_SYSTEM_TASKS"
    JOB_TYPE_PAUSED = "JOB_TYPE_PAUSED"
    JOB_TYPE_LIMIT = "JOB_TYPE_LIMIT"
    INVALID_RESOURCES = "INVALID_RESOURCES"
    INSUFFICIENT_RESOURCES = "INSUFFICIENT_RESOURCES"
    UNKNOWN_JOB_TYPE = "UNKNOWN_JOB_TYPE"
    MISSING_WORKSPACE = "MISSING_WORKSPACE"
    NODE_RESERVED = "NODE_RESERVED"
    NO_NODE_FITS = "NO_NODE_FITS"
    GPUS_UNAVAILABLE = "GPUS_UNAVAILABLE"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"

    @property
    def can_wait_help(self) -> bool:
        return self not in _NEEDS_A_CHANGE


_NEEDS_A_CHANGE = frozenset(
    (
        ReasonCode.SCHEDULER_PAUSED,
        ReasonCode.JOB_TYPE_PAUSED,
        ReasonCode.INVALID_RESOURCES,
        ReasonCode.INSUFFICIENT_RESOURCES,
        ReasonCode.UNKNOWN_JOB_TYPE,
        ReasonCode.MISSING_WORKSPACE,
    )
)


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class Unscheduled:
    queue_id: int
    job_id: int
    job_type_id: int
    reason: ReasonCode
    detail: str
