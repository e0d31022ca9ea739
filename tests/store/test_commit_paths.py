"""The commit's two bulk paths write the same rows.

On PostgreSQL a cycle's executions are streamed with `COPY … FROM STDIN` and its events are
made from them in SQL; on SQLite both are one `executemany` each. The same cycles on both
databases must leave the same rows — same ids, same values, same event details — and the
COPY must fail the way any other statement does: rolled back, transient errors retried,
everything else raised at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy import exc as sa_exc
from tests.store.conftest import Target
from tests.store.test_atomicity import snapshot

from loadmaster.model.queue import QueueMode
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import Placement, QueueQuery, StoreUnavailable
from loadmaster.store import bulk
from loadmaster.store.database import dump_json
from loadmaster.store.queue import QueueConflict
from loadmaster.store.records import JobSubmission, JobTypeSpec, NodeSighting
from loadmaster.store.retry import RetryPolicy
from loadmaster.store.schema import events, job_executions, jobs, queue
from loadmaster.store.sql import SqlStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)
# Agent ids the JSON of an event detail must escape (quotes, control characters, non-ASCII).
AGENTS = ("agent-0", 'агент "q"\n\x01/\\', "")


def _fill(store: SqlStore) -> list[int]:
    type_ids = [
        store.job_types.create(
            JobTypeSpec(
                f"t{i}",
                resources=Resources.of(cpus=1.0 + i, mem=100.0),
                timeout_seconds=30.0 if i else None,
            ),
            when=T0,
        ).id
        for i in range(3)
    ]
    submissions = [
        JobSubmission(
            type_ids[i % 3],
            priority=i % 4,
            input_file_size_mib=(i % 5) * 1.1,
            environment={"A": str(i)} if i % 7 == 0 else {},
        )
        for i in range(300)
    ]
    store.jobs.submit_many(submissions[:150], when=T0 + timedelta(microseconds=123_457))
    store.jobs.submit_many(submissions[150:], when=T0 + timedelta(seconds=1))
    sightings = [NodeSighting(f"n{i}", f"agent-{i}") for i in range(5)]
    return [n.id for n in store.nodes.upsert(sightings, when=T0)]


def _cycles(store: SqlStore, nodes: list[int]) -> list[dict[int, int]]:
    """Three cycles of placements and canceled entries; a naive `when` on purpose (UTC)."""
    mappings = []
    for cycle in range(3):
        mode = QueueMode.LIFO if cycle == 1 else QueueMode.FIFO
        entries = list(store.fetch_queue(QueueQuery(mode, 80)))
        placements = [
            Placement(
                e,
                nodes[i % len(nodes)],
                AGENTS[i % len(AGENTS)],
                Resources.of(cpus=float(i % 2), mem=5.5, gpus=0.25) if i % 4 else e.resources,
            )
            for i, e in enumerate(entries[:60])
        ]
        when = datetime(2024, 2, 1, 3, 4, 5, 678_901) + timedelta(hours=cycle)
        mappings.append(dict(store.commit_cycle(placements, entries[60:70], when)))
    return mappings


Rows = dict[str, list[tuple[Any, ...]]]


def _rows(store: SqlStore) -> Rows:
    """Every table the commit writes, as values (JSON parsed, times aware)."""
    with store.engine.connect() as connection:
        return {
            table.name: [
                tuple(row) for row in connection.execute(select(table).order_by(table.c.id))
            ]
            for table in (jobs, queue, job_executions, events)
        }


@pytest.fixture
def stores(sqlite_target: Target, pg_target: Target) -> Iterator[tuple[SqlStore, SqlStore]]:
    sqlite, postgresql = sqlite_target.open(), pg_target.open()
    try:
        yield sqlite, postgresql
    finally:
        sqlite.close()
        postgresql.close()


@pytest.mark.parametrize("driver", ["psycopg", "other"])
def test_postgresql_paths_write_the_rows_the_sqlite_path_writes(
    stores: tuple[SqlStore, SqlStore], driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a driver other than psycopg the executions go through `executemany` instead."""
    sqlite, postgresql = stores
    assert (sqlite.dialect, postgresql.dialect) == ("sqlite", "postgresql")
    copies: list[str] = []
    real_copy = bulk.copy_rows

    def copy_rows(connection: Connection, statement: str, rows: Any) -> None:
        copies.append(statement)
        real_copy(connection, statement, rows)

    monkeypatch.setattr(bulk, "copy_rows", copy_rows)
    if driver != "psycopg":
        monkeypatch.setattr(postgresql.engine.dialect, "driver", driver)
    results = []
    for store in stores:
        nodes = _fill(store)
        results.append((_cycles(store, nodes), _rows(store)))
    (sqlite_mappings, sqlite_rows), (pg_mappings, pg_rows) = results
    assert sqlite_mappings == pg_mappings
    assert sum(len(m) for m in pg_mappings) == 180
    for name, rows in sqlite_rows.items():
        assert pg_rows[name] == rows, name
    details = [row[5] for row in pg_rows["events"] if row[4] in ("scheduled", "canceled")]
    assert len(details) == 210
    assert {d["agent_id"] for d in details if "agent_id" in d} == set(AGENTS)
    # On SQLite the detail is text: exactly what `dump_json` makes of the detail's mapping.
    with sqlite.engine.connect() as connection:
        texts = connection.execute(text("SELECT detail FROM events ORDER BY id")).scalars()
        assert all(dump_json(json.loads(t)) == t for t in texts)
    assert postgresql.invariant_violations() == []
    assert sqlite.invariant_violations() == []
    assert len(copies) == (3 if driver == "psycopg" else 0)


