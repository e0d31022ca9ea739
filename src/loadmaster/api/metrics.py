"""The Prometheus text exposition (format 0.0.4), written out directly: a few dozen series do
not justify a client library. Labels are low-cardinality by construction — result, task
class, reason code, node state, resource name — except `job_type`, which is bounded by the
number of job types that have queued jobs."""

from __future__ import annotations

from collections.abc import Iterable

from loadmaster.api.counters import DURATION_BUCKETS, Counters
from loadmaster.api.views import cluster_resources, node_views
from loadmaster.model.nodes import NodeState
from loadmaster.scheduling.reasons import ReasonCode
from loadmaster.service.scheduler import SchedulerService

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    text = ",".join(f'{k}="{_escape(v)}"' for k, v in (labels or {}).items())
    number = repr(float(value)) if isinstance(value, float) else str(value)
    return f"{name}{{{text}}} {number}" if text else f"{name} {number}"


def _family(name: str, kind: str, help_text: str, lines: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]


def render(service: SchedulerService, c: Counters) -> str:
    out: list[str] = []
    out += _family(
        "loadmaster_cycles_total",
        "counter",
        "Loop turns by result (active: did something; idle; error: store failed; stopped).",
        (_series("loadmaster_cycles_total", n, {"result": r}) for r, n in c.cycles.items()),
    )
    bucket = "loadmaster_cycle_duration_seconds_bucket"
    buckets = [  # the counts are cumulative already: a turn counts in every bucket it fits
        _series(bucket, count, {"le": repr(bound)})
        for bound, count in zip(DURATION_BUCKETS, c.duration_buckets, strict=True)
    ]
    buckets.append(_series(bucket, c.duration_count, {"le": "+Inf"}))
    buckets.append(_series("loadmaster_cycle_duration_seconds_sum", round(c.duration_sum, 6)))
    buckets.append(_series("loadmaster_cycle_duration_seconds_count", c.duration_count))
    out += _family(
        "loadmaster_cycle_duration_seconds", "histogram", "Duration of one loop turn.", buckets
    )
    simple = (
        ("loadmaster_placements_total", c.placements, "Job executions placed by the cycle."),
        ("loadmaster_offers_received_total", c.offers_received, "Resource offers received."),
        ("loadmaster_offers_accepted_total", c.offers_accepted, "Offers used for launches."),
        ("loadmaster_offers_declined_total", c.offers_declined, "Offers declined."),
        ("loadmaster_executions_finished_total", c.executions_finished, "Executions ended."),
        ("loadmaster_executions_lost_total", c.executions_lost, "Executions lost with a node."),
    )
    for name, value, help_text in simple:
        out += _family(name, "counter", help_text, [_series(name, value)])
    out += _family(
        "loadmaster_tasks_launched_total",
        "counter",
        "Tasks launched, by class (job, node, system).",
        (
            _series("loadmaster_tasks_launched_total", n, {"class": k})
            for k, n in c.tasks_launched.items()
        ),
    )
    out += _gauges(service)
    return "\n".join(out) + "\n"


def _gauges(service: SchedulerService) -> list[str]:
    out: list[str] = []
    queue = service.store.queue.status()
    out += _family(
        "loadmaster_queue_depth",
        "gauge",
        "Queued jobs by job type.",
        (
            _series("loadmaster_queue_depth", s.count, {"job_type": f"{s.name}:{s.version}"})
            for s in queue
        ),
    )
    with service.lock:
        report = service.runtime.manager.last_report
        reasons = [u.reason for u in report.unscheduled] if report is not None else []
    counts = {str(code): 0 for code in ReasonCode}
    for reason in reasons:
        counts[str(reason)] += 1
    out += _family(
        "loadmaster_pending_executions",
        "gauge",
        "Queue entries the last cycle did not schedule, by reason code.",
        (_series("loadmaster_pending_executions", n, {"reason": r}) for r, n in counts.items()),
    )
    nodes = node_views(service, service.store.nodes.all())
    states = {str(s): 0 for s in NodeState}
    for node in nodes:
        states[node["state"]["name"]] += 1
    out += _family(
        "loadmaster_nodes",
        "gauge",
        "Nodes by state.",
        (_series("loadmaster_nodes", n, {"state": s}) for s, n in states.items()),
    )
    lines = [
        _series("loadmaster_cluster_resources", value, {"kind": kind, "resource": name})
        for name, kinds in sorted(cluster_resources(nodes).items())
        for kind, value in sorted(kinds.items())
    ]
    out += _family(
        "loadmaster_cluster_resources",
        "gauge",
        "Resources of active nodes by kind (offered, running, free, unavailable, total).",
        lines,
    )
    return out
