"""Engines and transactions: the only place that knows SQLite and PostgreSQL behave differently.

SQLite gets WAL (readers never wait for the writer), a busy timeout and foreign keys on every
connection, and SQLAlchemy takes over BEGIN from the sqlite3 module, which otherwise starts
transactions late and so breaks isolation. Write transactions start with `BEGIN IMMEDIATE`:
taking the write lock up front means a lock conflict shows up at BEGIN, where the busy
timeout and a retry handle it, instead of at the first write in the middle of the work,
where SQLite cannot wait for it.

PostgreSQL runs at READ COMMITTED; every repository takes row locks in one order — queue
entry, then job, then execution — so concurrent writers queue up instead of deadlocking (a
deadlock would still be retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from loadmaster.store.retry import Retrier

T = TypeVar("T")

_WRITE = "loadmaster_write"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_BUSY_TIMEOUT_MS = 5000


def dump_json(value: Any) -> str:
    """Most JSON values the store writes are empty lists or objects (workspaces, a job's own
    environment); bulk writes of a million rows spend real time serialising them."""
    if isinstance(value, list | dict) and not value:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value, separators=(",", ":"))


def create_store_engine(
    url: str, *, schema: str | None = None, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ValueError("schema: SQLite databases have no schemas")
        return _sqlite_engine(
            url, busy_timeout_ms, in_memory=parsed.database in (None, "", ":memory:")
        )
    if backend == "postgresql":
        return _postgresql_engine(url, schema)
    raise ValueError(f"url: unsupported database {backend!r}; use sqlite or postgresql+psycopg")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema: {schema!r} must be lowercase letters, digits and underscores")
    return schema


def _sqlite_engine(url: str, busy_timeout_ms: int, *, in_memory: bool) -> Engine:
    if busy_timeout_ms < 0:
        raise ValueError("busy_timeout_ms: must be zero or more")
    options: dict[str, Any] = {}
    if in_memory:  # one shared connection, or every connection would see its own database
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, json_serializer=dump_json, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        writing = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def _postgresql_engine(url: str, schema: str | None) -> Engine:
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-c search_path={check_schema_name(schema)}"
    return create_engine(
        url, pool_pre_ping=True, json_serializer=dump_json, connect_args=connect_args
    )


@dataclass(slots=True)
class Database:
    """An engine plus the retry policy; every repository method is one `read` or `write`."""

    engine: Engine
    retrier: Retrier

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, from the start again on a transient failure;
        `work` must therefore have no effects outside the transaction."""
        return self.retrier.run(lambda: self._transaction(work, writing=True))

    def read(self, work: Callable[[Connection], T]) -> T:
        return self.retrier.run(lambda: self._transaction(work, writing=False))

    def _transaction(self, work: Callable[[Connection], T], *, writing: bool) -> T:
        with self.engine.connect() as connection:
            if writing:
                connection.execution_options(**{_WRITE: True})
            with connection.begin():
                return work(connection)

    def dispose(self) -> None:
        self.engine.dispose()
