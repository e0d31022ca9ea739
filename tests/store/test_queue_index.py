"""The head of a million-entry queue must be read off an index, never sorted: the plans of
the cycle's queue query, with job-type exclusion, walk the index of their queue mode."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from loadmaster.model.queue import QueueMode
from loadmaster.scheduling.ports import QueueQuery
from loadmaster.store.queue import fetch_statement
from loadmaster.store.sql import SqlStore

CASES = [
    ("fifo", QueueQuery(QueueMode.FIFO, 500), "ix_queue_fifo"),
    ("lifo", QueueQuery(QueueMode.LIFO, 500), "ix_queue_lifo"),
    ("fifo excluding", QueueQuery(QueueMode.FIFO, 500, frozenset({1, 2})), "ix_queue_fifo"),
    ("lifo excluding", QueueQuery(QueueMode.LIFO, 10_000, frozenset({3})), "ix_queue_lifo"),
]


def plan(store: SqlStore, query: QueueQuery) -> str:
    sql = str(fetch_statement(query).compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
            return "\n".join(str(row[-1]) for row in rows)
        # An empty table is cheaper to sort than to walk; ask whether the index *can* serve.
        connection.execute(text("SET enable_seqscan = off"))
        connection.execute(text("SET enable_sort = off"))
        connection.execute(text("SET enable_bitmapscan = off"))
        return "\n".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {sql}")))


@pytest.mark.parametrize(("case", "query", "index"), CASES)
def test_queue_head_is_read_off_its_index(
    store: SqlStore, case: str, query: QueueQuery, index: str
) -> None:
    found = plan(store, query)
    assert index in found, f"{case}: {found}"
    assert "TEMP B-TREE" not in found.upper(), f"{case}: {found}"
    assert "Sort" not in found, f"{case}: {found}"
