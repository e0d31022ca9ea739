"""Fixtures of the store suite: one SQL store per test on SQLite (a temporary file) and on
PostgreSQL (a freshly created schema, dropped afterwards), and port harnesses that put the
in-memory store beside them for the contract tests.

PostgreSQL comes from `LOADMASTER_TEST_DATABASE_URL`; when it cannot be reached its tests are
skipped, unless `LOADMASTER_REQUIRE_POSTGRES=1`, which makes them fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from tests.store.harness import MemoryHarness, PortHarness, SqlHarness

from loadmaster.store.sql import SqlStore

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


@dataclass(slots=True, frozen=True)
class Target:
    """Where a test's database is: enough to open more stores on it, or from a subprocess."""

    backend: str
    url: str
    schema: str | None

    def open(self, **options: Any) -> SqlStore:
        return SqlStore.open(self.url, schema=self.schema, **options)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    url = os.environ.get("LOADMASTER_TEST_DATABASE_URL", DEFAULT_PG_URL)
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        reason = f"PostgreSQL at {engine.url.render_as_string()} is unreachable: {error}"
        if os.environ.get("LOADMASTER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (LOADMASTER_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    yield engine
    engine.dispose()


def _pg_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"lm_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield Target("postgresql", admin.url.render_as_string(hide_password=False), schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        yield Target("sqlite", f"sqlite:///{tmp_path / 'store.db'}", None)
    else:
        yield from _pg_target(request)


@pytest.fixture
def pg_target(request: pytest.FixtureRequest) -> Iterator[Target]:
    yield from _pg_target(request)


@pytest.fixture
def sqlite_target(tmp_path: Path) -> Target:
    return Target("sqlite", f"sqlite:///{tmp_path / 'store.db'}", None)


@pytest.fixture
def open_store(target: Target) -> Iterator[Callable[..., SqlStore]]:
    """Opens stores on this test's database and closes them all afterwards."""
    opened: list[SqlStore] = []

    def factory(**options: Any) -> SqlStore:
        store = target.open(**options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[..., SqlStore]) -> SqlStore:
    return open_store()


@pytest.fixture(params=("memory", *BACKENDS))
def port(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PortHarness]:
    """The core's store port, on every adapter."""
    if request.param == "memory":
        yield MemoryHarness()
        return
    if request.param == "sqlite":
        targets: Iterator[Target] = iter([Target("sqlite", f"sqlite:///{tmp_path / 'p.db'}", None)])
    else:
        targets = _pg_target(request)
    for where in targets:
        sql = where.open()
        try:
            yield SqlHarness(sql)
        finally:
            sql.close()
