"""The whole-cluster status document and the live dry run of the next cycle."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from loadmaster.api.context import Context
from loadmaster.api.errors import ApiError
from loadmaster.api.live_plan import live_plan

router = APIRouter(tags=["cluster"])


@router.get("/status", responses={503: {"description": "not built yet, or stale"}})
def cluster_status(context: Context) -> dict[str, Any]:
    """Built by the service loop every `api.status_seconds` and served from memory; 503 when
    it is missing or older than five periods (the loop is stuck)."""
    doc, built = context.monitor.status()
    if doc is None or built is None:
        raise ApiError(503, "status", "not built yet; the scheduler may be starting")
    age = (context.clock() - built).total_seconds()
    if age > max(5 * context.settings.status_seconds, 10.0):
        raise ApiError(503, "status", f"{age:.0f} s old; the scheduler loop may be stuck")
    return doc


@router.post("/plan")
def plan_next_cycle(
    context: Context, engine: Literal["reference", "fast"] = "fast"
) -> dict[str, Any]:
    """What the next cycle would do now (plan format v1); nothing is launched or changed."""
    return live_plan(context.service, engine)
