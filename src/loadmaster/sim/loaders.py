"""Trace loaders: Standard Workload Format (SWF) logs and the Alibaba PAI GPU pod/node CSVs.

Every problem in a file is reported as `TraceError` naming the file, the line and the field,
because a replay of a 40,000-line log is useless if a bad line is silently dropped or turned
into a zero. Jobs the trace says never ran (cancelled before start, never scheduled) are not
errors: they are skipped and counted, and the counts are shown with the results.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from loadmaster.sim.workload import (
    EPOCH,
    NodeSpec,
    TraceJob,
    Workload,
    build_job_types,
    capacity,
    count,
    request,
)

# Priority of a job whose queue the trace does not give, and of every job with `flat`.
DEFAULT_PRIORITY = 100
# Alibaba QoS classes, most important first (lower number runs first).
ALIBABA_QOS_PRIORITY: dict[str, int] = {"Guaranteed": 0, "LS": 1, "Burstable": 2, "BE": 3}
ALIBABA_UNKNOWN_QOS_PRIORITY = 4

SWF_FIELDS: tuple[str, ...] = (
    "job number",
    "submit time",
    "wait time",
    "run time",
    "allocated processors",
    "average cpu time",
    "used memory",
    "requested processors",
    "requested time",
    "requested memory",
    "status",
    "user id",
    "group id",
    "executable number",
    "queue number",
    "partition number",
    "preceding job number",
    "think time",
)
SWF_CANCELLED = 5

ALIBABA_POD_COLUMNS: tuple[str, ...] = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "qos",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
ALIBABA_NODE_COLUMNS: tuple[str, ...] = ("sn", "cpu_milli", "memory_mib", "gpu")


class TraceError(ValueError):
    """A trace file that cannot be replayed as it is, with where and why."""

    def __init__(self, path: Path | str, line: int | None, field: str | None, problem: str):
        self.path = str(path)
        self.line = line
        self.field = field
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")


class PrioritySource(StrEnum):
    """`trace`: from the SWF queue number or the Alibaba QoS class; `flat`: every job the
    same priority, so the queue is plain first-come first-served order."""

    TRACE = "trace"
    FLAT = "flat"


class TraceFormat(StrEnum):
    SWF = "swf"
    ALIBABA = "alibaba"


@dataclass(slots=True, frozen=True)
class ClusterOptions:
    """How to build the cluster of an SWF trace (the log itself only says MaxProcs)."""

    nodes: int | None = None
    cpus_per_node: float | None = None
    mem_per_node_mib: float | None = None
    machines: Path | None = None

    @property
    def is_pooled(self) -> bool:
        return self.nodes is None and self.cpus_per_node is None and self.machines is None


@dataclass(slots=True, frozen=True)
class LoadOptions:
    limit: int | None = None
    priorities: PrioritySource = PrioritySource.TRACE


# -- format detection -------------------------------------------------------------------------
def detect_format(path: Path, explicit: str | None = None) -> TraceFormat:
    if explicit is not None:
        try:
            return TraceFormat(explicit.lower())
        except ValueError:
            raise TraceError(
                path, None, "format", f"unknown format {explicit!r} (swf, alibaba)"
            ) from None
    suffix = path.suffix.lower()
    if suffix == ".swf":
        return TraceFormat.SWF
    if suffix == ".csv":
        return TraceFormat.ALIBABA
    raise TraceError(path, None, "format", "cannot tell the format from the name; use --format")


def find_alibaba_nodes(pods: Path) -> Path | None:
    """The node list next to a pod list: `..._pod_list_...csv` → `..._node_list_*.csv`."""
    if "pod_list" not in pods.name:
        return None
    prefix = pods.name.split("pod_list")[0]
    found = sorted(pods.parent.glob(f"{prefix}node_list*.csv"))
    return found[0] if len(found) == 1 else None


def load_trace(
    path: Path,
    fmt: str | None = None,
    *,
    nodes_file: Path | None = None,
    cluster: ClusterOptions | None = None,
    options: LoadOptions | None = None,
) -> Workload:
    options = options or LoadOptions()
    if not path.is_file():
        raise TraceError(path, None, None, "no such file")
    kind = detect_format(path, fmt)
    if kind is TraceFormat.SWF:
        return load_swf(path, cluster or ClusterOptions(), options)
    if cluster is not None and not cluster.is_pooled:
        raise TraceError(path, None, "cluster", "an Alibaba trace brings its own node list")
    nodes = nodes_file or find_alibaba_nodes(path)
    if nodes is None:
        raise TraceError(
            path, None, "nodes file", "no node list found next to it; use --nodes-file"
        )
    return load_alibaba(path, nodes, options)


# -- SWF --------------------------------------------------------------------------------------
@dataclass(slots=True)
class _SwfHeader:
    lines: list[str]
    values: dict[str, str]
    queues: dict[int, str]
    partitions: dict[int, str]

    def number(self, path: Path, key: str) -> float | None:
        raw = self.values.get(key)
        if raw is None:
            return None
        try:
            return float(raw.split()[0])
        except (ValueError, IndexError):
            raise TraceError(path, None, f"header {key}", f"{raw!r} is not a number") from None


def _parse_header_line(header: _SwfHeader, text: str) -> None:
    body = text[1:].strip()
    if ":" not in body:
        return
    key, _, value = body.partition(":")
    key, value = key.strip(), value.strip()
    if key in ("Queue", "Partition"):
        parts = value.split(None, 1)
        if parts and parts[0].lstrip("-").isdigit():
            name = parts[1].strip() if len(parts) > 1 else ""
            target = header.queues if key == "Queue" else header.partitions
            target[int(parts[0])] = name
        return
    header.values.setdefault(key, value)


def _swf_numbers(path: Path, line_no: int, text: str) -> list[float]:
    parts = text.split()
    if len(parts) != len(SWF_FIELDS):
        raise TraceError(
            path, line_no, None, f"expected {len(SWF_FIELDS)} fields, found {len(parts)}"
        )
    out: list[float] = []
    for index, raw in enumerate(parts):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            name = f"field {index + 1} ({SWF_FIELDS[index]})"
            raise TraceError(path, line_no, name, f"{raw!r} is not a number")
        out.append(value)
    return out


def _read_swf(path: Path) -> tuple[_SwfHeader, Iterator[tuple[int, list[float]]]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TraceError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    header = _SwfHeader([], {}, {}, {})
    rows: list[tuple[int, str]] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith(";"):
            header.lines.append(raw.rstrip())
            _parse_header_line(header, line)
        else:
            rows.append((line_no, line))

    def parsed() -> Iterator[tuple[int, list[float]]]:
        for line_no, line in rows:
            yield line_no, _swf_numbers(path, line_no, line)

    return header, parsed()


def _swf_type_and_priority(
    header: _SwfHeader, queue: int, partition: int, priorities: PrioritySource
) -> tuple[str, int]:
    """Job type: the queue (named from the header), else the partition, else one type.
    Priority: the queue number, where SWF numbers queues from most to least urgent (SDSC:
    0 interactive, 1 express, 2 high, 3 normal, 4 low, 5 standby); partitions are places,
    not urgencies, so they never set a priority."""
    priority = queue if priorities is PrioritySource.TRACE and queue >= 0 else DEFAULT_PRIORITY
    if queue >= 0:
        name = header.queues.get(queue) or ""
        return (f"queue-{queue}-{name}" if name else f"queue-{queue}"), priority
    if partition >= 0:
        name = header.partitions.get(partition) or ""
        return (name or f"partition-{partition}"), priority
    return "default", priority


def load_swf(path: Path, cluster: ClusterOptions, options: LoadOptions) -> Workload:
    header, rows = _read_swf(path)
    nodes, cluster_kind, notes = _swf_cluster(path, header, cluster)
    has_memory = any(node.resources.mem > 0 for node in nodes)
    skipped: dict[str, int] = {}
    jobs: list[TraceJob] = []
    with_memory = 0
    for _line_no, f in rows:
        if options.limit is not None and len(jobs) >= options.limit:
            break
        run, status = f[3], int(f[10])
        if status == SWF_CANCELLED and run <= 0:
            count(skipped, "cancelled before start")
            continue
        if run < 0:
            count(skipped, "no run time")
            continue
        procs = f[7] if f[7] > 0 else f[4]
        if procs <= 0:
            count(skipped, "no processor count")
            continue
        mem_kb_per_proc = f[9] if f[9] > 0 else (f[6] if f[6] > 0 else 0.0)
        mem_mib = mem_kb_per_proc * procs / 1024.0 if has_memory else 0.0
        with_memory += mem_kb_per_proc > 0
        job_type, priority = _swf_type_and_priority(
            header, int(f[14]), int(f[15]), options.priorities
        )
        jobs.append(
            TraceJob(
                job_id=int(f[0]),
                submit_seconds=f[1],
                run_seconds=run,
                resources=request(cpus=procs, mem=mem_mib),
                priority=priority,
                job_type=job_type,
                requested_seconds=f[8] if f[8] > 0 else None,
                status=str(status),
            )
        )
    if with_memory and not has_memory:
        notes.append(
            f"{with_memory} jobs give memory, ignored: the cluster's memory is unknown "
            "(use --mem-per-node or --machines)"
        )
    jobs.sort(key=lambda j: (j.submit_seconds, j.job_id))
    start = header.number(path, "UnixStartTime")
    return Workload(
        source=path.name,
        format=TraceFormat.SWF.value,
        jobs=jobs,
        nodes=nodes,
        job_types=build_job_types(jobs),
        start_time=datetime.fromtimestamp(start, UTC) if start is not None else EPOCH,
        header=header.lines,
        skipped=skipped,
        notes=notes,
        cluster_kind=cluster_kind,
    )


def _swf_cluster(
    path: Path, header: _SwfHeader, cluster: ClusterOptions
) -> tuple[list[NodeSpec], str, list[str]]:
    """Pooled by default: one node of MaxProcs cpus, the trace's own view of the machine
    (any job fits if enough processors are free anywhere)."""
    notes: list[str] = []
    mem = cluster.mem_per_node_mib or 0.0
    if cluster.machines is not None:
        if cluster.nodes is not None or cluster.cpus_per_node is not None:
            raise TraceError(path, None, "cluster", "--machines excludes --nodes/--cpus-per-node")
        return load_machines(cluster.machines, cluster.mem_per_node_mib), "machines", notes
    max_procs = header.number(path, "MaxProcs")
    if max_procs is not None and max_procs <= 0:
        max_procs = None
    count_, per_node = cluster.nodes, cluster.cpus_per_node
    if (count_ is None or per_node is None) and max_procs is None:
        raise TraceError(path, None, "header MaxProcs", "missing; give --nodes and --cpus-per-node")
    if (count_ is not None and count_ < 1) or (per_node is not None and per_node <= 0):
        raise TraceError(path, None, "cluster", "--nodes and --cpus-per-node must be positive")
    if count_ is None and per_node is None:
        assert max_procs is not None
        sibling = path.with_name(path.name + ".machines")
        if sibling.is_file():
            notes.append(f"{sibling.name} describes the nodes; pass --machines to use them")
        return [NodeSpec("pool", capacity(cpus=max_procs, mem=mem))], "pooled", notes
    if count_ is None:
        assert max_procs is not None and per_node is not None
        count_ = max(int(max_procs // per_node), 1)
    if per_node is None:
        assert max_procs is not None
        per_node = float(max(max_procs // count_, 1))
    width = max(4, len(str(count_)))
    nodes = [
        NodeSpec(f"node-{i:0{width}d}", capacity(cpus=per_node, mem=mem))
        for i in range(1, count_ + 1)
    ]
    return nodes, "nodes", notes


def load_machines(path: Path, mem_override_mib: float | None = None) -> list[NodeSpec]:
    """Alea's cluster file: `id name nodes cpus_per_node speed ram_per_node_KB` per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TraceError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    names = ("id", "name", "nodes", "cpus_per_node", "speed", "ram_per_node_KB")
    nodes: list[NodeSpec] = []
    for line_no, raw in enumerate(lines, start=1):
        parts = raw.split()
        if not parts or parts[0].startswith((";", "#")):
            continue
        if len(parts) != len(names):
            raise TraceError(
                path, line_no, None, f"expected {len(names)} fields, found {len(parts)}"
            )
        values: dict[str, float] = {}
        for index in (2, 3, 5):
            try:
                values[names[index]] = float(parts[index])
            except ValueError:
                raise TraceError(
                    path, line_no, names[index], f"{parts[index]!r} is not a number"
                ) from None
        count_ = int(values["nodes"])
        if count_ < 1 or values["cpus_per_node"] <= 0:
            raise TraceError(path, line_no, "nodes", "needs at least one node with cpus")
        mem = mem_override_mib if mem_override_mib is not None else values["ram_per_node_KB"] / 1024
        width = max(4, len(str(count_)))
        nodes.extend(
            NodeSpec(f"{parts[1]}-{i:0{width}d}", capacity(cpus=values["cpus_per_node"], mem=mem))
            for i in range(1, count_ + 1)
        )
    if not nodes:
        raise TraceError(path, None, None, "no cluster line")
    return nodes


