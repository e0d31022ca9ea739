"""Job types: create, list, get, update, pause and resume."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from loadmaster.api.context import Context, IdPath, Mutation
from loadmaster.api.convert import job_type_out
from loadmaster.api.errors import ApiError, from_store, not_found
from loadmaster.api.schemas import JobTypeCreate, JobTypeOut, JobTypeUpdate
from loadmaster.model.job_types import JobType, StepSpec, with_minimums
from loadmaster.resources import Resources
from loadmaster.service.workload import STEP_ORDER, to_job_type
from loadmaster.store.records import JobTypeSpec

router = APIRouter(prefix="/job-types", tags=["job types"])


def _refused(exc: ValueError) -> ApiError:
    error = from_store(exc)
    if "already exists" in error.problem:
        error.status = 409
    return error


def _out(context: Context, job_type: JobType) -> JobTypeOut:
    return job_type_out(job_type, context.store.job_types.spec(job_type.id))


@router.get("", response_model=list[JobTypeOut])
def list_job_types(context: Context) -> list[JobTypeOut]:
    return [_out(context, jt) for jt in context.store.job_types.all()]


@router.post(
    "", response_model=JobTypeOut, status_code=status.HTTP_201_CREATED, dependencies=[Mutation]
)
def create_job_type(body: JobTypeCreate, context: Context) -> JobTypeOut:
    job_type = to_job_type(body)
    try:
        spec = JobTypeSpec.of(job_type, frozenset(body.secret_keys))
        created = context.store.job_types.create(spec, when=context.clock())
    except ValueError as exc:
        raise _refused(exc) from None
    context.changed()
    return _out(context, created)


def _require(context: Context, job_type_id: int) -> JobType:
    found = context.store.job_types.get(job_type_id)
    if found is None:
        raise not_found("job_type_id", "job type", job_type_id)
    return found


@router.get("/{job_type_id}", response_model=JobTypeOut)
def get_job_type(job_type_id: IdPath, context: Context) -> JobTypeOut:
    return _out(context, _require(context, job_type_id))


def _changes(body: JobTypeUpdate, current: JobType) -> dict[str, Any]:
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    for nullable in ("max_scheduled", "timeout_seconds"):
        if nullable in given:
            changes[nullable] = getattr(body, nullable)
    for field in ("max_tries", "retry_main_failures"):
        if field in given:
            value = getattr(body, field)
            if value is None:
                raise ApiError(422, field, "must not be null")
            changes[field] = value
    if "resources" in given:
        if body.resources is None:
            raise ApiError(422, "resources", "must not be null")
        changes["resources"] = with_minimums(Resources(body.resources))
    if "env" in given:
        changes["environment"] = dict(body.env or {})
    if "secret_keys" in given:
        changes["secret_keys"] = frozenset(body.secret_keys or ())
    if "steps" in given or "shell" in given:
        shell = body.shell if body.shell is not None else _shell_of(current)
        steps: dict[str, list[str]] = (
            {str(k): v for k, v in body.steps.items()}
            if body.steps is not None
            else {k: list(s.command) for k, s in current.commands.items()}
        )
        if "main" not in steps:
            raise ApiError(422, "steps.main", "a job type needs a main step")
        if shell and any(len(c) != 1 for c in steps.values()):
            raise ApiError(422, "steps", "with shell = true a step is one shell line")
        changes["steps"] = tuple(k for k in STEP_ORDER if k in steps)
        changes["commands"] = {k: StepSpec(tuple(c), shell) for k, c in steps.items()}
    return changes


def _shell_of(job_type: JobType) -> bool:
    return any(step.shell for step in job_type.commands.values())


@router.patch("/{job_type_id}", response_model=JobTypeOut, dependencies=[Mutation])
def update_job_type(job_type_id: IdPath, body: JobTypeUpdate, context: Context) -> JobTypeOut:
    current = _require(context, job_type_id)
    if not body.model_fields_set:
        raise ApiError(422, "body", "give at least one field to change")
    changes = _changes(body, current)
    try:
        updated = context.store.job_types.update(job_type_id, when=context.clock(), **changes)
    except ValueError as exc:
        raise _refused(exc) from None
    context.changed()
    return _out(context, updated)


@router.post("/{job_type_id}/pause", response_model=JobTypeOut, dependencies=[Mutation])
def pause_job_type(job_type_id: IdPath, context: Context) -> JobTypeOut:
    _require(context, job_type_id)
    paused = context.store.job_types.pause(job_type_id, when=context.clock())
    context.changed()
    return _out(context, paused)


@router.post("/{job_type_id}/resume", response_model=JobTypeOut, dependencies=[Mutation])
def resume_job_type(job_type_id: IdPath, context: Context) -> JobTypeOut:
    _require(context, job_type_id)
    resumed = context.store.job_types.resume(job_type_id, when=context.clock())
    context.changed()
    return _out(context, resumed)
