"""How much memory the scheduler service needs with a large cluster and a large queue.

    python -m benchmarks.service_memory --nodes 10000 --queued 1000000 [--db sqlite|postgresql]

For each configuration (the scheduler's `queue_limit` at its default, then a large one; see
`--queue-limits`) a fresh Python process builds the service the way `loadmaster serve` does
(configuration, store, the daemon's node-task factory, `SchedulerService`, `ServiceMonitor`)
over a simulated cluster backend of `--nodes` agents, starts it (startup and recovery), has the
queue filled with `--queued` jobs by the store's own batch submit, and runs `--steps` turns of
the daemon's loop. It reports the process's resident set size (RSS) after each phase, the peak
(`getrusage` ru_maxrss), and each turn's wall and CPU time.

Why one process per configuration: ru_maxrss is a high-water mark that never comes down, so
configurations measured in one process would hide each other's peaks. Why the queue is filled
by a separate process (as `loadmaster submit` or another API client would): the fill's own
transient memory (batches of submissions and their SQL parameters) is not the service's, and
would otherwise set the peak of a service that never holds the queue. That process's peak is
shown beside the service's.

The store is a SQLite file in a temporary directory, or a throwaway schema of the PostgreSQL
database named by `--url` (default `LOADMASTER_TEST_DATABASE_URL`, else a local server),
dropped afterwards; both come from `benchmarks.store_bench`, as does the fill (20 job types of
1 cpu / 512 MiB, priorities 0-9). Jobs' `main` steps run for an hour of the simulated cluster's
time and every other task ends at once, so placed work accumulates from turn to turn as it
would in a busy cluster. `--trace` adds, per configuration, a run under tracemalloc that lists
the largest allocation sites still alive after the last turn (its RSS is not reported:
tracing costs memory of its own).

Progress goes to stderr; the tables go to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.tables import text_table

if TYPE_CHECKING:
    from loadmaster.cluster.protocol import AgentInfo
    from loadmaster.model.tasks import Task
    from loadmaster.store.sql import SqlStore

MIB = 1024 * 1024
GIB = 1024 * MIB
BUDGET_BYTES = 2 * GIB
MAIN_SECONDS = 3600.0  # how long a job's main step runs on the simulated cluster
# Node models of the simulated cluster, used in turn (cpus, mem MiB, disk MiB, gpus).
NODE_MODELS: tuple[tuple[float, float, float, float], ...] = (
    (16.0, 65536.0, 500_000.0, 0.0),
    (32.0, 131072.0, 1_000_000.0, 0.0),
    (64.0, 262144.0, 2_000_000.0, 4.0),
)
TRACE_TOP = 15


@dataclass(slots=True, frozen=True)
class Options:
    """What to measure; one process per entry of `queue_limits` (None: the stored default)."""

    nodes: int = 10_000
    queued: int = 1_000_000
    db: str = "sqlite"
    url: str | None = None
    queue_limits: tuple[int | None, ...] = (None, 10_000)
    steps: int = 6
    engine: str = "fast"
    batch: int = 20_000
    seed: int = 1
    trace: bool = False
    keep: bool = False


@dataclass(slots=True)
class StepFigure:
    step: int
    wall_seconds: float  # the whole turn: the service's step and the monitor's bookkeeping
    service_seconds: float  # `SchedulerService.step` alone
    cpu_seconds: float
    rss_bytes: int
    scheduled: int
    tasks_launched: int
    running_executions: int


@dataclass(slots=True)
class ConfigResult:
    """The figures of one configuration, measured in its own process."""

    label: str
    queue_limit: int
    traced: bool
    rss_imports_bytes: int
    rss_startup_bytes: int
    rss_after_fill_bytes: int
    peak_rss_bytes: int
    peak_hwm_bytes: int | None  # VmHWM where /proc has it, a cross-check of ru_maxrss
    startup_seconds: float
    fill_seconds: float
    fill_peak_rss_bytes: int
    steps: list[StepFigure] = field(default_factory=list)
    queue_left: int = 0
    nodes_known: int = 0
    traced_peak_bytes: int = 0
    trace_top: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        default = " (default)" if self.label == "default" else ""
        return f"queue_limit {self.queue_limit:,}{default}"

    @property
    def scheduled(self) -> int:
        return sum(s.scheduled for s in self.steps)

    @staticmethod
    def from_json(doc: dict[str, Any]) -> ConfigResult:
        steps = [StepFigure(**s) for s in doc.pop("steps")]
        return ConfigResult(**doc, steps=steps)


# -- memory readings ---------------------------------------------------------------------------
def peak_rss_bytes() -> int:
    """ru_maxrss of this process: KiB on Linux, bytes on macOS."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _proc_status(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    """The resident set now; where /proc is missing, the peak is the best available bound."""
    found = _proc_status("VmRSS")
    return found if found is not None else peak_rss_bytes()


def mib(value: int) -> str:
    return f"{value / MIB:,.0f} MiB"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the orchestrating process -----------------------------------------------------------------
def run(options: Options) -> list[ConfigResult]:
    """Measure every configuration, each in a fresh process (with `trace`, a traced run after
    each plain one); the entry point the command line and the tests share."""
    results: list[ConfigResult] = []
    with tempfile.TemporaryDirectory(prefix="loadmaster-svcmem-") as folder:
        for index, limit in enumerate(options.queue_limits):
            for traced in (False, True) if options.trace else (False,):
                name = f"{index}-{int(traced)}"
                spec = {**asdict(options), "queue_limit": limit, "traced": traced}
                spec_path = Path(folder) / f"spec-{name}.json"
                result_path = Path(folder) / f"result-{name}.json"
                spec_path.write_text(json.dumps(spec))
                _run_module("--child", str(spec_path), "--result", str(result_path))
                results.append(ConfigResult.from_json(json.loads(result_path.read_text())))
    return results


def _run_module(*args: str) -> None:
    """This module in a new interpreter, importable from the directory that holds
    `benchmarks/` whatever the caller's working directory; its stdout goes to our stderr."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}
    command = [sys.executable, "-m", "benchmarks.service_memory", *args]
    subprocess.run(command, check=True, stdout=_stderr_fd(), env=env)


