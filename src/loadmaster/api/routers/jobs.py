"""Jobs: submit one or a batch (idempotent with a key), list with filters, get, cancel,
requeue, their executions and event history; and whole workload documents."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from loadmaster.api.context import (
    MAX_ID,
    ApiContext,
    Context,
    IdPath,
    IdQuery,
    Mutation,
    PriorityQuery,
)
from loadmaster.api.convert import execution_out, job_out
from loadmaster.api.errors import ApiError, from_store, not_found
from loadmaster.api.schemas import (
    BatchOut,
    CancelOut,
    EventOut,
    ExecutionOut,
    JobBatch,
    JobOut,
    JobPageOut,
    JobSubmit,
    Requeue,
    SubmitOut,
    WorkloadOut,
    WorkloadSubmit,
)
from loadmaster.service.submission import known_job_types, submit_workload
from loadmaster.service.workload import WorkloadError, parse_workload
from loadmaster.store.records import (
    CancelOutcome,
    EntityKind,
    JobFilter,
    JobRecord,
    JobStatus,
    JobSubmission,
)

router = APIRouter(tags=["jobs"])


class _Names:
    """Job type names and secret keys, read once per request."""

    def __init__(self, context: ApiContext) -> None:
        self._context = context
        self.by_id = {jt.id: jt for jt in context.store.job_types.all()}
        self._secrets: dict[int, frozenset[str]] = {}

    def name(self, job_type_id: int) -> str | None:
        jt = self.by_id.get(job_type_id)
        return f"{jt.name}:{jt.version}" if jt is not None else None

    def secrets(self, job_type_id: int) -> frozenset[str]:
        if job_type_id not in self._secrets:
            spec = self._context.store.job_types.spec(job_type_id)
            self._secrets[job_type_id] = spec.secret_keys if spec is not None else frozenset()
        return self._secrets[job_type_id]

    def out(self, job: JobRecord) -> JobOut:
        return job_out(job, self.name(job.job_type_id), self.secrets(job.job_type_id))

    def resolve(self, body: JobSubmit, index: int | None) -> int:
        where = "" if index is None else f"jobs[{index}]."
        if (body.job_type_id is None) == (body.job_type is None):
            raise ApiError(422, f"{where}job_type_id", "give exactly one of job_type_id, job_type")
        if body.job_type_id is not None:
            if body.job_type_id not in self.by_id:
                raise not_found(f"{where}job_type_id", "job type", body.job_type_id)
            return body.job_type_id
        reference = body.job_type or ""
        name, _, version = reference.partition(":")
        matches = [
            jt.id
            for jt in self.by_id.values()
            if jt.name == name and (not version or jt.version == version)
        ]
        if len(matches) != 1:
            problem = "unknown job type" if not matches else "ambiguous; give name:version"
            raise ApiError(422, f"{where}job_type", f"{problem} {reference!r}")
        return matches[0]


def _submission(names: _Names, body: JobSubmit, index: int | None) -> JobSubmission:
    try:
        return JobSubmission(
            names.resolve(body, index),
            priority=body.priority,
            idempotency_key=body.idempotency_key,
            input_workspaces=tuple(body.input_workspaces),
            output_workspaces=tuple(body.output_workspaces),
            input_file_size_mib=body.input_file_size_mib,
            environment=dict(body.env),
        )
    except ValueError as exc:
        error = from_store(exc)
        if index is not None:
            error.field = f"jobs[{index}].{error.field}"
        raise error from None


@router.post(
    "/jobs",
    response_model=SubmitOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Mutation],
    responses={200: {"description": "an earlier submission with this idempotency key"}},
)
def submit_job(body: JobSubmit, context: Context, response: Response) -> SubmitOut:
    names = _Names(context)
    submission = _submission(names, body, None)
    try:
        result = context.store.jobs.submit(submission, when=context.clock())
    except ValueError as exc:
        raise from_store(exc) from None
    context.changed()
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return SubmitOut(job=names.out(result.job), created=result.created)


@router.post(
    "/jobs/batch",
    response_model=BatchOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Mutation],
    responses={413: {"description": "more jobs than `api.max_batch`"}},
)
def submit_batch(body: JobBatch, context: Context) -> BatchOut:
    """All or nothing: one transaction queues every job or none."""
    limit = context.settings.max_batch
    if len(body.jobs) > limit:
        raise ApiError(413, "jobs", f"at most {limit} jobs per batch, not {len(body.jobs)}")
    names = _Names(context)
    submissions = [_submission(names, job, i) for i, job in enumerate(body.jobs)]
    try:
        results = context.store.jobs.submit_many(submissions, when=context.clock())
    except ValueError as exc:
        raise from_store(exc) from None
    context.changed()
    return BatchOut(jobs=[SubmitOut(job=names.out(r.job), created=r.created) for r in results])


@router.post(
    "/workloads",
    response_model=WorkloadOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Mutation],
)
def submit_workload_document(body: WorkloadSubmit, context: Context) -> WorkloadOut:
    """A workload file as JSON: its job types are created or brought up to date, then its
    jobs queued in one transaction; any problem submits nothing."""
    limit = context.settings.max_batch
    # Counted before parsing: parsing expands `count`, which could be huge.
    counts = [j.get("count", 1) for j in body.jobs]
    total = sum(
        c if isinstance(c, int) and not isinstance(c, bool) and c > 0 else 1 for c in counts
    )
    if total > limit:
        raise ApiError(413, "jobs", f"at most {limit} jobs per workload, not {total}")
    try:
        workload = parse_workload(body.model_dump(), "workload", known_job_types(context.store))
        done = submit_workload(context.store, workload, context.clock())
    except WorkloadError as exc:
        field, _, problem = exc.problems[0].removeprefix("workload: ").partition(": ")
        raise ApiError(422, field, problem or exc.problems[0]) from None
    except ValueError as exc:
        raise from_store(exc) from None
    context.changed()
    return WorkloadOut(job_ids=done.job_ids, job_type_ids=sorted(done.job_types))


@router.get("/jobs", response_model=JobPageOut)
def list_jobs(
    context: Context,
    status: Annotated[list[JobStatus] | None, Query()] = None,
    job_type_id: Annotated[list[Annotated[int, Query(ge=0, le=MAX_ID)]] | None, Query()] = None,
    priority_min: PriorityQuery = None,
    priority_max: PriorityQuery = None,
    created_from: datetime | None = None,
    created_until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: IdQuery = None,
) -> JobPageOut:
    """Newest first; pass `next_before_id` back as `before_id` for the next page."""
    where = JobFilter(
        statuses=frozenset(status or ()),
        job_type_ids=frozenset(job_type_id or ()),
        priority_min=priority_min,
        priority_max=priority_max,
        created_from=created_from,
        created_until=created_until,
    )
    page = context.store.jobs.search(where, limit=limit, before_id=before_id)
    names = _Names(context)
    return JobPageOut(items=[names.out(j) for j in page.jobs], next_before_id=page.next_before_id)


def _require(context: Context, job_id: int) -> JobRecord:
    job = context.store.jobs.get(job_id)
    if job is None:
        raise not_found("job_id", "job", job_id)
    return job


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: IdPath, context: Context) -> JobOut:
    return _Names(context).out(_require(context, job_id))


@router.get("/jobs/{job_id}/executions", response_model=list[ExecutionOut])
def job_executions(job_id: IdPath, context: Context) -> list[ExecutionOut]:
    _require(context, job_id)
    return [execution_out(e) for e in context.store.executions.for_job(job_id)]


@router.get("/jobs/{job_id}/events", response_model=list[EventOut])
def job_events(
    job_id: IdPath,
    context: Context,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    """Oldest first; pass the last id seen as `after_id` to read on."""
    _require(context, job_id)
    events = context.store.events.list_for(EntityKind.JOB, job_id, after_id=after_id, limit=limit)
    return [
        EventOut(id=e.id, occurred=e.occurred, what=e.what, detail=dict(e.detail)) for e in events
    ]


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=CancelOut,
    dependencies=[Mutation],
    responses={409: {"description": "the job has already ended"}},
)
def cancel_job(job_id: IdPath, context: Context) -> CancelOut:
    """A queued job leaves the queue at once; a running one is killed by the service."""
    _require(context, job_id)
    result = context.store.jobs.cancel(job_id, when=context.clock())
    if result.outcome is CancelOutcome.ALREADY_ENDED:
        raise ApiError(409, "job_id", f"job {job_id} already ended ({result.job.status})")
    context.changed()
    return CancelOut(outcome=str(result.outcome), job=_Names(context).out(result.job))


@router.post(
    "/jobs/{job_id}/requeue",
    response_model=JobOut,
    dependencies=[Mutation],
    responses={409: {"description": "only FAILED or CANCELED jobs can be requeued"}},
)
def requeue_job(job_id: IdPath, context: Context, body: Requeue | None = None) -> JobOut:
    job = _require(context, job_id)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
        raise ApiError(
            409, "job_id", f"job {job_id} is {job.status}; only FAILED or CANCELED can be requeued"
        )
    priority = body.priority if body is not None else None
    try:
        requeued = context.store.jobs.requeue(job_id, when=context.clock(), priority=priority)
    except ValueError as exc:
        error = from_store(exc)
        if "can be requeued" in error.problem:
            error.status = 409
        raise error from None
    context.changed()
    return _Names(context).out(requeued)
