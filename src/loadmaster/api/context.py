"""What every request handler is given: the running service, its monitor and the API settings.

The app is built around one `ApiContext` (no module-level state), so a test can serve several
services in one process. Readers of the service's in-memory state take `service.lock`, which
`step` holds for a whole turn; they hold it only long enough to copy what they show.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Query, Request

from loadmaster.api.monitor import ServiceMonitor
from loadmaster.service.config import ApiConfig
from loadmaster.service.scheduler import SchedulerService, utc_now
from loadmaster.store.sql import SqlStore


@dataclass(slots=True)
class ApiContext:
    service: SchedulerService
    monitor: ServiceMonitor
    settings: ApiConfig
    clock: Callable[[], datetime] = utc_now

    @property
    def store(self) -> SqlStore:
        return self.service.store

    def changed(self) -> None:
        """A mutation was committed: have the loop re-read the store at its next turn."""
        self.service.request_sync()


def get_context(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


Context = Annotated[ApiContext, Depends(get_context)]


def require_token(context: Context, authorization: Annotated[str | None, Header()] = None) -> None:
    """Mutations need `Authorization: Bearer <token>` when a token is configured. The
    comparison takes constant time so the token cannot be guessed byte by byte."""
    token = context.settings.token
    if not token:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise HTTPException(
            status_code=401,
            detail=[{"field": "Authorization", "problem": "a valid bearer token is required"}],
            headers={"WWW-Authenticate": "Bearer"},
        )


Mutation = Depends(require_token)

# Database integers are 64-bit: bounding ids at the edge turns an absurd one into a 422
# instead of an overflow inside the driver.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=0, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=0, le=MAX_ID)]
PriorityQuery = Annotated[int | None, Query(ge=-(2**31), le=2**31 - 1)]
