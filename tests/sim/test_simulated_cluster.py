"""The simulated backend on its own: the backend contract's answers, under a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loadmaster.cluster.protocol import AgentInfo, ClusterBackend
from loadmaster.cluster.simulated import OverCommitError, SimulatedCluster
from loadmaster.model.tasks import Task, TaskStatus
from loadmaster.resources import Resources
from loadmaster.sim.clock import VirtualClock, next_tick

SIZE = Resources.of(cpus=4, mem=1024)
RUN_TIMES = {"short": 10.0, "long": 100.0}


def make(strict: bool = False) -> tuple[SimulatedCluster, VirtualClock]:
    clock = VirtualClock(datetime(2030, 1, 1, tzinfo=UTC))
    agents = [AgentInfo("a1", "host-1", SIZE), AgentInfo("a2", "host-2", SIZE)]
    cluster = SimulatedCluster(clock, agents, lambda t: RUN_TIMES.get(t.id), strict=strict)
    cluster.start()
    return cluster, clock


def task(task_id: str, cpus: float = 1.0) -> Task:
    return Task(task_id, "main", Resources.of(cpus=cpus, mem=128))


def test_it_is_a_cluster_backend() -> None:
    cluster, _ = make()
    backend: ClusterBackend = cluster
    assert backend.framework_id() == "simulated" and backend.is_healthy()
    backend.shutdown(kill_tasks=True)
    assert backend.framework_id() is None and backend.collect_offers(datetime.now(UTC)) == []


def test_offers_are_free_resources_once_until_declined() -> None:
    cluster, clock = make()
    first = cluster.collect_offers(clock.now())
    assert [o.agent_id for o in first] == ["a1", "a2"]
    assert cluster.collect_offers(clock.now()) == []
    cluster.decline_offers(first)
    again = cluster.collect_offers(clock.now())
    assert {o.id for o in again}.isdisjoint({o.id for o in first})


def test_tasks_run_for_their_run_time_and_free_their_resources() -> None:
    cluster, clock = make()
    offer, other = cluster.collect_offers(clock.now())
    cluster.decline_offers([other])
    cluster.combine_offers([offer], [task("short"), task("long", 2)])
    assert [u.status for u in cluster.collect_updates()] == [
        TaskStatus.STAGING,
        TaskStatus.RUNNING,
        TaskStatus.STAGING,
        TaskStatus.RUNNING,
    ]
    assert cluster.next_event_time() == clock.at(10)
    clock.advance_to(50)
    (finished,) = cluster.collect_updates()
    assert (finished.task_id, finished.status, finished.timestamp) == (
        "short",
        TaskStatus.FINISHED,
        clock.at(10),
    )
    assert cluster.used("a1").cpus == 2
    offers = {o.agent_id: o for o in cluster.collect_offers(clock.now())}
    assert offers["a1"].resources.cpus == 2 and offers["a2"].resources.cpus == 4
    assert cluster.invariant_violations() == []


def test_tasks_beyond_the_offer_fail_or_raise_when_strict() -> None:
    cluster, clock = make()
    offer, _ = cluster.collect_offers(clock.now())
    cluster.combine_offers([offer], [task("short", 3), task("long", 3)])
    assert {u.status for u in cluster.collect_updates()} == {TaskStatus.FAILED}
    strict, clock = make(strict=True)
    offer, _ = strict.collect_offers(clock.now())
    with pytest.raises(OverCommitError, match="tasks need"):
        strict.combine_offers([offer], [task("short", 3), task("long", 3)])


def test_a_spent_offer_loses_its_tasks_or_raises_when_strict() -> None:
    cluster, clock = make()
    offer, _ = cluster.collect_offers(clock.now())
    cluster.decline_offers([offer])
    cluster.combine_offers([offer], [task("short")])
    (lost,) = cluster.collect_updates()
    assert lost.status is TaskStatus.LOST and "not outstanding" in (lost.message or "")
    strict, clock = make(strict=True)
    offer, _ = strict.collect_offers(clock.now())
    strict.combine_offers([offer], [])  # spends it
    with pytest.raises(OverCommitError, match="not outstanding"):
        strict.combine_offers([offer], [task("short")])


def test_kill_reconcile_and_logs() -> None:
    cluster, clock = make()
    offer, _ = cluster.collect_offers(clock.now())
    cluster.combine_offers([offer], [task("long"), task("short")])
    cluster.collect_updates()
    cluster.kill_task("long", "a1")
    cluster.kill_task("never", "a1")
    assert [(u.task_id, u.status) for u in cluster.collect_updates()] == [
        ("long", TaskStatus.KILLED),
        ("never", TaskStatus.LOST),
    ]
    clock.advance_to(20)
    cluster.reconcile([("short", "a1"), ("long", "a1"), ("never", "a1")])
    statuses = [(u.task_id, u.status) for u in cluster.collect_updates()]
    assert statuses == [
        ("short", TaskStatus.FINISHED),  # the end itself
        ("short", TaskStatus.FINISHED),  # the answer to the reconciliation
        ("long", TaskStatus.KILLED),
        ("never", TaskStatus.LOST),
    ]
    assert cluster.read_log("short", "stdout") == b""
    with pytest.raises(KeyError):
        cluster.read_log("never", "stdout")
    assert cluster.used("a1").cpus == 0 and cluster.invariant_violations() == []


def test_clock_ticks() -> None:
    assert [next_tick(t, 5) for t in (0, 0.5, 5, 5.000000001, 12)] == [0, 5, 5, 5, 15]
    clock = VirtualClock(datetime(2030, 1, 1, tzinfo=UTC))
    clock.advance_to(3)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(2)
