"""Build the FastAPI app for one running service (no module-level app, so tests can build as
many as they like)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

import loadmaster
from loadmaster.api.context import ApiContext
from loadmaster.api.errors import BodyLimit, install_handlers
from loadmaster.api.routers import (
    cluster,
    executions,
    job_types,
    jobs,
    nodes,
    queue,
    scheduler,
    system,
)

API_PREFIX = "/api/v1"


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="loadmaster",
        version=getattr(loadmaster, "__version__", "0"),
        description="A cluster scheduler for batch job executions.",
    )
    app.state.context = context
    install_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (job_types, jobs, executions, queue, nodes, scheduler, cluster):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(system.router)
    app.add_middleware(BodyLimit, max_bytes=context.settings.max_body_bytes)
    return app