def _failing_copy(
    monkeypatch: pytest.MonkeyPatch, error: Callable[[], BaseException], times: int | None
) -> list[int]:
    """The COPY's first row raises `error()`, the first `times` times (always when None)."""
    hits: list[int] = []
    real = psycopg.Copy.write_row

    def write_row(self: psycopg.Copy, row: Any) -> None:
        if times is None or len(hits) < times:
            hits.append(1)
            raise error()
        real(self, row)

    monkeypatch.setattr(psycopg.Copy, "write_row", write_row)
    return hits


def _cycle(store: SqlStore, count: int) -> list[Placement]:
    nodes = _fill(store)
    entries = store.fetch_queue(QueueQuery(QueueMode.FIFO, count))
    return [Placement(e, nodes[0], "agent-0", e.resources) for e in entries]


@pytest.fixture
def pg_store(pg_target: Target) -> Iterator[tuple[SqlStore, list[float]]]:
    sleeps: list[float] = []
    store = pg_target.open(sleep=sleeps.append, retry=RetryPolicy(tries=3, base_seconds=0.01))
    try:
        yield store, sleeps
    finally:
        store.close()


def test_a_transient_failure_during_the_copy_is_retried_and_commits_once(
    pg_store: tuple[SqlStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sleeps = pg_store
    cycle = _cycle(store, 20)
    hits = _failing_copy(
        monkeypatch, lambda: psycopg.errors.SerializationFailure("could not serialize"), 1
    )
    mapping = store.commit_cycle(cycle, [], T0)
    assert len(hits) == 1 and len(sleeps) == 1
    assert sorted(mapping) == sorted(p.entry.id for p in cycle)
    assert sorted(e.id for e in store.executions.running()) == sorted(mapping.values())
    assert store.invariant_violations() == []


def test_a_lost_connection_during_the_copy_is_retried_on_a_new_one(
    pg_store: tuple[SqlStore, list[float]], pg_admin: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the session mid-COPY: the connection is invalidated (not handed out
    again) and the whole transaction runs again on a fresh one."""
    store, sleeps = pg_store
    cycle = _cycle(store, 20)
    killed: list[int] = []
    invalidated: list[object] = []
    real = psycopg.Copy.write_row

    def write_row(self: psycopg.Copy, row: Any) -> None:
        if not killed:
            pid = self.connection.info.backend_pid
            with pg_admin.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killed.append(pid)
        real(self, row)

    monkeypatch.setattr(psycopg.Copy, "write_row", write_row)
    event.listen(store.engine, "invalidate", lambda *args: invalidated.append(args))
    mapping = store.commit_cycle(cycle, [], T0)
    assert len(killed) == 1 and len(sleeps) == 1 and len(invalidated) == 1
    assert len(mapping) == 20 and store.count_queue() == 280
    assert store.invariant_violations() == []


def test_a_copy_that_keeps_failing_becomes_store_unavailable_and_changes_nothing(
    pg_store: tuple[SqlStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sleeps = pg_store
    cycle = _cycle(store, 20)
    before = snapshot(store)
    hits = _failing_copy(
        monkeypatch, lambda: psycopg.errors.SerializationFailure("could not serialize"), None
    )
    with pytest.raises(StoreUnavailable, match="after 3 tries") as raised:
        store.commit_cycle(cycle, [], T0)
    assert not isinstance(raised.value, QueueConflict)
    assert isinstance(raised.value.__cause__, sa_exc.OperationalError)
    assert len(hits) == 3 and len(sleeps) == 2
    monkeypatch.undo()
    assert snapshot(store) == before


def test_a_crash_during_the_copy_undoes_the_cycle(
    pg_store: tuple[SqlStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, sleeps = pg_store
    cycle = _cycle(store, 20)
    before = snapshot(store)
    _failing_copy(monkeypatch, lambda: RuntimeError("the process died"), None)
    with pytest.raises(RuntimeError, match="died"):
        store.commit_cycle(cycle, [], T0)
    assert sleeps == []
    monkeypatch.undo()
    assert snapshot(store) == before
    assert len(store.commit_cycle(cycle, [], T0)) == 20


def test_an_integrity_error_in_the_copy_surfaces_as_sqlalchemys(
    pg_store: tuple[SqlStore, list[float]],
) -> None:
    store, sleeps = pg_store
    cycle = _cycle(store, 3)
    unknown = [Placement(p.entry, 10_000, p.agent_id, p.resources) for p in cycle]
    with pytest.raises(sa_exc.IntegrityError, match=r"(?i)foreign key"):
        store.commit_cycle(unknown, [], T0)
    assert sleeps == [] and store.count_queue() == 300
