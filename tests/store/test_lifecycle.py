"""Job lifecycles driven at random (hypothesis stateful): whatever the order of submits,
cycles, finishes, cancels and requeues, the store agrees with a model of the rules and the
crash invariant holds after every step."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import delete
from tests.store.conftest import Target
from tests.store.harness import T0

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.queue import QueueMode
from loadmaster.scheduling.ports import Placement, QueueQuery
from loadmaster.store.records import (
    CancelOutcome,
    JobStatus,
    JobSubmission,
    JobTypeSpec,
    NodeSighting,
)
from loadmaster.store.schema import queue
from loadmaster.store.sql import SqlStore

MAX_TRIES = 2


class Lifecycles(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp())
        self.store = SqlStore.open(f"sqlite:///{self.folder / 'life.db'}")
        self.type_id = self.store.job_types.create(
            JobTypeSpec("life", max_tries=MAX_TRIES), when=T0
        ).id
        self.node_id = self.store.nodes.upsert([NodeSighting("n", "a")], when=T0)[0].id
        self.status: dict[int, JobStatus] = {}
        self.tries: dict[int, int] = {}
        self.max_tries: dict[int, int] = {}
        self.cancel_requested: set[int] = set()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _with(self, *statuses: JobStatus) -> list[int]:
        return sorted(j for j, s in self.status.items() if s in statuses)

    @rule(priorities=st.lists(st.integers(0, 3), min_size=1, max_size=4))
    def submit(self, priorities: list[int]) -> None:
        submissions = [JobSubmission(self.type_id, priority=p) for p in priorities]
        for result in self.store.jobs.submit_many(submissions, when=T0):
            self.status[result.job.id] = JobStatus.QUEUED
            self.tries[result.job.id] = 1
            self.max_tries[result.job.id] = MAX_TRIES

    @rule(count=st.integers(0, 5), mode=st.sampled_from([QueueMode.FIFO, QueueMode.LIFO]))
    def cycle(self, count: int, mode: QueueMode) -> None:
        entries = list(self.store.fetch_queue(QueueQuery(mode, count)))
        placements = [Placement(e, self.node_id, "a", e.resources) for e in entries]
        mapping = self.store.commit_cycle(placements, [], T0)
        assert set(mapping) == {e.id for e in entries}
        for entry in entries:
            self.status[entry.job_id] = JobStatus.RUNNING

    @precondition(lambda self: bool(self._with(JobStatus.RUNNING)))
    @rule(
        data=st.data(),
        status=st.sampled_from(
            [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELED]
        ),
        requeue=st.booleans(),
    )
    def finish(self, data: st.DataObject, status: ExecutionStatus, requeue: bool) -> None:
        running = {exe.job_id: exe for exe in self.store.executions.running()}
        job_id = data.draw(st.sampled_from(self._with(JobStatus.RUNNING)))
        result = self.store.executions.finish(
            running[job_id].id, status=status, when=T0, requeue=requeue
        )
        retry = (
            status is ExecutionStatus.FAILED
            and requeue
            and job_id not in self.cancel_requested
            and self.tries[job_id] < self.max_tries[job_id]
        )
        if retry:
            expected = JobStatus.QUEUED
            self.tries[job_id] += 1
        elif status is ExecutionStatus.COMPLETED:
            expected = JobStatus.COMPLETED
        elif status is ExecutionStatus.CANCELED or job_id in self.cancel_requested:
            expected = JobStatus.CANCELED
        else:
            expected = JobStatus.FAILED
        assert result.job.status is expected
        self.status[job_id] = expected
        self.cancel_requested.discard(job_id)

    @precondition(lambda self: bool(self.status))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.status)))
        result = self.store.jobs.cancel(job_id, when=T0)
        before = self.status[job_id]
        if before is JobStatus.QUEUED:
            assert result.outcome is CancelOutcome.CANCELED
            self.status[job_id] = JobStatus.CANCELED
        elif before is JobStatus.RUNNING:
            assert result.outcome is CancelOutcome.KILL_REQUESTED
            self.cancel_requested.add(job_id)
        else:
            assert result.outcome is CancelOutcome.ALREADY_ENDED

    @precondition(lambda self: bool(self._with(JobStatus.FAILED, JobStatus.CANCELED)))
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self._with(JobStatus.FAILED, JobStatus.CANCELED)))
        job = self.store.jobs.requeue(job_id, when=T0)
        assert job.status is JobStatus.QUEUED
        self.status[job_id] = JobStatus.QUEUED
        self.max_tries[job_id] = max(self.max_tries[job_id], self.tries[job_id] + MAX_TRIES)
        self.tries[job_id] += 1

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        assert self.store.invariant_violations() == []
        stored = {j.id: j.status for j in self.store.jobs.search(limit=1000).jobs}
        assert stored == self.status
        assert self.store.count_queue() == len(self._with(JobStatus.QUEUED))


Lifecycles.TestCase.settings = settings(max_examples=20, stateful_step_count=20, deadline=None)
test_lifecycles = Lifecycles.TestCase


def test_the_invariant_check_sees_a_broken_job(sqlite_target: Target) -> None:
    """The checker itself must not be vacuous: a queued job without its entry is reported."""
    store = sqlite_target.open()
    try:
        type_id = store.job_types.create(JobTypeSpec("t"), when=T0).id
        job = store.jobs.submit(JobSubmission(type_id), when=T0).job
        assert store.invariant_violations() == []
        with store.engine.begin() as connection:
            connection.execute(delete(queue))
        assert store.invariant_violations() == [
            f"job {job.id} is QUEUED with 0 queue entries and 0 executions not ended"
        ]
    finally:
        store.close()
