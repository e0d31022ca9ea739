"""Liveness, readiness and metrics: outside `/api/v1`, where monitoring expects them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from loadmaster.api.context import Context
from loadmaster.api.metrics import CONTENT_TYPE, render
from loadmaster.scheduling.ports import StoreUnavailable

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers; nothing else is checked."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the store or the backend is down"}})
def readyz(context: Context) -> JSONResponse:
    """Ready only when the store and the backend both answer."""
    checks: dict[str, Any] = {}
    try:
        context.store.config.scheduler()
        checks["store"] = "ok"
    except StoreUnavailable as exc:
        checks["store"] = f"unavailable: {exc}"
    checks["backend"] = "ok" if context.service.backend.is_healthy() else "unhealthy"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(context: Context) -> PlainTextResponse:
    return PlainTextResponse(
        render(context.service, context.monitor.counters()), media_type=CONTENT_TYPE
    )
