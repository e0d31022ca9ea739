"""The replay loop: conservation, no over-commitment, determinism, time handling."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmaster.resources import Resources, total
from loadmaster.scheduling.fast import FastPlacement
from loadmaster.scheduling.report import CycleReport
from loadmaster.sim.engine import JobOutcome, Simulation, SimulationConfig, run_simulation
from loadmaster.sim.loaders import ClusterOptions, LoadOptions, load_trace
from loadmaster.sim.workload import NodeSpec, TraceJob

from .support import ALIBABA_PODS, HPC2N, SDSC, by_id, conserved, job, workload


def checked(sim: Simulation, report: CycleReport) -> None:
    """After every cycle: the cluster's books balance, and the core's view of each agent's
    tasks is exactly what the cluster runs."""
    assert sim.cluster.invariant_violations() == []
    tasks_by_agent: dict[str, list[Resources]] = {}
    for task in sim.tasks.get_all_tasks():
        assert task.agent_id is not None
        tasks_by_agent.setdefault(task.agent_id, []).append(task.resources)
    for info in sim.cluster.agents():
        used = sim.cluster.used(info.agent_id)
        known = total(tasks_by_agent.get(info.agent_id, []))
        assert info.total.is_sufficient_to_meet(used)
        assert used.is_equal(known.round_values()) or used.is_equal(known)


def test_sdsc_excerpt_is_conserved_and_never_overcommits() -> None:
    for policy in ("reference", "backfill"):
        result = run_simulation(load_trace(SDSC), policy, observer=checked)
        assert conserved(result)
        assert all(r.outcome is JobOutcome.COMPLETED for r in result.records)
        for record in result.records:
            assert record.start is not None and record.end is not None
            assert record.start >= record.job.submit_seconds
            assert record.end - record.start == record.job.run_seconds


def test_hpc2n_on_its_nodes_reports_jobs_too_big_for_a_node() -> None:
    cluster = ClusterOptions(machines=Path(f"{HPC2N}.machines"))
    workload = load_trace(HPC2N, cluster=cluster, options=LoadOptions(limit=150))
    result = run_simulation(workload, "backfill", observer=checked)
    assert conserved(result)
    infeasible = [r for r in result.records if r.outcome is JobOutcome.INFEASIBLE]
    assert infeasible and all(r.job.resources.cpus > 2 for r in infeasible)
    assert all(r.reason and r.reason.startswith("INSUFFICIENT_RESOURCES") for r in infeasible)
    assert all(
        r.outcome is JobOutcome.COMPLETED for r in result.records if r.job.resources.cpus <= 2
    )


def test_alibaba_excerpt_with_gpus_on_few_nodes() -> None:
    workload = load_trace(ALIBABA_PODS, options=LoadOptions(limit=120))

    def first(count: int, gpus: float) -> list[NodeSpec]:
        return [n for n in workload.nodes if n.resources.gpus == gpus][:count]

    workload.nodes = first(2, 8.0) + first(2, 2.0) + first(1, 0.0)  # small, so pods wait
    result = run_simulation(workload, "backfill", observer=checked)
    assert conserved(result)
    waits = [r.wait for r in result.records if r.wait is not None]
    assert max(waits) > 0
    shared = [r for r in result.records if 0 < r.job.resources.gpus < 1]
    assert shared and all(r.outcome is JobOutcome.COMPLETED for r in shared)


def test_replays_reproduce_themselves() -> None:
    workload = load_trace(SDSC, options=LoadOptions(limit=150))

    def signature(seed: int) -> list[tuple[int, float | None, str | None]]:
        result = run_simulation(workload, "backfill", SimulationConfig(seed=seed))
        return [(r.job.job_id, r.start, r.node) for r in result.records]

    assert signature(7) == signature(7)
    assert signature(7) == signature(8)  # nothing in a replay is random


def test_idle_time_is_jumped_over() -> None:
    jobs = [job(1, 0, 10), job(2, 1_000_000, 10), job(3, 2_000_000, 10)]
    result = run_simulation(workload(jobs))
    assert result.cycles <= 6
    assert [r.start for r in result.records] == [0, 1_000_000, 2_000_000]


def test_cycles_fall_on_the_cycle_grid() -> None:
    jobs = [job(1, 3, 7), job(2, 12, 1)]
    result = run_simulation(workload(jobs), config=SimulationConfig(cycle_seconds=5))
    records = by_id(result)
    assert (records[1].start, records[1].end) == (5, 12)  # seen at the tick after its submit
    assert records[2].start == 15


def test_work_waits_for_resources_and_ends_at_its_run_time() -> None:
    jobs = [job(1, 0, 30, 4), job(2, 0, 20, 4), job(3, 5, 0, 1)]
    records = by_id(run_simulation(workload(jobs, nodes=1, cpus=4)))
    assert (records[1].start, records[1].end) == (0, 30)
    assert (records[2].start, records[2].end) == (30, 50)  # FIFO within a priority
    assert (records[3].start, records[3].end) == (50, 50)  # a zero-length job, after J2


def test_until_leaves_running_and_queued_jobs() -> None:
    jobs = [job(1, 0, 100, 4), job(2, 0, 100, 4), job(3, 500, 1, 1), job(4, 600, 1, 99)]
    config = SimulationConfig(until_seconds=50)
    result = run_simulation(workload(jobs, nodes=1, cpus=4), config=config)
    outcomes = {r.job.job_id: r.outcome for r in result.records}
    assert outcomes == {
        1: JobOutcome.RUNNING_AT_END,
        2: JobOutcome.QUEUED_AT_END,
        3: JobOutcome.NOT_SUBMITTED,
        4: JobOutcome.NOT_SUBMITTED,  # too big, but never submitted
    }
    assert by_id(result)[2].reason is not None  # the last cycle's reason


def test_registries_are_empty_after_a_full_replay() -> None:
    sim = Simulation(load_trace(SDSC, options=LoadOptions(limit=100)), "backfill")
    sim.run()
    assert sim.executions.running() == []
    assert sim.tasks.get_all_tasks() == []
    assert sim.store.count_queue() == 0
    assert sim.cluster.running_count() == 0


def test_a_job_no_single_node_can_hold_is_infeasible() -> None:
    nodes = [Resources.of(cpus=8), Resources.of(cpus=1, gpus=1)]
    records = by_id(run_simulation(workload([job(1, 0, 10, 4, gpus=1)], nodes)))
    assert records[1].outcome is JobOutcome.INFEASIBLE
    assert records[1].reason and records[1].reason.startswith("NO_NODE_FITS")


def test_infeasible_jobs_do_not_hold_queue_slots() -> None:
    big = [job(n, 0, 10, 64) for n in range(1, 4)]
    result = run_simulation(workload([*big, job(9, 1, 10, 1)], nodes=1, cpus=4))
    records = by_id(result)
    assert [records[n].outcome for n in (1, 2, 3)] == [JobOutcome.INFEASIBLE] * 3
    assert records[9].start == 1


# -- property: safety on random small workloads -------------------------------------------------
@st.composite
def random_workloads(draw: st.DrawFn) -> tuple[list[TraceJob], list[Resources]]:
    nodes = [
        Resources.of(cpus=draw(st.sampled_from([2.0, 4.0, 8.0])), mem=1024.0, gpus=g)
        for g in draw(st.lists(st.sampled_from([0.0, 1.0, 2.0]), min_size=1, max_size=3))
    ]
    count = draw(st.integers(1, 25))
    jobs = [
        job(
            n,
            draw(st.integers(0, 200)),
            draw(st.integers(0, 120)),
            draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 8.0])),
            priority=draw(st.integers(0, 3)),
            requested=draw(st.none() | st.integers(1, 200)),
            job_type=draw(st.sampled_from(["a", "b"])),
            mem=draw(st.sampled_from([0.0, 256.0, 1024.0])),
            gpus=draw(st.sampled_from([0.0, 0.0, 0.3, 1.0])),
        )
        for n in range(1, count + 1)
    ]
    return jobs, nodes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_workloads(), st.sampled_from(["reference", "backfill"]))
def test_random_replays_never_overcommit_and_conserve_jobs(
    case: tuple[list[TraceJob], list[Resources]], policy: str
) -> None:
    jobs, nodes = case
    result = run_simulation(workload(jobs, nodes), policy, observer=checked)
    assert conserved(result)
    for record in result.records:
        if record.outcome is JobOutcome.COMPLETED:
            assert record.end == record.start + record.job.run_seconds  # type: ignore[operator]
        else:
            assert record.outcome is JobOutcome.INFEASIBLE


def test_a_policy_keeps_its_name_and_decisions_over_the_fast_base_engine() -> None:
    """`--engine fast` (the default) changes the speed, not the policy's name or decisions."""
    jobs = [job(i, i % 7, 30 + i, 1 + i % 3) for i in range(1, 40)]
    for policy in ("reference", "backfill"):
        reference = run_simulation(workload(jobs, nodes=3, cpus=4), policy)
        fast = run_simulation(workload(jobs, nodes=3, cpus=4), policy, base=FastPlacement())
        assert fast.policy == reference.policy == policy
        assert [(r.start, r.end) for r in fast.records] == [
            (r.start, r.end) for r in reference.records
        ]
