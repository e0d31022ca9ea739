"""How the SQL store holds up under a large queue.

    python -m benchmarks.store_bench --rows 1000000 --db sqlite
    python -m benchmarks.store_bench --rows 1000000 --db postgresql [--url URL]

Fills the queue with N jobs through the store's own batch submit (the path the service
uses), then times what a scheduling cycle does against it: reading the head of the queue
(500 and 10,000 entries, FIFO and LIFO, with and without excluded job types), counting it,
and committing a cycle of 10,000 placements. Each figure is the median of several runs.

SQLite runs in a temporary file; PostgreSQL in a throwaway schema of the database named by
`--url` (default: `LOADMASTER_TEST_DATABASE_URL`, else a local server), dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, text

from loadmaster.model.queue import QueueMode
from loadmaster.resources import Resources
from loadmaster.scheduling.ports import Placement, QueueQuery
from loadmaster.store.records import JobSubmission, JobTypeSpec, NodeSighting
from loadmaster.store.sql import SqlStore

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
JOB_TYPES = 20
NODES = 50
START = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(slots=True, frozen=True)
class Figure:
    operation: str
    seconds: list[float]
    rows: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = work()
    return time.perf_counter() - started, count


def fetched(store: SqlStore, query: QueueQuery) -> int:
    return len(store.fetch_queue(query))


def committed(store: SqlStore, cycle: list[Placement], when: datetime) -> int:
    return len(store.commit_cycle(cycle, [], when))


def fill(store: SqlStore, rows: int, batch: int, seed: int) -> tuple[list[int], float]:
    rng = random.Random(seed)
    type_ids = [
        store.job_types.create(
            JobTypeSpec(f"bench-{i}", resources=Resources.of(cpus=1.0, mem=512.0)), when=START
        ).id
        for i in range(JOB_TYPES)
    ]
    started = time.perf_counter()
    done = 0
    while done < rows:
        size = min(batch, rows - done)
        submissions = [
            JobSubmission(rng.choice(type_ids), priority=rng.randint(0, 9)) for _ in range(size)
        ]
        # One `when` per batch: many entries share a queued time, so the id tie-break matters.
        store.jobs.submit_many(submissions, when=START + timedelta(seconds=done // batch))
        done += size
        rate = done / (time.perf_counter() - started)
        end = "\r" if sys.stdout.isatty() else "\n"
        print(f"  filled {done:>10,}/{rows:,} jobs ({rate:,.0f}/s)", end=end, flush=True)
    if sys.stdout.isatty():
        print()
    return type_ids, time.perf_counter() - started


def analyze(store: SqlStore) -> None:
    """Fresh statistics (and on PostgreSQL a vacuumed table, with its visibility map and hint
    bits set), as autovacuum would have left a database that has run for a while."""
    statement = "VACUUM ANALYZE" if store.dialect == "postgresql" else "ANALYZE"
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(statement))


def measure_fetches(store: SqlStore, type_ids: list[int], runs: int) -> list[Figure]:
    some = frozenset(type_ids[: JOB_TYPES // 4])
    most = frozenset(type_ids[1:])  # the index walk skips 19 entries for every one it keeps
    queries = [
        ("fetch top 500 FIFO", QueueQuery(QueueMode.FIFO, 500)),
        ("fetch top 500 LIFO", QueueQuery(QueueMode.LIFO, 500)),
        ("fetch top 10,000 FIFO", QueueQuery(QueueMode.FIFO, 10_000)),
        ("fetch top 10,000 LIFO", QueueQuery(QueueMode.LIFO, 10_000)),
        (
            f"fetch top 500 FIFO, {len(some)}/{JOB_TYPES} types excluded",
            QueueQuery(QueueMode.FIFO, 500, some),
        ),
        (
            f"fetch top 500 FIFO, {len(most)}/{JOB_TYPES} types excluded",
            QueueQuery(QueueMode.FIFO, 500, most),
        ),
    ]
    figures = []
    for name, query in queries:
        store.fetch_queue(query)  # warm the cache: a running scheduler reads this every second
        results = [timed(partial(fetched, store, query)) for _ in range(runs)]
        figures.append(Figure(name, [s for s, _ in results], results[0][1]))
    results = [timed(store.count_queue) for _ in range(runs)]
    figures.append(Figure("count queue", [s for s, _ in results], results[0][1]))
    return figures


def measure_commits(store: SqlStore, sizes: list[int], runs: int) -> list[Figure]:
    sightings = [NodeSighting(f"node-{i}", f"agent-{i}") for i in range(NODES)]
    node_ids = [n.id for n in store.nodes.upsert(sightings, when=START)]
    figures = []
    for size in sizes:
        seconds = []
        for run in range(runs):
            entries = store.fetch_queue(QueueQuery(QueueMode.FIFO, size))
            cycle = [
                Placement(e, node_ids[i % NODES], f"agent-{i % NODES}", e.resources)
                for i, e in enumerate(entries)
            ]
            when = START + timedelta(days=1, seconds=run)
            elapsed, _ = timed(partial(committed, store, cycle, when))
            seconds.append(elapsed)
        figures.append(Figure(f"commit cycle of {size:,} placements", seconds, size))
    return figures


def open_target(db: str, url: str | None, keep: bool) -> tuple[SqlStore, Callable[[], None]]:
    if db == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="loadmaster-bench-"))
        store = SqlStore.open(f"sqlite:///{folder / 'bench.db'}")
        print(f"  database: {folder / 'bench.db'}")

        def cleanup() -> None:
            store.close()
            if not keep:
                for path in folder.iterdir():
                    path.unlink()
                folder.rmdir()

        return store, cleanup
    url = url or os.environ.get("LOADMASTER_TEST_DATABASE_URL", DEFAULT_PG_URL)
    schema = f"lm_bench_{uuid.uuid4().hex[:8]}"
    store = SqlStore.open(url, schema=schema)
    print(f"  database: {store.engine.url.render_as_string()} schema {schema}")

    def drop() -> None:
        store.close()
        if keep:
            return
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return store, drop


def print_table(db: str, rows: int, fill_seconds: float, figures: list[Figure]) -> None:
    print()
    print(
        f"{'rows':>10}  {'database':<10}  {'operation':<40}  {'median':>10}  {'min':>10}  {'max':>10}"
    )
    print(
        f"{rows:>10,}  {db:<10}  {'fill (batch submit), total':<40}  {fill_seconds:>9.1f}s  {'':>10}  {'':>10}"
    )
    for f in figures:
        print(
            f"{rows:>10,}  {db:<10}  {f.operation:<40}  {f.median_ms:>8.1f}ms"
            f"  {min(f.seconds) * 1000:>8.1f}ms  {max(f.seconds) * 1000:>8.1f}ms"
        )


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="PostgreSQL URL (postgresql+psycopg://...)")
    parser.add_argument("--runs", type=int, default=5, help="runs per read figure")
    parser.add_argument("--commit-runs", type=int, default=3)
    parser.add_argument("--placements", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20_000, help="jobs per submit")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if args.rows < (args.placements + 500) * args.commit_runs:
        parser.error("--rows must cover --placements × --commit-runs")
    print(f"store benchmark: {args.rows:,} queued jobs on {args.db} (load average {_load()})")
    store, cleanup = open_target(args.db, args.url, args.keep)
    try:
        type_ids, fill_seconds = fill(store, args.rows, args.batch, args.seed)
        analyze(store)
        figures = measure_fetches(store, type_ids, args.runs)
        sizes = sorted({min(500, args.placements), args.placements})
        figures += measure_commits(store, sizes, args.commit_runs)
        print_table(args.db, args.rows, fill_seconds, figures)
        # The figures are wall-clock times: on a shared machine they move with its load.
        print(f"load average (1, 5, 15 min) at the end: {_load()}")
        violations = store.invariant_violations(limit=5)
        if violations:
            print("invariant violated:", *violations, sep="\n  ")
            return 1
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
