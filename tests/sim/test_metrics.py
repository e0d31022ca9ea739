"""Metric formulas on hand-made traces whose answers are worked out by hand."""

from __future__ import annotations

import math

import pytest

from loadmaster.resources import Resources
from loadmaster.sim.engine import run_simulation
from loadmaster.sim.metrics import bounded_slowdown, compute_metrics, stats

from .support import by_id, job, workload

BSLD_CASES = {
    "no wait": (0.0, 100.0, 1.0),
    "waited as long as it ran": (50.0, 50.0, 2.0),
    "short job bounded by tau": (80.0, 5.0, 8.5),  # (80 + 5) / max(5, 10)
    "zero run": (20.0, 0.0, 2.0),  # (20 + 0) / 10
    "never below one": (0.0, 3.0, 1.0),  # (0 + 3) / 10 = 0.3 → 1
}


@pytest.mark.parametrize("case", BSLD_CASES.values(), ids=BSLD_CASES.keys())
def test_bounded_slowdown(case: tuple[float, float, float]) -> None:
    wait, run, expected = case
    assert bounded_slowdown(wait, run) == pytest.approx(expected)


def test_stats_of_nothing_and_of_three() -> None:
    assert stats([])["mean"] is None
    got = stats([0.0, 80.0, 90.0])
    assert got == {
        "count": 3,
        "mean": pytest.approx(170 / 3),
        "median": 80.0,
        "p95": 89.0,
        "max": 90.0,
    }


def three_jobs() -> dict[str, object]:
    """Two cpus. J1 (2 cpus, 0–100) fills the node; J2 (1 cpu, 50 s, submitted at 10) and
    J3 (1 cpu, 5 s, submitted at 20) both start when J1 ends at 100."""
    jobs = [job(1, 0, 100, 2), job(2, 10, 50, 1), job(3, 20, 5, 1)]
    result = run_simulation(workload(jobs, nodes=1, cpus=2))
    records = by_id(result)
    assert [(records[i].start, records[i].end) for i in (1, 2, 3)] == [
        (0, 100),
        (100, 150),
        (100, 105),
    ]
    return compute_metrics(result)


def test_wait_slowdown_makespan_throughput_utilization() -> None:
    metrics = three_jobs()
    assert metrics["wait_seconds"] == {
        "count": 3,
        "mean": pytest.approx(170 / 3),
        "median": 80.0,
        "p95": pytest.approx(89.0),  # linear between 80 (rank 1) and 90 (rank 2) at 1.9
        "max": 90.0,
    }
    bsld = metrics["bounded_slowdown"]
    assert isinstance(bsld, dict)
    assert bsld["mean"] == pytest.approx((1.0 + 2.8 + 8.5) / 3)  # 1, (90+50)/50, (80+5)/10
    assert bsld["max"] == pytest.approx(8.5)
    assert metrics["makespan_seconds"] == 150
    assert metrics["throughput_jobs_per_hour"] == pytest.approx(3 / (150 / 3600))
    utilization = metrics["utilization"]
    assert isinstance(utilization, dict)
    assert utilization["cpus"] == pytest.approx((2 * 100 + 1 * 50 + 1 * 5) / (2 * 150))
    assert utilization["mem"] is None  # the cluster has no memory


def test_queue_and_utilization_series_are_bin_averages() -> None:
    metrics = three_jobs()
    series = metrics["series"]
    assert isinstance(series, dict)
    queue = series["queue_length"]
    # 0 waiting until 10, 1 until 20, 2 until 100, then 0: (10 + 160) job-seconds / 150 s.
    assert sum(queue) / len(queue) == pytest.approx(170 / 150, rel=1e-6)
    cpus = series["utilization"]["cpus"]
    assert sum(cpus) / len(cpus) == pytest.approx(255 / 300, rel=1e-6)


def test_per_type_and_per_priority_groups() -> None:
    jobs = [
        job(1, 0, 100, 2, priority=1, job_type="big"),
        job(2, 10, 50, 1, priority=2, job_type="small"),
        job(3, 20, 5, 1, priority=2, job_type="small"),
    ]
    metrics = compute_metrics(run_simulation(workload(jobs, nodes=1, cpus=2)))
    groups = {g["job_type"]: g for g in metrics["by_job_type"]}  # type: ignore[attr-defined]
    assert groups["big"]["wait_seconds"]["mean"] == 0
    assert groups["small"]["wait_seconds"]["mean"] == pytest.approx(85.0)
    assert groups["small"]["completed"] == 2
    priorities = {g["priority"]: g for g in metrics["by_priority"]}  # type: ignore[attr-defined]
    assert priorities[2]["bounded_slowdown"]["mean"] == pytest.approx((2.8 + 8.5) / 2)


def test_fragmentation_counts_free_room_no_waiting_entry_fits() -> None:
    """Two 2-cpu nodes. J1 (1 cpu, 0–100) runs on node 1; J2 needs 2 cpus for 100 s and runs
    on node 2 from 0; J3 (2 cpus) arrives at 10 and fits nowhere until 100. From 10 to 100
    node 1's free cpu is fragmentation: 1 of 4 cpus while J3 waits."""
    jobs = [job(1, 0, 100, 1), job(2, 0, 100, 2), job(3, 10, 10, 2)]
    result = run_simulation(workload(jobs, nodes=2, cpus=2))
    records = by_id(result)
    assert records[3].start == 100
    frag = compute_metrics(result)["fragmentation"]
    assert isinstance(frag, dict)
    assert frag["mean_while_waiting"]["cpus"] == pytest.approx(0.25)
    assert frag["waiting_fraction"] == pytest.approx(90 / 110)


def test_room_a_waiting_entry_could_use_is_not_fragmentation() -> None:
    """A priority-0 job reserves the pool while a priority-5 job runs; the small job behind it
    could use the free cpu but the reservation holds it back: held, not fragmented."""
    jobs = [
        job(1, 0, 100, 3, priority=5),
        job(2, 10, 10, 4, priority=0),
        job(3, 20, 10, 1, priority=5),
    ]
    result = run_simulation(workload(jobs, nodes=1, cpus=4), "reference")
    records = by_id(result)
    assert records[2].start == 100 and records[3].start == 110
    frag = compute_metrics(result)["fragmentation"]
    assert isinstance(frag, dict)
    # 10–20: only J2 waits and the free cpu fits nothing → fragmented; 20–100: J3 fits it.
    assert frag["mean_while_waiting"]["cpus"] == pytest.approx((10 * 1 / 4) / 100)


def test_metrics_are_json_ready() -> None:
    import json

    text = json.dumps(three_jobs())
    assert not math.isnan(json.loads(text)["utilization"]["cpus"])


def test_empty_cluster_resources_are_not_reported() -> None:
    jobs = [job(1, 0, 10, 1, gpus=0.5)]
    nodes = [Resources.of(cpus=2, gpus=1)]
    metrics = compute_metrics(run_simulation(workload(jobs, nodes)))
    utilization = metrics["utilization"]
    assert isinstance(utilization, dict)
    assert utilization["gpus"] == pytest.approx(0.5)
    assert utilization["disk"] is None
