"""Backfilling: the shadow time, what may be backfilled, and that the reserved entry is never
delayed by it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmaster.model.gpus import GpuTable
from loadmaster.model.nodes import Node
from loadmaster.model.offers import ResourceSet
from loadmaster.model.queue import QueueEntry
from loadmaster.resources import Resources
from loadmaster.scheduling.backfill import BackfillSession, Release, shadow_time
from loadmaster.scheduling.placement import Decision, Outcome
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.report import CycleReport
from loadmaster.scheduling.scheduling_node import SchedulingNode
from loadmaster.sim.engine import JobOutcome, Simulation, run_simulation
from loadmaster.sim.loaders import load_trace
from loadmaster.sim.workload import TraceJob

from .support import HPC2N, by_id, job, workload

CPU = Resources.of(cpus=1)

SHADOW_CASES = {
    "fits now": (4, 2, [], (0.0, 2)),
    "after the first release": (1, 3, [(50, 2), (10, 1)], (50.0, 1)),
    "releases are taken in end order": (0, 2, [(30, 1), (20, 1), (10, 1)], (20.0, 0)),
    "never: not enough": (0, 5, [(10, 1), (20, 1)], None),
    "never: an end is unknown": (0, 2, [(10, 1), (math.inf, 1)], None),
}


@pytest.mark.parametrize("case", SHADOW_CASES.values(), ids=SHADOW_CASES.keys())
def test_shadow_time(
    case: tuple[float, float, list[tuple[float, float]], tuple[float, float] | None],
) -> None:
    free, needed, releases, expected = case
    got = shadow_time(
        Resources.of(cpus=free),
        Resources.of(cpus=needed),
        [Release(t, Resources.of(cpus=c)) for t, c in releases],
    )
    if expected is None:
        assert got is None
    else:
        assert got is not None
        assert (got[0], got[1].cpus) == expected


# -- the session keeps the base engine's decisions ----------------------------------------------
class Scripted:
    """A base session that answers from a script."""

    def __init__(self, answers: Sequence[Decision]) -> None:
        self.answers = list(answers)

    def place(self, job_exe: QueuedJobExecution) -> Decision:
        return self.answers.pop(0)

    def reserved_count(self) -> int:
        return 0


class NoEstimates:
    def releases(self, node_id: int) -> Sequence[Release]:
        return [Release(100.0, Resources.of(cpus=4))]

    def duration_seconds(self, job_exe: QueuedJobExecution) -> float | None:
        return 10.0


def scheduling_node(node_id: int, free: float, size: float = 4) -> SchedulingNode:
    node = Node(node_id, f"host-{node_id}", f"agent-{node_id}", is_initial_cleanup_completed=True)
    node.is_image_pulled = True
    offered = Resources.of(cpus=free)
    resource_set = ResourceSet(offered, Resources.of(cpus=size - free), Resources.of(cpus=size))
    return SchedulingNode(node, node.agent_id, resource_set, [], [], GpuTable())


def entry(queue_id: int, cpus: float, priority: int = 5) -> QueuedJobExecution:
    when = datetime(2030, 1, 1, tzinfo=UTC)
    return QueuedJobExecution(
        QueueEntry(queue_id, queue_id, 1, priority, when, Resources.of(cpus=cpus))
    )


def test_every_base_decision_but_no_fit_is_returned_as_it_is() -> None:
    node = scheduling_node(1, free=2)
    other = scheduling_node(2, free=0)
    answers = [
        Decision(Outcome.SCHEDULED, other, 3, 1),
        Decision(Outcome.RESERVED, node, 0),
        Decision(Outcome.ACCEPT_FAILED, None, None, 2),
        Decision(Outcome.NO_FIT),
        Decision(Outcome.NO_FIT),
    ]
    session = BackfillSession(Scripted(answers), [node, other], [CPU], NoEstimates())
    expected = list(answers)
    assert session.place(entry(1, 1)) is expected[0]
    assert session.place(entry(2, 4, priority=0)) is expected[1]  # reserves node 1
    assert session.place(entry(3, 1)) is expected[2]
    backfilled = session.place(entry(4, 1))  # 10 s ≤ shadow 100 s: backfilled onto node 1
    assert backfilled.outcome is Outcome.SCHEDULED and backfilled.node is node
    assert session.backfilled == [4]
    too_big = session.place(entry(5, 2))  # node 1 has 1 cpu left
    assert too_big is expected[4]
    (window,) = session.windows
    assert (window.queue_id, window.shadow_seconds, window.backfilled) == (2, 100.0, [4])


# -- replays ------------------------------------------------------------------------------------
def test_short_work_is_backfilled_ahead_of_the_reserved_job() -> None:
    """4 cpus. J1 (3 cpus, priority 5) runs 0–100; E (4 cpus, priority 0) reserves the pool at
    10; B (1 cpu, 50 s) comes at 20 and ends by 100, so it runs at once under backfilling."""
    jobs = [
        job(1, 0, 100, 3, priority=5, requested=100),
        job(2, 10, 10, 4, priority=0, requested=10),
        job(3, 20, 50, 1, priority=5, requested=50),
        job(4, 25, 200, 1, priority=5, requested=200),
    ]
    reference = by_id(run_simulation(workload(jobs, nodes=1), "reference"))
    backfill = by_id(run_simulation(workload(jobs, nodes=1), "backfill"))
    assert reference[3].start == 110 and backfill[3].start == 20
    assert backfill[3].backfilled and not backfill[4].backfilled
    assert reference[2].start == backfill[2].start == 100


def test_long_work_is_backfilled_only_into_the_surplus() -> None:
    """8 cpus. J1 (4 cpus) runs 0–100; E (6 cpus, priority 0) reserves at 10 and will leave 2
    cpus spare at 100. Neither later job ends by 100: the 3-cpu one would take more than the
    spare room and waits, the 2-cpu one fits beside E and runs at once."""
    jobs = [
        job(1, 0, 100, 4, priority=5, requested=100),
        job(2, 10, 10, 6, priority=0, requested=10),
        job(3, 20, 500, 3, priority=5, requested=500),
        job(4, 25, 500, 2, priority=5, requested=500),
    ]
    records = by_id(run_simulation(workload(jobs, nodes=1, cpus=8), "backfill"))
    assert records[4].start == 25 and records[4].backfilled
    assert records[2].start == 100
    assert records[3].start == 110 and not records[3].backfilled


def test_without_an_estimate_nothing_is_backfilled_by_time() -> None:
    jobs = [
        job(1, 0, 100, 3, priority=5, requested=None),  # its end is unknown
        job(2, 10, 10, 4, priority=0, requested=10),
        job(3, 20, 5, 1, priority=5, requested=5),
    ]
    records = by_id(run_simulation(workload(jobs, nodes=1), "backfill"))
    assert not records[3].backfilled and records[3].start == 110


def test_the_mean_run_time_of_a_job_type_stands_in_for_a_missing_estimate() -> None:
    jobs = [
        job(1, 0, 30, 1, priority=5, job_type="short"),  # teaches the mean: 30 s
        job(2, 40, 100, 3, priority=5, requested=100),
        job(3, 50, 10, 4, priority=0, requested=10),
        job(4, 60, 30, 1, priority=5, job_type="short"),  # estimated 30 s ≤ shadow 90 s
    ]
    records = by_id(run_simulation(workload(jobs, nodes=1), "backfill"))
    assert records[4].backfilled and records[4].start == 60
    assert records[3].start == 140


def test_without_reservations_backfill_is_the_reference() -> None:
    workload_ = load_trace(HPC2N)  # no queue numbers: every job has the same priority
    reference = run_simulation(workload_, "reference")
    backfill = run_simulation(workload_, "backfill")
    assert [(r.start, r.node) for r in reference.records] == [
        (r.start, r.node) for r in backfill.records
    ]


# -- property: the reserved entry is never delayed ----------------------------------------------
@st.composite
def one_urgent_job(draw: st.DrawFn, exact: bool) -> list[TraceJob]:
    """Background work of one priority on an 8-cpu pool, and one more important job E whose
    start the backfilled work must not delay. Estimates are exact, or upper bounds."""
    jobs: list[TraceJob] = []
    for n in range(1, draw(st.integers(1, 14)) + 1):
        run = draw(st.integers(0, 100))
        slack = 0 if exact else draw(st.integers(0, 60))
        jobs.append(
            job(
                n,
                draw(st.integers(0, 150)),
                run,
                draw(st.sampled_from([1.0, 2.0, 3.0, 4.0, 8.0])),
                priority=5,
                requested=run + slack,
            )
        )
    run = draw(st.integers(1, 50))
    urgent = job(
        99,
        draw(st.integers(0, 120)),
        run,
        draw(st.sampled_from([2.0, 4.0, 6.0, 8.0])),
        priority=0,
        requested=run + (0 if exact else draw(st.integers(0, 60))),
    )
    return [*jobs, urgent]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_urgent_job(exact=True))
def test_backfilling_never_delays_the_reserved_job(jobs: list[TraceJob]) -> None:
    reference = by_id(run_simulation(workload(jobs, nodes=1, cpus=8), "reference"))
    backfill = by_id(run_simulation(workload(jobs, nodes=1, cpus=8), "backfill"))
    ref_start, bf_start = reference[99].start, backfill[99].start
    assert ref_start is not None and bf_start is not None
    assert bf_start <= ref_start
    assert all(r.outcome is JobOutcome.COMPLETED for r in backfill.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_urgent_job(exact=False))
def test_the_reserved_job_starts_by_its_first_shadow_time(jobs: list[TraceJob]) -> None:
    """With estimates that are upper bounds, E starts no later than the shadow time computed
    when it first reserved the pool, whatever was backfilled meanwhile."""
    promised: list[float] = []

    def watch(sim: Simulation, report: CycleReport) -> None:
        session = sim.backfill_session
        if promised or session is None:
            return
        for window in session.windows:
            record = sim.records[window.queue_id - 1]
            if record.job.job_id == 99 and window.shadow_seconds is not None:
                promised.append(sim.clock.seconds + window.shadow_seconds)

    result = by_id(run_simulation(workload(jobs, nodes=1, cpus=8), "backfill", observer=watch))
    start = result[99].start
    assert start is not None
    if promised:
        assert start <= promised[0]