# -- Alibaba ----------------------------------------------------------------------------------
def _csv_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise TraceError(path, None, None, f"cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise TraceError(path, 1, "header", f"missing column(s) {', '.join(missing)}")
        for row in reader:
            yield reader.line_num, row


def _number(path: Path, line: int, row: dict[str, str], column: str) -> float:
    raw = (row.get(column) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise TraceError(path, line, column, f"{raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(path, line, column, f"{raw!r} must be a number >= 0")
    return value


def _gpu_class(gpus: float) -> str:
    if gpus <= 0:
        return "cpu"
    if gpus < 1:
        return "gpu-share"
    return "gpu-1" if gpus == 1 else "gpu-multi"


def load_alibaba_nodes(path: Path) -> list[NodeSpec]:
    nodes: list[NodeSpec] = []
    for line, row in _csv_rows(path, ALIBABA_NODE_COLUMNS):
        name = (row.get("sn") or "").strip()
        if not name:
            raise TraceError(path, line, "sn", "empty node name")
        nodes.append(
            NodeSpec(
                name,
                capacity(
                    cpus=_number(path, line, row, "cpu_milli") / 1000,
                    mem=_number(path, line, row, "memory_mib"),
                    gpus=_number(path, line, row, "gpu"),
                ),
                (row.get("model") or "").strip(),
            )
        )
    if not nodes:
        raise TraceError(path, None, None, "no nodes")
    return nodes


def _alibaba_job(
    path: Path, line: int, row: dict[str, str], index: int, priorities: PrioritySource
) -> TraceJob | str:
    """The pod as a job, or the reason it is skipped."""
    if not (row.get("scheduled_time") or "").strip():
        return "never scheduled"
    if not (row.get("deletion_time") or "").strip():
        return "no deletion time"
    created = _number(path, line, row, "creation_time")
    scheduled = _number(path, line, row, "scheduled_time")
    deleted = _number(path, line, row, "deletion_time")
    if scheduled < created:
        raise TraceError(path, line, "scheduled_time", "is before creation_time")
    if deleted < scheduled:
        raise TraceError(path, line, "deletion_time", "is before scheduled_time")
    num_gpu = _number(path, line, row, "num_gpu")
    gpu_milli = _number(path, line, row, "gpu_milli")
    gpus = num_gpu * gpu_milli / 1000 if gpu_milli > 0 else num_gpu
    qos = (row.get("qos") or "").strip()
    priority = (
        ALIBABA_QOS_PRIORITY.get(qos, ALIBABA_UNKNOWN_QOS_PRIORITY)
        if priorities is PrioritySource.TRACE
        else DEFAULT_PRIORITY
    )
    return TraceJob(
        job_id=index,
        submit_seconds=created,
        run_seconds=deleted - scheduled,
        resources=request(
            cpus=_number(path, line, row, "cpu_milli") / 1000,
            mem=_number(path, line, row, "memory_mib"),
            gpus=gpus,
        ),
        priority=priority,
        job_type=f"{qos or 'unknown'}/{_gpu_class(gpus)}",
        requested_seconds=None,
        status=(row.get("pod_phase") or "").strip(),
        name=(row.get("name") or "").strip(),
    )


def load_alibaba(pods: Path, nodes_path: Path, options: LoadOptions) -> Workload:
    nodes = load_alibaba_nodes(nodes_path)
    skipped: dict[str, int] = {}
    jobs: list[TraceJob] = []
    unknown_qos = 0
    for index, (line, row) in enumerate(_csv_rows(pods, ALIBABA_POD_COLUMNS), start=1):
        if options.limit is not None and len(jobs) >= options.limit:
            break
        job = _alibaba_job(pods, line, row, index, options.priorities)
        if isinstance(job, str):
            count(skipped, job)
            continue
        unknown_qos += (row.get("qos") or "").strip() not in ALIBABA_QOS_PRIORITY
        jobs.append(job)
    notes = [f"{unknown_qos} pods have an unknown qos"] if unknown_qos else []
    jobs.sort(key=lambda j: (j.submit_seconds, j.job_id))
    return Workload(
        source=pods.name,
        format=TraceFormat.ALIBABA.value,
        jobs=jobs,
        nodes=nodes,
        job_types=build_job_types(jobs),
        start_time=EPOCH,
        skipped=skipped,
        notes=notes,
        cluster_kind="nodes",
    )