def _stderr_fd() -> int:
    """Where progress goes; a replaced `sys.stderr` (a test's capture) may have no descriptor."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return 2


# -- the measured process ----------------------------------------------------------------------
@dataclass(slots=True)
class WallClock:
    """The simulated cluster reads the same clock as the service: real time, as in `serve`."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def _agents(nodes: int) -> list[AgentInfo]:
    from loadmaster.cluster.protocol import AgentInfo
    from loadmaster.resources import Resources

    agents = []
    for i in range(nodes):
        cpus, mem, disk, gpus = NODE_MODELS[i % len(NODE_MODELS)]
        total = Resources.of(cpus=cpus, mem=mem, disk=disk, gpus=gpus)
        agents.append(AgentInfo(f"agent-{i}", f"node-{i:05d}", total))
    return agents


def _main_runs_long(task: Task) -> float | None:
    """A job's main step runs for an hour; pull, pre, post and node tasks end at once."""
    return MAIN_SECONDS if task.kind == "main" else None


def _schema_of(store: SqlStore) -> str | None:
    """The PostgreSQL schema the store's connections use (None on SQLite): the fill process
    must write to the same one."""
    if store.dialect != "postgresql":
        return None
    from sqlalchemy import text

    with store.engine.connect() as connection:
        found = connection.execute(text("SELECT current_schema()")).scalar()
    return str(found) if found is not None else None


