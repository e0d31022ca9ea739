"""The scheduler's own settings: pause, queue mode, queue limit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from loadmaster.api.context import Context, Mutation
from loadmaster.api.errors import ApiError, from_store
from loadmaster.api.schemas import SchedulerOut, SchedulerUpdate
from loadmaster.model.settings import SchedulerSettings

router = APIRouter(prefix="/scheduler", tags=["scheduler"])


def _out(settings: SchedulerSettings) -> SchedulerOut:
    return SchedulerOut(
        is_paused=settings.is_paused,
        queue_mode=str(settings.queue_mode),
        queue_limit=settings.queue_limit,
    )


@router.get("", response_model=SchedulerOut)
def get_scheduler(context: Context) -> SchedulerOut:
    return _out(context.store.config.scheduler())


def _update(context: Context, changes: dict[str, Any]) -> SchedulerOut:
    try:
        settings = context.store.config.update_scheduler(when=context.clock(), **changes)
    except ValueError as exc:
        raise from_store(exc) from None
    context.changed()
    return _out(settings)


@router.patch("", response_model=SchedulerOut, dependencies=[Mutation])
def update_scheduler(body: SchedulerUpdate, context: Context) -> SchedulerOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()}
    if not changes:
        raise ApiError(422, "body", "give at least one of is_paused, queue_mode, queue_limit")
    for key, value in changes.items():
        if value is None:
            raise ApiError(422, key, "must not be null")
    return _update(context, changes)


@router.post("/pause", response_model=SchedulerOut, dependencies=[Mutation])
def pause_scheduler(context: Context) -> SchedulerOut:
    """Nothing new is scheduled and offers are declined; running work carries on."""
    return _update(context, {"is_paused": True})


@router.post("/resume", response_model=SchedulerOut, dependencies=[Mutation])
def resume_scheduler(context: Context) -> SchedulerOut:
    return _update(context, {"is_paused": False})
