"""Bounded slowdown of loadmaster's policies next to textbook FCFS and EASY baselines.

Run from the repository root:

    python examples/traces/baselines.py TRACE.swf [--sequences 10 --length 1024 --seed 1]

For the whole trace and for `--sequences` random windows of `--length` consecutive jobs (each
replayed on an empty machine, as RLScheduler's evaluation does), it prints the mean bounded
slowdown (τ = 10 s) of

* `reference` and `backfill`, replayed by `loadmaster.sim` (pooled cluster, trace priorities);
* `fcfs` and `easy`: a deliberately minimal event-driven replay of processor counts on the same
  pool, independent of the scheduling core. FCFS starts jobs strictly in submit order (the head
  blocks everyone); EASY lets later jobs that fit start if they end, by their requested time,
  before the head's reserved start, or fit in the processors the head leaves spare then.

The baselines exist to tell effects of the data (how loaded a trace excerpt is) from effects
of the policy; they are not part of loadmaster.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import random
from pathlib import Path

from loadmaster.sim.engine import run_simulation
from loadmaster.sim.loaders import load_trace
from loadmaster.sim.metrics import bounded_slowdown, compute_metrics
from loadmaster.sim.workload import TraceJob, Workload, build_job_types


@dataclasses.dataclass(slots=True)
class _Pool:
    procs: float
    free: float
    running: list[tuple[float, float, float]] = dataclasses.field(default_factory=list)

    def start(self, job: TraceJob, now: float, slowdowns: list[float]) -> None:
        self.free -= job.resources.cpus
        estimate = job.requested_seconds or job.run_seconds
        heapq.heappush(self.running, (now + job.run_seconds, now + estimate, job.resources.cpus))
        slowdowns.append(bounded_slowdown(now - job.submit_seconds, job.run_seconds))

    def head_reservation(self, needed: float) -> tuple[float, float] | None:
        """(reserved start by requested times, processors spare then) for the head job."""
        available = self.free
        for _, estimated_end, procs in sorted(self.running, key=lambda r: r[1]):
            available += procs
            if available >= needed:
                return estimated_end, available - needed
        return None


def _schedule(pool: _Pool, queue: list[TraceJob], now: float, easy: bool, out: list[float]) -> None:
    while queue and queue[0].resources.cpus <= pool.free:
        pool.start(queue.pop(0), now, out)
    if not easy or not queue:
        return
    reserved = pool.head_reservation(queue[0].resources.cpus)
    if reserved is None:
        return
    shadow, spare = reserved
    for job in list(queue[1:]):
        if job.resources.cpus > pool.free:
            continue
        if now + (job.requested_seconds or job.run_seconds) <= shadow:
            queue.remove(job)
            pool.start(job, now, out)
        elif job.resources.cpus <= spare:
            queue.remove(job)
            spare -= job.resources.cpus
            pool.start(job, now, out)


def baseline(jobs: list[TraceJob], procs: float, easy: bool) -> float:
    """Mean bounded slowdown of strict FCFS (easy=False) or EASY backfilling."""
    pool = _Pool(procs, procs)
    pending = sorted(jobs, key=lambda j: (j.submit_seconds, j.job_id))
    queue: list[TraceJob] = []
    slowdowns: list[float] = []
    index, now = 0, 0.0
    while True:
        while pool.running and pool.running[0][0] <= now:
            pool.free += heapq.heappop(pool.running)[2]
        while index < len(pending) and pending[index].submit_seconds <= now:
            queue.append(pending[index])
            index += 1
        _schedule(pool, queue, now, easy, slowdowns)
        events = [pending[index].submit_seconds] if index < len(pending) else []
        events += [pool.running[0][0]] if pool.running else []
        if not events:
            return sum(slowdowns) / len(slowdowns)
        now = min(events)


def loadmaster_bsld(workload: Workload, jobs: list[TraceJob], policy: str) -> float:
    part = dataclasses.replace(workload, jobs=jobs, job_types=build_job_types(jobs))
    value = compute_metrics(run_simulation(part, policy))["bounded_slowdown"]
    assert isinstance(value, dict)
    return float(value["mean"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--sequences", type=int, default=10)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    workload = load_trace(args.trace)
    procs = workload.nodes[0].resources.cpus
    rng = random.Random(args.seed)
    span = max(len(workload.jobs) - args.length, 1)
    windows = [
        workload.jobs[s : s + args.length]
        for s in (rng.randrange(span) for _ in range(args.sequences))
    ]
    print(f"{args.trace.name}: {len(workload.jobs)} jobs on {procs:g} processors")
    print(f"{'policy':<10} {'whole trace':>12} {f'{args.sequences} × {args.length} jobs':>16}")
    rows = {
        "reference": lambda jobs: loadmaster_bsld(workload, jobs, "reference"),
        "backfill": lambda jobs: loadmaster_bsld(workload, jobs, "backfill"),
        "fcfs": lambda jobs: baseline(jobs, procs, easy=False),
        "easy": lambda jobs: baseline(jobs, procs, easy=True),
    }
    for name, bsld in rows.items():
        sampled = sum(bsld(window) for window in windows) / len(windows)
        print(f"{name:<10} {bsld(list(workload.jobs)):>12.2f} {sampled:>16.2f}")


if __name__ == "__main__":
    main()
