"""Executions: finishing with the retry decision, task records, loading for a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.store.harness import T0, start

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.queue import QueueMode
from loadmaster.model.tasks import TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import QueueQuery
from loadmaster.store import executions as store_executions
from loadmaster.store.records import EntityKind, JobStatus, JobSubmission, JobTypeSpec, TaskLaunch
from loadmaster.store.sql import SqlStore

LATER = T0 + timedelta(minutes=10)


def running_job(
    store: SqlStore, *, max_tries: int = 3, long_running: bool = False
) -> tuple[int, int]:
    spec = JobTypeSpec(
        f"t{max_tries}{long_running}",
        resources=Resources.of(cpus=1.0, mem=256.0),
        max_tries=max_tries,
        is_long_running=long_running,
    )
    type_id = store.job_types.create(spec, when=T0).id
    job = store.jobs.submit(JobSubmission(type_id, priority=9, environment={"X": "y"}), when=T0).job
    return job.id, start(store, job.id)


def test_finish_completed_ends_the_job(store: SqlStore) -> None:
    _job_id, exe_id = running_job(store)
    result = store.executions.finish(
        exe_id, status=ExecutionStatus.COMPLETED, when=LATER, exit_code=0
    )
    assert not result.already_finished and result.requeued_queue_id is None
    assert result.execution.status is ExecutionStatus.COMPLETED
    assert result.execution.ended == LATER and result.execution.exit_code == 0
    assert result.job.status is JobStatus.COMPLETED and result.job.ended == LATER
    assert store.executions.running() == []
    assert [e.what for e in store.events.list_for(EntityKind.EXECUTION, exe_id)] == ["finished"]
    history = [e.what for e in store.events.list_for(EntityKind.JOB, result.job.id)]
    assert history == ["queued", "scheduled", "completed"]
    assert store.invariant_violations() == []


def test_a_retried_failure_requeues_in_the_same_transaction(store: SqlStore) -> None:
    job_id, exe_id = running_job(store)
    result = store.executions.finish(
        exe_id, status=ExecutionStatus.FAILED, when=LATER, error="node-lost", requeue=True
    )
    assert result.job.status is JobStatus.QUEUED and result.job.num_exes == 2
    assert result.job.error is None and result.job.started is None
    (entry,) = store.fetch_queue(QueueQuery(QueueMode.FIFO, 10))
    assert entry.id == result.requeued_queue_id
    assert entry.exe_num == 2 and entry.priority == 9 and entry.queued == LATER
    assert entry.environment == (("X", "y"),)
    assert result.execution.error == "node-lost"
    history = [e.what for e in store.events.list_for(EntityKind.JOB, job_id)]
    assert history == ["queued", "scheduled", "retried"]
    assert store.invariant_violations() == []


def test_no_requeue_once_tries_are_spent(store: SqlStore) -> None:
    _job_id, exe_id = running_job(store, max_tries=1)
    result = store.executions.finish(
        exe_id, status=ExecutionStatus.FAILED, when=LATER, error="node-lost", requeue=True
    )
    assert result.job.status is JobStatus.FAILED and result.job.error == "node-lost"
    assert result.requeued_queue_id is None and store.count_queue() == 0


def test_long_running_job_types_retry_without_a_limit(store: SqlStore) -> None:
    _job_id, exe_id = running_job(store, max_tries=1, long_running=True)
    result = store.executions.finish(
        exe_id, status=ExecutionStatus.FAILED, when=LATER, requeue=True
    )
    assert result.job.status is JobStatus.QUEUED and result.job.num_exes == 2


def test_failure_without_requeue_fails_the_job(store: SqlStore) -> None:
    _job_id, exe_id = running_job(store)
    result = store.executions.finish(
        exe_id, status=ExecutionStatus.FAILED, when=LATER, error="algorithm-unknown", exit_code=3
    )
    assert result.job.status is JobStatus.FAILED and result.job.error == "algorithm-unknown"
    assert result.execution.exit_code == 3


def test_finishing_twice_changes_nothing(store: SqlStore) -> None:
    _job_id, exe_id = running_job(store)
    first = store.executions.finish(exe_id, status=ExecutionStatus.FAILED, when=LATER, requeue=True)
    second = store.executions.finish(
        exe_id, status=ExecutionStatus.FAILED, when=LATER, requeue=True
    )
    assert second.already_finished and second.requeued_queue_id is None
    assert second.job == first.job
    assert store.count_queue() == 1


def test_finish_rejects_bad_input(store: SqlStore) -> None:
    _, exe_id = running_job(store)
    with pytest.raises(ValueError, match=r"^execution_id: no execution with id 999"):
        store.executions.finish(999, status=ExecutionStatus.COMPLETED, when=LATER)
    with pytest.raises(ValueError, match=r"^status: an execution finishes"):
        store.executions.finish(exe_id, status=ExecutionStatus.RUNNING, when=LATER)


@pytest.mark.parametrize("chunk", [1, 2, 10_000])
def test_task_launches_and_updates_in_bulk(
    store: SqlStore, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the updates are written a few at a time (one transaction, in order)."""
    monkeypatch.setattr(store_executions, "_UPDATE_CHUNK", chunk)
    _, exe_id = running_job(store)
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    store.executions.record_task_launches(
        [
            TaskLaunch(exe_id, "x_pull", "pull", "agent-1", T0),
            TaskLaunch(exe_id, "x_pre", "pre", None, T0),
            TaskLaunch(exe_id, "x_main", "main", "agent-2", T0),
        ]
    )

    def update(
        task_id: str, status: TaskStatus, when: object, code: int | None = None
    ) -> TaskStatusUpdate:
        assert isinstance(when, type(T0))
        return TaskStatusUpdate(task_id, "agent-1", status, when, exit_code=code)

    store.executions.record_task_updates(
        [
            update("x_pull", TaskStatus.RUNNING, t1),
            update("x_pull", TaskStatus.FINISHED, t2, 0),
            update("x_pull", TaskStatus.RUNNING, LATER),  # late, after the end: ignored
            update("x_pre", TaskStatus.LOST, t2),
            update("health_1", TaskStatus.RUNNING, t1),  # not a job task: ignored
            # an update that names no agent keeps the one recorded at launch
            TaskStatusUpdate("x_main", "", TaskStatus.RUNNING, t1),
        ]
    )
    (running,) = store.executions.running()
    pull, pre, main = running.tasks
    assert (pull.status, pull.started, pull.ended, pull.exit_code) == (
        TaskStatus.FINISHED,
        t1,
        t2,
        0,
    )
    assert pull.launched == T0 and pull.last_status_update == t2
    assert pre.status is TaskStatus.LOST and pre.ended is None and pre.agent_id == "agent-1"
    assert (main.status, main.started, main.agent_id) == (TaskStatus.RUNNING, t1, "agent-2")


def test_running_executions_carry_what_a_restart_needs(store: SqlStore) -> None:
    job_id, exe_id = running_job(store)
    (running,) = store.executions.running()
    assert running.id == exe_id and running.job_id == job_id
    assert running.status is ExecutionStatus.RUNNING and running.ended is None
    assert running.node_id is not None and running.agent_id == "agent-1"
    assert running.priority == 9 and running.exe_num == 1 and running.started == T0
    assert running.resources.cpus == 1.0 and running.environment == (("X", "y"),)
    assert store.executions.get(exe_id) == running
    assert store.executions.for_job(job_id) == [running]


def test_cancel_requested_lists_running_executions_of_jobs_asked_to_cancel(store: SqlStore) -> None:
    first_job, first_exe = running_job(store)
    type_id = store.jobs.get(first_job).job_type_id  # type: ignore[union-attr]
    second_job = store.jobs.submit(JobSubmission(type_id), when=T0).job.id
    start(store, second_job)
    assert store.executions.cancel_requested() == []
    store.jobs.cancel(first_job, when=T0)
    assert store.executions.cancel_requested() == [first_exe]
    store.executions.finish(first_exe, status=ExecutionStatus.CANCELED, when=LATER)
    assert store.executions.cancel_requested() == []
