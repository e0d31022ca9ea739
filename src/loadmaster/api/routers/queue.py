"""The queue by job type, and why queued jobs are not running (from the last cycle)."""

from __future__ import annotations

from fastapi import APIRouter

from loadmaster.api.context import Context
from loadmaster.api.schemas import PendingJobOut, PendingOut, QueueStatusOut

router = APIRouter(prefix="/queue", tags=["queue"])


@router.get("", response_model=list[QueueStatusOut])
def queue_status(context: Context) -> list[QueueStatusOut]:
    return [
        QueueStatusOut(
            job_type_id=s.job_type_id,
            name=s.name,
            version=s.version,
            is_paused=s.is_paused,
            count=s.count,
            highest_priority=s.highest_priority,
            longest_queued=s.longest_queued,
            unmet_resources=s.unmet_resources,
        )
        for s in context.store.queue.status()
    ]


@router.get("/pending", response_model=PendingOut)
def pending_reasons(context: Context) -> PendingOut:
    """ "Why is my job not running?": the reason code the last cycle gave each queued entry it
    did not schedule, and the count per code. `can_wait_help` false means someone must change
    something (resume, add resources) before it can run."""
    with context.service.lock:
        report = context.service.runtime.manager.last_report
        unscheduled = list(report.unscheduled) if report is not None else []
        cycle = report.when if report is not None else None
    reasons: dict[str, int] = {}
    for u in unscheduled:
        reasons[str(u.reason)] = reasons.get(str(u.reason), 0) + 1
    return PendingOut(
        cycle=cycle,
        reasons=reasons,
        jobs=[
            PendingJobOut(
                job_id=u.job_id,
                queue_id=u.queue_id,
                job_type_id=u.job_type_id,
                reason=str(u.reason),
                detail=u.detail,
                can_wait_help=u.reason.can_wait_help,
            )
            for u in unscheduled
        ],
    )
