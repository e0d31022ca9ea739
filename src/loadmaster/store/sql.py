"""The durable store: the core's `SchedulingStore` port plus the service's repositories, on
SQLite (the embedded default) or PostgreSQL, with the same code for both.

Crash invariant: a crash at any instant leaves every job either queued (exactly one queue
entry), or running (exactly one execution that has not ended), or ended — never between. Each
repository method is a single transaction that moves jobs between these states as a whole;
`invariant_violations()` checks it (see `store.invariant`).

Transient database failures are retried under the store's `RetryPolicy`; once the tries are
spent they surface as `StoreUnavailable`, and nothing was changed. Everything else — invalid
input (`ValueError` naming the field), integrity errors — surfaces at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from loadmaster.model.queue import QueueEntry
from loadmaster.scheduling.ports import Placement, QueueQuery, SchedulingStore
from loadmaster.store.database import DEFAULT_BUSY_TIMEOUT_MS, Database, create_store_engine
from loadmaster.store.events import EventRepository
from loadmaster.store.executions import ExecutionRepository
from loadmaster.store.invariant import invariant_violations
from loadmaster.store.job_types import JobTypeRepository
from loadmaster.store.jobs import JobRepository
from loadmaster.store.migrate import upgrade_to_head
from loadmaster.store.nodes import NodeRepository
from loadmaster.store.queue import QueueRepository
from loadmaster.store.retry import Retrier, RetryPolicy
from loadmaster.store.scheduler_config import ConfigRepository


class SqlStore:
    """Open with `SqlStore.open(url)`; one instance per process, shared by its threads."""

    __slots__ = (
        "_db",
        "config",
        "events",
        "executions",
        "job_types",
        "jobs",
        "nodes",
        "queue",
    )

    def __init__(self, db: Database) -> None:
        self._db = db
        self.job_types = JobTypeRepository(db)
        self.jobs = JobRepository(db)
        self.queue = QueueRepository(db)
        self.executions = ExecutionRepository(db)
        self.nodes = NodeRepository(db)
        self.config = ConfigRepository(db)
        self.events = EventRepository(db)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        schema: str | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        migrate: bool = True,
    ) -> SqlStore:
        """`sqlite:///path.db` or `postgresql+psycopg://user@host/db`; `schema` (PostgreSQL
        only) puts every table in that schema, created if missing. The schema is brought up
        to date before the store is returned."""
        engine = create_store_engine(url, schema=schema, busy_timeout_ms=busy_timeout_ms)
        retrier = Retrier(policy=retry or RetryPolicy(), sleep=sleep, rng=rng or random.Random())
        db = Database(engine, retrier)
        try:
            if migrate:
                upgrade_to_head(db, schema)
        except BaseException:
            engine.dispose()
            raise
        return cls(db)

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the core's port ----------------------------------------------------------------------
    def fetch_queue(self, query: QueueQuery) -> Sequence[QueueEntry]:
        return self.queue.fetch(query)

    def count_queue(self) -> int:
        return self.queue.count()

    def commit_cycle(
        self, placements: Sequence[Placement], canceled: Sequence[QueueEntry], when: datetime
    ) -> Mapping[int, int]:
        return self.queue.commit_cycle(placements, canceled, when)

    def record_unmet_resources(self, changes: Mapping[int, str | None]) -> None:
        self.queue.record_unmet_resources(changes)

    # -- checks -------------------------------------------------------------------------------
    def invariant_violations(self, limit: int = 100) -> list[str]:
        return self._db.read(lambda c: invariant_violations(c, limit))


if TYPE_CHECKING:  # mypy proves the store satisfies the core's port

    def _implements_the_port(store: SqlStore) -> SchedulingStore:
        return store
