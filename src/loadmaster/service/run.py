"""`loadmaster run WORKLOAD`: an embedded scheduler for one workload, start to finish.

It starts the same service `loadmaster serve` runs — SQLite (in a temporary directory unless
`--db` is given) and local agents running real processes — submits the workload, shows a
live progress bar, and ends with a summary per job type. The exit status is 1 when any job
failed, so scripts can rely on it.
"""

from __future__ import annotations

import signal
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadmaster.model.job_types import JobType
from loadmaster.service.backends import build_backend
from loadmaster.service.config import Config, parse_config
from loadmaster.service.logs import configure_logging
from loadmaster.service.scheduler import SchedulerService, utc_now
from loadmaster.service.submission import known_job_types, submit_workload
from loadmaster.service.workload import Workload, load_workload
from loadmaster.store.records import JobRecord, JobStatus
from loadmaster.store.sql import SqlStore


@dataclass(slots=True, frozen=True)
class RunOptions:
    workload: Path
    db_url: str | None = None
    data_dir: Path | None = None
    cycle_seconds: float = 0.25
    timeout_seconds: float | None = None
    quiet: bool = False
    engine: str = "fast"


@dataclass(slots=True, frozen=True)
class TypeSummary:
    name: str
    jobs: int
    succeeded: int
    failed: int
    canceled: int
    mean_wait_seconds: float | None
    mean_run_seconds: float | None


def summarize(jobs: list[JobRecord], types: dict[int, JobType]) -> list[TypeSummary]:
    by_type: dict[int, list[JobRecord]] = {}
    for job in jobs:
        by_type.setdefault(job.job_type_id, []).append(job)
    out = []
    for type_id, group in sorted(by_type.items()):
        waits = [(j.started - j.created).total_seconds() for j in group if j.started]
        runs = [(j.ended - j.started).total_seconds() for j in group if j.started and j.ended]
        job_type = types.get(type_id)
        out.append(
            TypeSummary(
                name=f"{job_type.name}:{job_type.version}" if job_type else str(type_id),
                jobs=len(group),
                succeeded=sum(1 for j in group if j.status is JobStatus.COMPLETED),
                failed=sum(1 for j in group if j.status is JobStatus.FAILED),
                canceled=sum(1 for j in group if j.status is JobStatus.CANCELED),
                mean_wait_seconds=statistics.fmean(waits) if waits else None,
                mean_run_seconds=statistics.fmean(runs) if runs else None,
            )
        )
    return out


def summary_table(rows: list[TypeSummary]) -> Table:
    table = Table(title="Summary", title_justify="left")
    for column in ("JOB TYPE", "JOBS", "SUCCEEDED", "FAILED", "CANCELED", "MEAN WAIT", "MEAN RUN"):
        table.add_column(column, justify="left" if column == "JOB TYPE" else "right")
    for row in rows:
        table.add_row(
            row.name,
            str(row.jobs),
            str(row.succeeded),
            str(row.failed),
            str(row.canceled),
            _seconds(row.mean_wait_seconds),
            _seconds(row.mean_run_seconds),
        )
    return table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _jobs(store: SqlStore, ids: set[int]) -> list[JobRecord]:
    """Our jobs, newest first, paging until every id is found."""
    found: list[JobRecord] = []
    before: int | None = None
    lowest = min(ids)
    while True:
        page = store.jobs.search(limit=1000, before_id=before)
        found.extend(j for j in page.jobs if j.id in ids)
        if page.next_before_id is None or page.next_before_id <= lowest:
            return found
        before = page.next_before_id


def run_config(options: RunOptions, data_dir: Path) -> Config:
    return parse_config(
        {
            "store": {"url": options.db_url},
            "scheduler": {
                "data_dir": str(data_dir),
                "cycle_seconds": options.cycle_seconds,
                "sync_seconds": 1.0,
                "on_shutdown": "kill",
                "engine": options.engine,
            },
            "backend": {"local": {"kill_grace_seconds": 2.0}},
        },
        "run",
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_workload(options: RunOptions, console: Console) -> int:
    """Validate, submit, drive to the end; 0 when every job succeeded, 1 otherwise."""
    with tempfile.TemporaryDirectory(prefix="loadmaster-run-") as tmp:
        data_dir = options.data_dir or Path(tmp)
        config = run_config(options, data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        store = SqlStore.open(config.store_url(), schema=config.store.pg_schema)
        try:
            workload = load_workload(options.workload, known_job_types(store))
            return _drive(options, config, store, workload, console)
        finally:
            store.close()


def _drive(
    options: RunOptions, config: Config, store: SqlStore, workload: Workload, console: Console
) -> int:
    logger = configure_logging("WARNING" if not options.quiet else "ERROR")
    service: SchedulerService | None = None
    parts = build_backend(
        config, lambda e: service.cluster_id_of(e) if service else None, store.config
    )
    service = SchedulerService(
        config, store, parts.backend, node_task_factory=parts.node_task_factory, logger=logger
    )
    service.start()
    submitted = submit_workload(store, workload, utc_now())
    ids = set(submitted.job_ids)
    stop = threading.Event()
    started = time.monotonic()
    failed = False
    with _stop_on_signals(stop), _progress(console, options.quiet, len(ids)) as progress:
        task = progress.add_task(
            "jobs", total=len(ids), queued=len(ids), running=0, done=0, failed=0
        )
        last_poll = 0.0
        try:
            while not stop.is_set():
                turn = time.monotonic()
                service.step()
                if turn - last_poll >= 0.5:
                    last_poll = turn
                    counts = Counter(j.status for j in _jobs(store, ids))
                    ended = (
                        counts[JobStatus.COMPLETED]
                        + counts[JobStatus.FAILED]
                        + counts[JobStatus.CANCELED]
                    )
                    progress.update(
                        task,
                        completed=ended,
                        queued=counts[JobStatus.QUEUED],
                        running=counts[JobStatus.RUNNING],
                        done=counts[JobStatus.COMPLETED],
                        failed=counts[JobStatus.FAILED] + counts[JobStatus.CANCELED],
                    )
                    if ended == len(ids):
                        break
                if options.timeout_seconds and time.monotonic() - started > options.timeout_seconds:
                    console.print("[red]timed out[/red] before every job ended")
                    failed = True
                    break
                time.sleep(max(options.cycle_seconds - (time.monotonic() - turn), 0.0))
        finally:
            service.shutdown(kill_tasks=True)
    jobs = _jobs(store, ids)
    rows = summarize(jobs, {jt.id: jt for jt in store.job_types.all()})
    console.print(summary_table(rows))
    elapsed = time.monotonic() - started
    bad = sum(r.failed + r.canceled for r in rows)
    unfinished = sum(1 for j in jobs if not j.status.has_ended)
    console.print(
        f"{len(jobs)} jobs in {elapsed:.1f} s: {bad} failed or canceled, {unfinished} unfinished"
    )
    return 1 if failed or bad or unfinished or stop.is_set() else 0


@contextmanager
def _progress(console: Console, quiet: bool, total: int) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn(
            "queued {task.fields[queued]} · running {task.fields[running]} · "
            "finished {task.fields[done]} · failed {task.fields[failed]}"
        ),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )
    with progress:
        yield progress
