"""Failure injection: make chosen statements fail, as a crash or a flaky database would."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg.errors
from sqlalchemy import Engine, event


class InjectedCrash(RuntimeError):
    """Stands for the process dying mid-transaction: not a database error, never retried."""


def transient_error(engine: Engine) -> Exception:
    """A driver error the store must treat as transient, for this engine's database."""
    if engine.dialect.name == "sqlite":
        return sqlite3.OperationalError("database is locked")
    return psycopg.errors.SerializationFailure("could not serialize access")


@dataclass(slots=True)
class Fault:
    hits: int = 0


@contextmanager
def failing(
    engine: Engine,
    matches: Callable[[str], bool],
    error: Callable[[], BaseException],
    times: int | None = None,
) -> Iterator[Fault]:
    """Statements for which `matches(sql)` holds raise `error()`, the first `times` times
    (always when None)."""
    fault = Fault()

    def before(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if matches(statement) and (times is None or fault.hits < times):
            fault.hits += 1
            raise error()

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield fault
    finally:
        event.remove(engine, "before_cursor_execute", before)


def statement_starts(prefix: str) -> Callable[[str], bool]:
    return lambda sql: sql.lstrip().upper().startswith(prefix.upper())