def measure(spec: dict[str, Any]) -> ConfigResult:
    """One configuration, start to end, in this (fresh) process."""
    traced = bool(spec["traced"])
    if traced:
        tracemalloc.start()
    # Imported here, not at the top, so that the orchestrating process stays small: a child
    # started by vfork and exec inherits its parent's high-water mark in ru_maxrss.
    from benchmarks.store_bench import open_target
    from loadmaster.api.monitor import ServiceMonitor
    from loadmaster.cluster.simulated import SimulatedCluster
    from loadmaster.service.backends import build_backend
    from loadmaster.service.config import parse_config
    from loadmaster.service.logs import configure_logging
    from loadmaster.service.scheduler import SchedulerService

    limit: int | None = spec["queue_limit"]
    label = "default" if limit is None else f"{limit:,}"
    tag = f"queue_limit {label}"
    rss_imports = current_rss_bytes()
    with contextlib.redirect_stdout(sys.stderr):
        store, cleanup = open_target(spec["db"], spec["url"], spec["keep"])
    data_dir = tempfile.TemporaryDirectory(prefix="loadmaster-svcmem-data-")
    try:
        url = store.engine.url.render_as_string(hide_password=False)
        schema = _schema_of(store)
        scheduler: dict[str, Any] = {"data_dir": data_dir.name, "engine": spec["engine"]}
        if limit is not None:
            scheduler["queue_limit"] = limit
        config = parse_config({"store": {"url": url, "pg_schema": schema}, "scheduler": scheduler})
        # As `serve_forever` builds it, with the simulated cluster in place of the backend.
        logger = configure_logging("WARNING")
        backend = SimulatedCluster(
            WallClock(),
            _agents(spec["nodes"]),
            _main_runs_long,
            framework=config.scheduler.framework_id,
        )
        service: SchedulerService | None = None
        parts = build_backend(
            config, lambda e: service.cluster_id_of(e) if service else None, store.config
        )
        service = SchedulerService(
            config, store, backend, node_task_factory=parts.node_task_factory, logger=logger
        )
        monitor = ServiceMonitor(service, config.api.status_seconds)
        started = time.perf_counter()
        service.start()
        startup_seconds = time.perf_counter() - started
        rss_startup = current_rss_bytes()
        progress(f"[{tag}] service started in {startup_seconds:.1f} s, RSS {mib(rss_startup)}")

        fill_seconds, fill_peak = _fill_elsewhere(url, schema, spec, Path(data_dir.name))
        service.request_sync()  # new job types: re-read at the next turn, as after an API submit
        rss_fill = current_rss_bytes()
        progress(
            f"[{tag}] queue filled with {spec['queued']:,} jobs in {fill_seconds:.1f} s, "
            f"RSS {mib(rss_fill)}"
        )
        steps = []
        for number in range(1, spec["steps"] + 1):
            wall, cpu = time.perf_counter(), time.process_time()
            # `ServiceMonitor.step`, what the daemon's loop runs each turn, written out so
            # that the service's step and the monitor's bookkeeping are timed apart.
            began = monitor.clock()
            report = service.step()
            service_seconds = time.perf_counter() - wall
            monitor.after_step(report, (monitor.clock() - began).total_seconds())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            figure = StepFigure(
                step=number,
                wall_seconds=wall,
                service_seconds=service_seconds,
                cpu_seconds=cpu,
                rss_bytes=current_rss_bytes(),
                scheduled=len(report.scheduled) if report else 0,
                tasks_launched=report.tasks_launched if report else 0,
                running_executions=len(service.runtime.executions.running()),
            )
            steps.append(figure)
            progress(
                f"[{tag}] step {number}/{spec['steps']}: {wall:.2f} s wall, {cpu:.2f} s cpu, "
                f"scheduled {figure.scheduled:,}, launched {figure.tasks_launched:,} tasks, "
                f"RSS {mib(figure.rss_bytes)}"
            )
        result = ConfigResult(
            label=label,
            queue_limit=service.runtime.settings.queue_limit,
            traced=traced,
            rss_imports_bytes=rss_imports,
            rss_startup_bytes=rss_startup,
            rss_after_fill_bytes=rss_fill,
            peak_rss_bytes=peak_rss_bytes(),
            peak_hwm_bytes=_proc_status("VmHWM"),
            startup_seconds=startup_seconds,
            fill_seconds=fill_seconds,
            fill_peak_rss_bytes=fill_peak,
            steps=steps,
            queue_left=store.count_queue(),
            nodes_known=len(service.runtime.nodes.get_nodes()),
        )
        if traced:
            result.traced_peak_bytes = tracemalloc.get_traced_memory()[1]
            result.trace_top = _top_sites(tracemalloc.take_snapshot())
        service.shutdown(kill_tasks=False)
        return result
    finally:
        cleanup()
        data_dir.cleanup()


def _fill_elsewhere(
    url: str, schema: str | None, spec: dict[str, Any], folder: Path
) -> tuple[float, int]:
    """Fill the queue from another process, through the store's own batch submit. The URL
    goes in a file, not on the command line, where any user could read its password."""
    fill_spec = folder / "fill.json"
    fill_spec.write_text(
        json.dumps(
            {
                "url": url,
                "schema": schema,
                "rows": spec["queued"],
                "batch": spec["batch"],
                "seed": spec["seed"],
            }
        )
    )
    fill_spec.chmod(0o600)
    fill_result = folder / "fill-result.json"
    started = time.perf_counter()
    _run_module("--fill", str(fill_spec), "--result", str(fill_result))
    seconds = time.perf_counter() - started
    return seconds, int(json.loads(fill_result.read_text())["peak"])


def fill_into(spec: dict[str, Any], result: Path) -> None:
    """The filling process: writes its own peak (VmHWM, which unlike ru_maxrss does not
    start from the parent's high-water mark) for the report."""
    from benchmarks.store_bench import analyze, fill
    from loadmaster.store.sql import SqlStore

    store = SqlStore.open(spec["url"], schema=spec["schema"])
    try:
        fill(store, spec["rows"], spec["batch"], spec["seed"])
        analyze(store)
    finally:
        store.close()
    result.write_text(json.dumps({"peak": _proc_status("VmHWM") or peak_rss_bytes()}))


