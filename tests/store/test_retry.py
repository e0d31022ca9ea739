"""Retrying transient database errors: what counts as transient, the back-off, and the real
failures it must survive (a SQLite writer holding the lock, a dropped PostgreSQL connection)."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import psycopg.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, exc, text
from tests.store.conftest import Target
from tests.store.harness import T0

from loadmaster.scheduling.ports import StoreUnavailable
from loadmaster.store.records import JobTypeSpec
from loadmaster.store.retry import Retrier, RetryPolicy, is_transient


def wrapped(kind: type[exc.DBAPIError], orig: BaseException, **kw: Any) -> exc.DBAPIError:
    return kind("SELECT 1", {}, orig, **kw)


def sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("case", "error", "transient"),
    [
        (
            "sqlite locked",
            wrapped(exc.OperationalError, sqlite_error("database is locked", 5)),
            True,
        ),
        ("sqlite busy snapshot", wrapped(exc.OperationalError, sqlite_error("locked", 517)), True),
        (
            "sqlite table locked",
            wrapped(exc.OperationalError, sqlite_error("table locked", 6)),
            True,
        ),
        (
            "sqlite locked, no code",
            wrapped(exc.OperationalError, sqlite3.OperationalError("database is locked")),
            True,
        ),
        (
            "sqlite no such table",
            wrapped(exc.OperationalError, sqlite_error("no such table: x", 1)),
            False,
        ),
        (
            "pg serialization",
            wrapped(exc.OperationalError, psycopg.errors.SerializationFailure()),
            True,
        ),
        ("pg deadlock", wrapped(exc.OperationalError, psycopg.errors.DeadlockDetected()), True),
        ("pg admin shutdown", wrapped(exc.OperationalError, psycopg.errors.AdminShutdown()), True),
        (
            "pg too many connections",
            wrapped(exc.OperationalError, psycopg.errors.TooManyConnections()),
            True,
        ),
        (
            "pg cannot connect",
            wrapped(exc.OperationalError, psycopg.OperationalError("refused")),
            True,
        ),
        (
            "pg unique violation",
            wrapped(exc.IntegrityError, psycopg.errors.UniqueViolation()),
            False,
        ),
        ("pg syntax", wrapped(exc.ProgrammingError, psycopg.errors.SyntaxError()), False),
        ("pg division by zero", wrapped(exc.DataError, psycopg.errors.DivisionByZero()), False),
        (
            "dropped connection",
            wrapped(exc.DBAPIError, Exception("eof"), connection_invalidated=True),
            True,
        ),
        ("pool timeout", exc.TimeoutError("pool"), True),
        ("plain value error", ValueError("x"), False),
    ],
)
def test_what_is_transient(case: str, error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient, case


def flaky(failures: int, error: BaseException) -> Callable[[], str]:
    calls = {"n": 0}

    def work() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise error
        return "done"

    return work


LOCKED = wrapped(exc.OperationalError, sqlite_error("database is locked", 5))


def test_succeeds_after_transient_failures() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(tries=5), sleeps.append, random.Random(1))
    assert retrier.run(flaky(3, LOCKED)) == "done"
    assert len(sleeps) == 3


def test_gives_up_as_store_unavailable_after_the_last_try() -> None:
    sleeps: list[float] = []
    retrier = Retrier(RetryPolicy(tries=5), sleeps.append, random.Random(1))
    with pytest.raises(StoreUnavailable, match="after 5 tries: OperationalError") as raised:
        retrier.run(flaky(99, LOCKED))
    assert len(sleeps) == 4
    assert raised.value.__cause__ is LOCKED


def test_never_retries_what_is_not_transient() -> None:
    sleeps: list[float] = []
    duplicate = wrapped(exc.IntegrityError, psycopg.errors.UniqueViolation())
    with pytest.raises(exc.IntegrityError):
        Retrier(RetryPolicy(), sleeps.append).run(flaky(1, duplicate))
    assert sleeps == []


@given(
    tries=st.integers(1, 8),
    base=st.floats(0.0, 2.0),
    cap=st.floats(0.0, 5.0),
    budget=st.floats(0.0, 10.0),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_bounded(tries: int, base: float, cap: float, budget: float, seed: int) -> None:
    """Property: each wait is within its exponential ceiling and all waits fit the budget."""
    policy = RetryPolicy(tries=tries, base_seconds=base, cap_seconds=cap, max_total_seconds=budget)
    sleeps: list[float] = []
    with pytest.raises(StoreUnavailable):
        Retrier(policy, sleeps.append, random.Random(seed)).run(flaky(99, LOCKED))
    assert len(sleeps) == tries - 1
    for attempt, slept in enumerate(sleeps):
        assert 0 <= slept <= policy.ceiling(attempt) <= cap
    assert sum(sleeps) <= budget + 1e-9


def test_default_policy_sleeps_a_few_seconds_at_most() -> None:
    policy = RetryPolicy()
    assert policy.tries == 5
    assert sum(policy.ceiling(k) for k in range(policy.tries - 1)) <= policy.max_total_seconds


def test_sqlite_waits_out_a_writer_that_holds_the_lock(sqlite_target: Target) -> None:
    """Another process holds the write lock; the busy timeout expires, the retry's sleep is
    where the lock is released, and the next try goes through."""
    holder: sqlite3.Connection | None = None
    released: list[float] = []

    def release(seconds: float) -> None:
        released.append(seconds)
        if holder is not None:
            holder.execute("ROLLBACK")

    store = sqlite_target.open(busy_timeout_ms=20, sleep=release)
    holder = sqlite3.connect(sqlite_target.url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        created = store.job_types.create(JobTypeSpec("late"), when=T0)
        assert created.name == "late" and len(released) == 1
    finally:
        holder.close()
        store.close()


def test_sqlite_lock_never_released_is_store_unavailable(sqlite_target: Target) -> None:
    sleeps: list[float] = []
    store = sqlite_target.open(busy_timeout_ms=5, sleep=sleeps.append)
    holder = sqlite3.connect(sqlite_target.url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable, match="database is locked"):
            store.job_types.create(JobTypeSpec("never"), when=T0)
        assert len(sleeps) == 4
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.job_types.all() == []
    store.close()


def test_a_dropped_postgresql_connection_is_retried(pg_target: Target) -> None:
    target = pg_target
    sleeps: list[float] = []
    store = target.open(sleep=sleeps.append)
    admin = create_engine(target.url, isolation_level="AUTOCOMMIT")
    killed = threading.Event()

    def kill_own_backend(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("INSERT INTO job_types") and not killed.is_set():
            killed.set()
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    event.listen(store.engine, "before_cursor_execute", kill_own_backend)
    try:
        created = store.job_types.create(JobTypeSpec("survivor"), when=T0)
    finally:
        event.remove(store.engine, "before_cursor_execute", kill_own_backend)
        admin.dispose()
    assert killed.is_set() and len(sleeps) == 1
    assert [t.name for t in store.job_types.all()] == [created.name]
    store.close()
