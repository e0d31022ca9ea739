"""Retrying transient database failures.

A transaction that lost a lock race, hit a serialization failure or a dropped connection has
changed nothing, so running it again from the start is safe; anything else (an integrity
error, a bad statement) would fail the same way again and is raised at once. The unit of
retry is always a whole transaction, never a statement inside one.

Back-off is exponential with full jitter and two bounds, a number of tries and a total sleep,
because the caller is the scheduling loop: the reference slept up to ≈12 s on the scheduling
thread (scheduling spec §12.2 defect 13), which stalls every node. Once the tries are spent
the failure becomes `StoreUnavailable`, which the core answers by resetting the cycle.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from loadmaster.scheduling.ports import StoreUnavailable

T = TypeVar("T")

# PostgreSQL SQLSTATE classes worth another try: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources (too many connections) and
# operator intervention (server shutting down or starting).
_TRANSIENT_SQLSTATE_CLASSES = frozenset(("08", "40", "53", "57"))
_TRANSIENT_SQLSTATES = frozenset(("55P03",))  # lock_not_available
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def is_transient(error: BaseException) -> bool:
    """Whether running the same transaction again could succeed."""
    if isinstance(error, sa_exc.TimeoutError):  # pool exhausted for a moment
        return True
    if not isinstance(error, sa_exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.IntegrityError | sa_exc.ProgrammingError | sa_exc.DataError):
        return False
    if not isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return False
    return _is_transient_driver_error(error.orig)


def _is_transient_driver_error(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
    # A driver-level operational error without a server code is a failure to reach the
    # server or a broken connection.
    return True


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    """At most `tries` attempts; waits grow from `base_seconds`, each capped at `cap_seconds`,
    and all of them together never exceed `max_total_seconds`."""

    tries: int = 5
    base_seconds: float = 0.05
    cap_seconds: float = 1.0
    max_total_seconds: float = 3.0

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise ValueError("tries: must be at least 1")
        if self.base_seconds < 0 or self.cap_seconds < 0 or self.max_total_seconds < 0:
            raise ValueError("retry delays: must be zero or more")

    def ceiling(self, attempt: int) -> float:
        """The largest wait after failed attempt number `attempt` (0-based)."""
        return float(min(self.cap_seconds, self.base_seconds * (2**attempt)))


NO_RETRY = RetryPolicy(tries=1)


@dataclass(slots=True)
class Retrier:
    """Runs a transaction under a policy; the sleeper and the randomness are injectable so
    tests neither sleep nor depend on chance."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    on_retry: Callable[[int, BaseException], None] | None = None

    def run(self, work: Callable[[], T]) -> T:
        slept = 0.0
        last_error: Exception | None = None
        for attempt in range(self.policy.tries):
            try:
                return work()
            except Exception as error:
                if not is_transient(error):
                    raise
                last_error = error
            if attempt + 1 == self.policy.tries:
                break
            delay = self.rng.uniform(0.0, self.policy.ceiling(attempt))
            delay = max(0.0, min(delay, self.policy.max_total_seconds - slept))
            if self.on_retry is not None:
                self.on_retry(attempt + 1, last_error)
            self.sleep(delay)
            slept += delay
        raise StoreUnavailable(
            f"database unavailable after {self.policy.tries} tries: {_describe(last_error)}"
        ) from last_error


def _describe(error: BaseException | None) -> str:
    orig = getattr(error, "orig", None)
    return f"{type(orig or error).__name__}: {orig or error}".strip()
