"""Jobs: submit (single, batch, idempotent), search, cancel, requeue, queue status."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import event
from tests.store.harness import T0, start

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.queue import QueueMode
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import QueueQuery
from loadmaster.store.records import (
    CancelOutcome,
    EntityKind,
    JobFilter,
    JobStatus,
    JobSubmission,
    JobTypeSpec,
    TaskLaunch,
)
from loadmaster.store.sql import SqlStore


def job_type(store: SqlStore, name: str = "t", **fields: object) -> int:
    spec = JobTypeSpec(name, resources=Resources.of(cpus=1.0, mem=512.0), **fields)  # type: ignore[arg-type]
    return store.job_types.create(spec, when=T0).id


def queue_of(store: SqlStore) -> list[int]:
    return [e.job_id for e in store.fetch_queue(QueueQuery(QueueMode.FIFO, 10_000))]


def test_submit_queues_one_entry_with_the_job_type_requirement(store: SqlStore) -> None:
    type_id = job_type(store, max_tries=4, timeout_seconds=30.0)
    result = store.jobs.submit(
        JobSubmission(type_id, priority=7, input_file_size_mib=2048.0, environment={"A": "1"}),
        when=T0,
    )
    job = result.job
    assert result.created
    assert job.status is JobStatus.QUEUED and job.num_exes == 1 and job.max_tries == 4
    assert store.jobs.get(job.id) == job
    (entry,) = store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))
    assert entry.job_id == job.id and entry.priority == 7 and entry.exe_num == 1
    assert entry.timeout_seconds == 30.0 and entry.input_file_size_mib == 2048.0
    assert entry.environment == (("A", "1"),)
    assert entry.resources.disk == 2048.0  # raised to the input size
    assert entry.resources.cpus == 1.0 and entry.resources.mem == 512.0
    assert [e.what for e in store.events.list_for(EntityKind.JOB, job.id)] == ["queued"]


def test_minimums_apply_to_the_queued_requirement(store: SqlStore) -> None:
    spec = JobTypeSpec("tiny", resources=Resources.of(cpus=0.1, mem=10.0, sharedmem=64.0))
    type_id = store.job_types.create(spec, when=T0).id
    store.jobs.submit(JobSubmission(type_id), when=T0)
    (entry,) = store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))
    assert entry.resources.cpus == 0.25 and entry.resources.mem == 128.0
    assert "sharedmem" not in entry.resources


def test_batch_submit_keeps_order_and_is_all_or_nothing(store: SqlStore) -> None:
    type_id = job_type(store)
    results = store.jobs.submit_many(
        [JobSubmission(type_id, priority=p) for p in (3, 1, 2)], when=T0
    )
    assert [r.job.priority for r in results] == [3, 1, 2]
    assert queue_of(store) == [results[1].job.id, results[2].job.id, results[0].job.id]
    with pytest.raises(ValueError, match=r"^job_type_id: no job type with id 999"):
        store.jobs.submit_many([JobSubmission(type_id), JobSubmission(999)], when=T0)
    assert len(queue_of(store)) == 3


def test_a_retried_submit_never_queues_twice(store: SqlStore) -> None:
    type_id = job_type(store)
    first = store.jobs.submit(JobSubmission(type_id, idempotency_key="k-1"), when=T0)
    again = store.jobs.submit(JobSubmission(type_id, idempotency_key="k-1"), when=T0)
    assert first.created and not again.created
    assert again.job.id == first.job.id
    assert queue_of(store) == [first.job.id]


def test_an_idempotency_key_reused_for_something_else_is_rejected(store: SqlStore) -> None:
    type_id = job_type(store)
    store.jobs.submit(JobSubmission(type_id, priority=1, idempotency_key="k"), when=T0)
    with pytest.raises(ValueError, match=r"^idempotency_key: 'k' was already used"):
        store.jobs.submit(JobSubmission(type_id, priority=2, idempotency_key="k"), when=T0)


def test_duplicate_keys_within_a_batch_make_one_job(store: SqlStore) -> None:
    type_id = job_type(store)
    same = JobSubmission(type_id, idempotency_key="dup")
    results = store.jobs.submit_many([same, JobSubmission(type_id), same], when=T0)
    assert [r.created for r in results] == [True, True, False]
    assert results[0].job.id == results[2].job.id
    assert len(queue_of(store)) == 2


def test_concurrent_submits_with_one_key_make_one_job(open_store: Callable[..., SqlStore]) -> None:
    stores = [open_store() for _ in range(4)]
    type_id = job_type(stores[0])
    ids: list[int] = []
    errors: list[BaseException] = []

    def submit(store: SqlStore) -> None:
        try:
            result = store.jobs.submit(JobSubmission(type_id, idempotency_key="race"), when=T0)
            ids.append(result.job.id)
        except BaseException as error:  # asserted below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == 4
    assert queue_of(stores[0]) == ids[:1]


@pytest.mark.parametrize(
    ("case", "fields", "message"),
    [
        ("bool priority", {"priority": True}, r"^priority: must be an integer"),
        (
            "negative input size",
            {"input_file_size_mib": -1.0},
            r"^input_file_size_mib: must be zero",
        ),
        ("empty key", {"idempotency_key": ""}, r"^idempotency_key: must be a non-empty string"),
        ("empty workspace", {"input_workspaces": ("",)}, r"^input_workspaces: must be a non-empty"),
        ("bad env", {"environment": {"": "x"}}, r"^environment: invalid variable name"),
    ],
)
def test_invalid_submissions_name_the_field(
    case: str, fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        JobSubmission(1, **fields)  # type: ignore[arg-type]


def test_search_filters_and_pages_newest_first(store: SqlStore) -> None:
    one, two = job_type(store, "one"), job_type(store, "two")
    jobs = [
        store.jobs.submit(JobSubmission(t, priority=p), when=T0 + timedelta(minutes=m)).job
        for t, p, m in [(one, 1, 0), (two, 5, 1), (one, 9, 2), (two, 3, 3), (one, 5, 4)]
    ]
    store.jobs.cancel(jobs[0].id, when=T0)

    def found(where: JobFilter) -> list[int]:
        return [j.id for j in store.jobs.search(where).jobs]

    newest_first = [j.id for j in reversed(jobs)]
    assert found(JobFilter()) == newest_first
    assert found(JobFilter(statuses=frozenset({JobStatus.CANCELED}))) == [jobs[0].id]
    assert found(JobFilter(job_type_ids=frozenset({two}))) == [jobs[3].id, jobs[1].id]
    assert found(JobFilter(priority_min=3, priority_max=5)) == [jobs[4].id, jobs[3].id, jobs[1].id]
    window = JobFilter(
        created_from=T0 + timedelta(minutes=1), created_until=T0 + timedelta(minutes=3)
    )
    assert found(window) == [jobs[2].id, jobs[1].id]
    first = store.jobs.search(limit=2)
    second = store.jobs.search(limit=2, before_id=first.next_before_id)
    third = store.jobs.search(limit=2, before_id=second.next_before_id)
    paged = [j.id for page in (first, second, third) for j in page.jobs]
    assert paged == newest_first and third.next_before_id is None
    with pytest.raises(ValueError, match=r"^limit: must be between 1 and 1000"):
        store.jobs.search(limit=0)


def test_cancel_of_a_queued_job_removes_its_entry(store: SqlStore) -> None:
    type_id = job_type(store)
    job = store.jobs.submit(JobSubmission(type_id), when=T0).job
    result = store.jobs.cancel(job.id, when=T0 + timedelta(seconds=5))
    assert result.outcome is CancelOutcome.CANCELED and result.kill is None
    assert result.job.status is JobStatus.CANCELED
    assert result.job.ended == T0 + timedelta(seconds=5)
    assert queue_of(store) == [] and store.count_queue() == 0
    assert store.executions.for_job(job.id) == []
    assert store.jobs.cancel(job.id, when=T0).outcome is CancelOutcome.ALREADY_ENDED
    assert store.invariant_violations() == []


def test_cancel_of_a_running_job_asks_for_a_kill(store: SqlStore) -> None:
    type_id = job_type(store)
    job = store.jobs.submit(JobSubmission(type_id), when=T0).job
    exe_id = start(store, job.id)
    store.executions.record_task_launches(
        [
            TaskLaunch(exe_id, "t_pull", "pull", "agent-1", T0),
            TaskLaunch(exe_id, "t_pre", "pre", "agent-1", T0),
        ]
    )
    result = store.jobs.cancel(job.id, when=T0)
    assert result.outcome is CancelOutcome.KILL_REQUESTED
    assert result.job.status is JobStatus.RUNNING and result.job.cancel_requested == T0
    assert result.kill is not None
    assert result.kill.execution_id == exe_id and result.kill.agent_id == "agent-1"
    assert result.kill.task_ids == ("t_pull", "t_pre")
    assert store.jobs.cancel(job.id, when=T0 + timedelta(seconds=1)) == result  # repeatable
    (running,) = store.executions.running()
    assert running.cancel_requested == T0
    finished = store.executions.finish(exe_id, status=ExecutionStatus.FAILED, when=T0, requeue=True)
    assert finished.job.status is JobStatus.CANCELED and finished.requeued_queue_id is None
    assert store.invariant_violations() == []


def test_cancel_of_an_unknown_job(store: SqlStore) -> None:
    with pytest.raises(ValueError, match=r"^job_id: no job with id 42"):
        store.jobs.cancel(42, when=T0)


def test_requeue_gives_a_failed_job_fresh_tries(store: SqlStore) -> None:
    type_id = job_type(store, max_tries=1)
    job = store.jobs.submit(JobSubmission(type_id, priority=4), when=T0).job
    exe_id = start(store, job.id)
    failed = store.executions.finish(exe_id, status=ExecutionStatus.FAILED, when=T0, requeue=True)
    assert failed.job.status is JobStatus.FAILED  # no tries left
    later = T0 + timedelta(hours=1)
    again = store.jobs.requeue(job.id, when=later, priority=2)
    assert again.status is JobStatus.QUEUED and again.num_exes == 2 and again.max_tries == 2
    assert again.priority == 2 and again.queued == later and again.ended is None
    (entry,) = store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))
    assert entry.exe_num == 2 and entry.priority == 2
    with pytest.raises(ValueError, match=r"^job_id: job \d+ is QUEUED; only FAILED or CANCELED"):
        store.jobs.requeue(job.id, when=later)
    assert store.invariant_violations() == []


def test_queue_status_per_job_type(store: SqlStore) -> None:
    one, two, paused = job_type(store, "one"), job_type(store, "two"), job_type(store, "paused")
    store.job_types.pause(paused, when=T0)
    for type_id, priority, minutes in [(one, 5, 2), (one, 3, 4), (two, 1, 3), (paused, 0, 0)]:
        store.jobs.submit(
            JobSubmission(type_id, priority=priority), when=T0 + timedelta(minutes=minutes)
        )
    store.record_unmet_resources({one: "gpus"})
    status = store.queue.status()
    assert [s.job_type_id for s in status] == [two, one, paused]
    by_type = {s.job_type_id: s for s in status}
    assert by_type[one].count == 2 and by_type[one].highest_priority == 3
    assert by_type[one].longest_queued == T0 + timedelta(minutes=2)
    assert by_type[one].unmet_resources == "gpus" and by_type[paused].is_paused


def test_a_cancel_racing_a_retry_still_removes_the_new_entry(
    open_store: Callable[..., SqlStore],
) -> None:
    """The retry's transaction holds the job while it queues the next try; the cancel waits
    for the job, then must find and remove the entry it could not see when it started."""
    retrying, canceling = open_store(), open_store()
    type_id = job_type(retrying)
    job = retrying.jobs.submit(JobSubmission(type_id), when=T0).job
    exe_id = start(retrying, job.id)
    inside = threading.Event()

    def pause_inside(conn: object, cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().startswith("INSERT INTO queue"):
            inside.set()
            time.sleep(0.3)  # long enough for the cancel to be waiting on the job's lock

    event.listen(retrying.engine, "before_cursor_execute", pause_inside)
    finisher = threading.Thread(
        target=lambda: retrying.executions.finish(
            exe_id, status=ExecutionStatus.FAILED, when=T0, requeue=True
        )
    )
    finisher.start()
    assert inside.wait(5)
    result = canceling.jobs.cancel(job.id, when=T0)
    finisher.join()
    event.remove(retrying.engine, "before_cursor_execute", pause_inside)
    assert result.outcome is CancelOutcome.CANCELED
    assert canceling.count_queue() == 0
    assert canceling.invariant_violations() == []


def test_queue_ids_are_never_reused(store: SqlStore) -> None:
    """A placement planned on a stale read must never match a newer entry by accident."""
    type_id = job_type(store)
    old = store.jobs.submit_many([JobSubmission(type_id) for _ in range(3)], when=T0)
    old_ids = {e.id for e in store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))}
    for result in old:
        store.jobs.cancel(result.job.id, when=T0)
    store.jobs.submit(JobSubmission(type_id), when=T0)
    (fresh,) = store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))
    assert fresh.id > max(old_ids)
