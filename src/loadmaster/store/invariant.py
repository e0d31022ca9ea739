"""The crash invariant, as a query.

Every job is in exactly one of three states, and every committed transaction moves a job
from one to another as a whole:

* QUEUED — exactly one queue entry, no execution that has not ended;
* RUNNING — no queue entry, exactly one execution that has not ended;
* ended (COMPLETED, FAILED, CANCELED) — no queue entry, no execution that has not ended.

Because the store changes a job's state only inside single transactions, a crash at any
instant leaves the database on one side of a transaction or the other, and so in one of
these states. The service can run this check at start-up; the tests run it after killing a
writer mid-flight.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, or_, select

from loadmaster.store.schema import job_executions, jobs, queue

ENDED = ("COMPLETED", "FAILED", "CANCELED")


def invariant_violations(connection: Connection, limit: int = 100) -> list[str]:
    entries = select(queue.c.job_id, func.count().label("n")).group_by(queue.c.job_id).subquery()
    live = (
        select(job_executions.c.job_id, func.count().label("n"))
        .where(job_executions.c.ended.is_(None))
        .group_by(job_executions.c.job_id)
        .subquery()
    )
    n_entries = func.coalesce(entries.c.n, 0)
    n_live = func.coalesce(live.c.n, 0)
    broken = or_(
        and_(jobs.c.status == "QUEUED", or_(n_entries != 1, n_live != 0)),
        and_(jobs.c.status == "RUNNING", or_(n_entries != 0, n_live != 1)),
        and_(jobs.c.status.in_(ENDED), or_(n_entries != 0, n_live != 0)),
    )
    stmt = (
        select(jobs.c.id, jobs.c.status, n_entries.label("entries"), n_live.label("live"))
        .outerjoin(entries, entries.c.job_id == jobs.c.id)
        .outerjoin(live, live.c.job_id == jobs.c.id)
        .where(broken)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    return [
        f"job {row.id} is {row.status} with {row.entries} queue entries "
        f"and {row.live} executions not ended"
        for row in connection.execute(stmt)
    ]
