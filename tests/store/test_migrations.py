"""Migrations: applied when the store opens, idempotent, and in step with `schema.py`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from tests.store.conftest import Target
from tests.store.harness import T0

from loadmaster.store.migrate import current_revision, head_revision
from loadmaster.store.records import JobTypeSpec
from loadmaster.store.schema import metadata
from loadmaster.store.sql import SqlStore


def test_open_creates_every_table_at_head(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        assert set(metadata.tables) <= tables
        assert current_revision(connection) == head_revision()
    assert store.config.scheduler().queue_limit == 500


def test_migrations_match_the_schema(store: SqlStore) -> None:
    """A version script that drifted from schema.py would show up here as a difference."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_reopening_is_idempotent_and_keeps_data(open_store: Callable[..., SqlStore]) -> None:
    first = open_store()
    created = first.job_types.create(JobTypeSpec("kept"), when=T0)
    first.close()
    again = open_store()
    also = open_store()
    assert again.job_types.get(created.id) == created
    assert len(also.job_types.all()) == 1
    with again.engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM scheduler")).scalar_one()
    assert rows == 1


def test_opening_without_migrating_leaves_an_empty_database(target: Target) -> None:
    bare = target.open(migrate=False)
    try:
        with bare.engine.connect() as connection:
            assert current_revision(connection) is None
    finally:
        bare.close()


def test_concurrent_first_opens_migrate_once(target: Target) -> None:
    errors: list[BaseException] = []
    stores: list[SqlStore] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            opened = target.open()
            with lock:
                stores.append(opened)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for opened in stores:
        opened.close()
    assert errors == []
    assert len(stores) == 4


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_target: Target) -> None:
    opened = sqlite_target.open(busy_timeout_ms=1234)
    try:
        with opened.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        opened.close()