def _top_sites(snapshot: tracemalloc.Snapshot) -> list[str]:
    ignored = (tracemalloc.__file__, "<frozen importlib._bootstrap>", "<unknown>")
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, name) for name in ignored])
    lines = []
    for stat in snapshot.statistics("lineno")[:TRACE_TOP]:
        frame = stat.traceback[0]
        lines.append(
            f"{stat.size / MIB:>9,.1f} MiB  {stat.count:>10,} blocks  "
            f"{_short(frame.filename)}:{frame.lineno}"
        )
    return lines


def _short(filename: str) -> str:
    """Paths from the package or library root, never this machine's directories."""
    for marker in ("loadmaster/", "benchmarks/", "site-packages/", "python3."):
        at = filename.rfind(marker)
        if at >= 0:
            return filename[at:]
    return Path(filename).name


# -- output ------------------------------------------------------------------------------------
def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return text_table([headers, *rows]).splitlines()


def render(options: Options, results: Sequence[ConfigResult]) -> str:
    plain = [r for r in results if not r.traced]
    lines = [
        f"### service memory: {options.nodes:,} nodes / {options.queued:,} queued on "
        f"{options.db}, {options.steps} turns per configuration, engine {options.engine}",
        "",
    ]
    lines += _table(
        [
            "configuration",
            "after imports",
            "after startup",
            "after fill",
            "after last turn",
            "peak RSS",
            "fill process peak",
            "placed",
            "running",
            "still queued",
        ],
        [
            [
                r.name,
                mib(r.rss_imports_bytes),
                mib(r.rss_startup_bytes),
                mib(r.rss_after_fill_bytes),
                mib(r.steps[-1].rss_bytes) if r.steps else "-",
                mib(r.peak_rss_bytes),
                mib(r.fill_peak_rss_bytes),
                f"{r.scheduled:,}",
                f"{r.steps[-1].running_executions:,}" if r.steps else "-",
                f"{r.queue_left:,}",
            ]
            for r in plain
        ],
    )
    lines.append("")
    lines += _table(
        [
            "configuration",
            "turn",
            "wall",
            "service.step",
            "cpu",
            "placed",
            "tasks launched",
            "running",
            "RSS after",
        ],
        [
            [
                r.name,
                str(s.step),
                f"{s.wall_seconds * 1000:,.0f} ms",
                f"{s.service_seconds * 1000:,.0f} ms",
                f"{s.cpu_seconds * 1000:,.0f} ms",
                f"{s.scheduled:,}",
                f"{s.tasks_launched:,}",
                f"{s.running_executions:,}",
                mib(s.rss_bytes),
            ]
            for r in plain
            for s in r.steps
        ],
    )
    lines.append("")
    for r in plain:
        verdict = "under" if r.peak_rss_bytes < BUDGET_BYTES else "OVER"
        lines.append(
            f"{r.name}: peak {mib(r.peak_rss_bytes)}, {verdict} the 2 GiB budget "
            f"(startup {r.startup_seconds:.1f} s, fill {r.fill_seconds:.1f} s"
            + (f", VmHWM {mib(r.peak_hwm_bytes)})" if r.peak_hwm_bytes else ")")
        )
    for r in results:
        if r.traced:
            lines += [
                "",
                f"tracemalloc, {r.name}: traced peak {mib(r.traced_peak_bytes)}; "
                f"largest sites alive after the last turn:",
                *(f"  {site}" for site in r.trace_top),
            ]
    return "\n".join(lines)


def _queue_limits(text: str) -> tuple[int | None, ...]:
    limits: list[int | None] = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        limits.append(None if part == "default" else int(part))
    return tuple(limits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="PostgreSQL URL (postgresql+psycopg://...)")
    parser.add_argument(
        "--queue-limits",
        default="default,10000",
        help="comma-separated queue limits, one process each ('default': the stored default)",
    )
    parser.add_argument("--steps", type=int, default=6, help="turns of the loop per configuration")
    parser.add_argument("--engine", choices=("reference", "fast"), default="fast")
    parser.add_argument("--batch", type=int, default=20_000, help="jobs per submit in the fill")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="add a tracemalloc run per config")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--fill", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        fill_into(json.loads(Path(args.fill).read_text()), Path(args.result))
        return 0
    if args.child:
        result = measure(json.loads(Path(args.child).read_text()))
        Path(args.result).write_text(json.dumps(asdict(result)))
        return 0
    options = Options(
        nodes=args.nodes,
        queued=args.queued,
        db=args.db,
        url=args.url,
        queue_limits=_queue_limits(args.queue_limits),
        steps=args.steps,
        engine=args.engine,
        batch=args.batch,
        seed=args.seed,
        trace=args.trace,
        keep=args.keep,
    )
    progress(f"service memory: {options.nodes:,} nodes, {options.queued:,} queued, {options.db}")
    results = run(options)
    print(render(options, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
