"""A writer that never stops: submits, commits cycles, finishes, cancels and requeues in a
loop, printing one line per round, until it is killed. Run as
`python -m tests.store.crash_worker URL [SCHEMA]`; the crash test SIGKILLs it mid-flight."""

from __future__ import annotations

import contextlib
import random
import sys
from datetime import UTC, datetime

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.queue import QueueMode
from loadmaster.scheduling.ports import Placement, QueueQuery, StoreUnavailable
from loadmaster.store.records import JobFilter, JobStatus, JobSubmission, JobTypeSpec, NodeSighting
from loadmaster.store.sql import SqlStore

STATUSES = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELED)


def one_round(store: SqlStore, rng: random.Random, type_id: int, node_id: int) -> None:
    now = datetime.now(UTC)
    batch = [JobSubmission(type_id, priority=rng.randint(0, 5)) for _ in range(rng.randint(1, 30))]
    store.jobs.submit_many(batch, when=now)
    entries = list(store.fetch_queue(QueueQuery(QueueMode.FIFO, 40)))
    cut = rng.randint(0, len(entries))
    placements = [Placement(e, node_id, "agent-x", e.resources) for e in entries[:cut]]
    with contextlib.suppress(StoreUnavailable):
        store.commit_cycle(placements, [], now)
    for exe in store.executions.running()[: rng.randint(0, 20)]:
        store.executions.finish(
            exe.id, status=rng.choice(STATUSES), when=now, requeue=rng.random() < 0.5
        )
    for job in store.jobs.search(limit=5).jobs:
        if rng.random() < 0.3:
            store.jobs.cancel(job.id, when=now)
    failed = store.jobs.search(JobFilter(statuses=frozenset({JobStatus.FAILED})), limit=3)
    for job in failed.jobs:
        store.jobs.requeue(job.id, when=now)


def main(url: str, schema: str | None) -> None:
    store = SqlStore.open(url, schema=schema)
    now = datetime.now(UTC)
    job_type = store.job_types.find("crash", "1.0") or store.job_types.create(
        JobTypeSpec("crash", max_tries=2), when=now
    )
    node = store.nodes.upsert([NodeSighting("crash-node", "agent-x")], when=now)[0]
    rng = random.Random()
    rounds = 0
    while True:
        one_round(store, rng, job_type.id, node.id)
        rounds += 1
        print(rounds, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
