"""All or nothing: a failure anywhere inside a transaction leaves the database as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from tests.store.faults import InjectedCrash, failing, statement_starts, transient_error
from tests.store.harness import T0, placement

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import QueueQuery, StoreUnavailable
from loadmaster.store.queue import QueueConflict
from loadmaster.store.records import JobStatus, JobSubmission, JobTypeSpec, NodeSighting
from loadmaster.store.retry import RetryPolicy
from loadmaster.store.schema import events, job_executions, jobs, queue
from loadmaster.store.sql import SqlStore

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(store: SqlStore) -> Snapshot:
    with store.engine.connect() as connection:
        return {
            table.name: [
                tuple(row) for row in connection.execute(select(table).order_by(table.c.id))
            ]
            for table in (jobs, queue, job_executions, events)
        }


def queued(store: SqlStore, count: int) -> tuple[list[QueueEntry], int]:
    spec = JobTypeSpec("t", resources=Resources.of(cpus=1.0, mem=128.0))
    type_id = store.job_types.create(spec, when=T0).id
    store.jobs.submit_many([JobSubmission(type_id, priority=i) for i in range(count)], when=T0)
    node = store.nodes.upsert([NodeSighting("n", "agent-n")], when=T0)[0].id
    return list(store.fetch_queue(QueueQuery(QueueMode.FIFO, 100))), node


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def quick_store(open_store: Callable[..., SqlStore], sleeps: list[float]) -> SqlStore:
    return open_store(sleep=sleeps.append, retry=RetryPolicy(tries=5, base_seconds=0.01))


def executions_exist(store: SqlStore) -> bool:
    with store.engine.connect() as connection:
        return connection.execute(select(job_executions.c.id)).first() is not None


def test_a_crash_after_the_executions_were_written_undoes_the_whole_cycle(
    quick_store: SqlStore,
) -> None:
    entries, node = queued(quick_store, 3)
    before = snapshot(quick_store)
    with (
        failing(quick_store.engine, statement_starts("INSERT INTO events"), InjectedCrash),
        pytest.raises(InjectedCrash),
    ):
        quick_store.commit_cycle([placement(e, node) for e in entries[:2]], [entries[2]], T0)
    assert snapshot(quick_store) == before


def test_a_persistently_failing_database_becomes_store_unavailable(
    quick_store: SqlStore, sleeps: list[float]
) -> None:
    entries, node = queued(quick_store, 2)
    before = snapshot(quick_store)
    error = transient_error(quick_store.engine)
    with (
        failing(quick_store.engine, statement_starts("INSERT INTO events"), lambda: error) as fault,
        pytest.raises(StoreUnavailable, match="after 5 tries"),
    ):
        quick_store.commit_cycle([placement(e, node) for e in entries], [], T0)
    assert fault.hits == 5 and len(sleeps) == 4
    assert snapshot(quick_store) == before


def test_a_transient_failure_is_retried_and_commits_once(
    quick_store: SqlStore, sleeps: list[float]
) -> None:
    entries, node = queued(quick_store, 2)
    error = transient_error(quick_store.engine)
    with failing(quick_store.engine, statement_starts("DELETE FROM queue"), lambda: error, times=2):
        mapping = quick_store.commit_cycle([placement(e, node) for e in entries], [], T0)
    assert set(mapping) == {e.id for e in entries} and len(sleeps) == 2
    assert len(quick_store.executions.running()) == 2
    assert quick_store.invariant_violations() == []


def test_a_commit_whose_acknowledgement_was_lost_is_recognised_on_retry(
    quick_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first COMMIT succeeds but the client sees a transient error; the retry finds its
    own work done and returns the same executions instead of failing or doubling them."""
    entries, node = queued(quick_store, 2)
    dialect = quick_store.engine.dialect
    real_commit = dialect.do_commit
    calls: list[int] = []

    def commit_then_fail(dbapi_connection: Any) -> None:
        real_commit(dbapi_connection)
        calls.append(1)
        if len(calls) == 1 and executions_exist(quick_store):
            raise transient_error(quick_store.engine)

    monkeypatch.setattr(dialect, "do_commit", commit_then_fail)
    mapping = quick_store.commit_cycle([placement(e, node) for e in entries], [], T0)
    monkeypatch.undo()
    running = quick_store.executions.running()
    assert sorted(mapping.values()) == sorted(r.id for r in running) and len(running) == 2
    assert quick_store.invariant_violations() == []


def test_a_placement_canceled_concurrently_fails_the_whole_commit(store: SqlStore) -> None:
    entries, node = queued(store, 3)
    store.jobs.cancel(entries[1].job_id, when=T0)  # after the cycle read the queue
    before = snapshot(store)
    with pytest.raises(QueueConflict, match="no longer queued"):
        store.commit_cycle([placement(e, node) for e in entries], [], T0)
    assert snapshot(store) == before
    assert isinstance(QueueConflict(), StoreUnavailable)
    survivors = [e for e in entries if e.id != entries[1].id]
    assert set(store.commit_cycle([placement(e, node) for e in survivors], [], T0)) == {
        e.id for e in survivors
    }
    assert store.invariant_violations() == []


def test_finish_and_requeue_are_one_transaction(quick_store: SqlStore) -> None:
    entries, node = queued(quick_store, 1)
    (exe_id,) = quick_store.commit_cycle([placement(entries[0], node)], [], T0).values()
    before = snapshot(quick_store)
    with (
        failing(quick_store.engine, statement_starts("INSERT INTO queue"), InjectedCrash),
        pytest.raises(InjectedCrash),
    ):
        quick_store.executions.finish(
            exe_id, status=ExecutionStatus.FAILED, when=T0, error="node-lost", requeue=True
        )
    assert snapshot(quick_store) == before
    job = quick_store.jobs.get(entries[0].job_id)
    assert job is not None and job.status is JobStatus.RUNNING


def test_a_batch_submit_that_fails_midway_queues_nothing(quick_store: SqlStore) -> None:
    spec = JobTypeSpec("t")
    type_id = quick_store.job_types.create(spec, when=T0).id
    before = snapshot(quick_store)
    with (
        failing(quick_store.engine, statement_starts("INSERT INTO queue"), InjectedCrash),
        pytest.raises(InjectedCrash),
    ):
        quick_store.jobs.submit_many([JobSubmission(type_id) for _ in range(50)], when=T0)
    assert snapshot(quick_store) == before


def test_integrity_errors_surface_without_retry(quick_store: SqlStore, sleeps: list[float]) -> None:
    entries, _node = queued(quick_store, 1)
    unknown_node = 10_000  # violates the executions' foreign key to nodes
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        quick_store.commit_cycle([placement(entries[0], unknown_node)], [], T0)
    assert sleeps == []
    assert quick_store.count_queue() == 1
