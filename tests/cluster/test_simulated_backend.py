"""The simulated cluster against the shared backend contract.

Its tasks never run a command: each ends FINISHED (exit code 0) after the run time the harness
gives it, so COMMANDS, SHELL and PROCESS_GROUPS are not declared. RESTART is not either: a
simulated cluster is its own state, and a second one cannot find the first one's tasks.

Time is the contract's `StepClock`, as for the other backends: every reading is one second
after the previous one, and nothing else moves it, so a task of run time n seconds ends within
the next n clock readings of the cluster's calls (a short task on the next poll) and a test's
calls alone decide what has ended when — no real waiting, and the same result every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from loadmaster.cluster.protocol import AgentInfo, ClusterBackend
from loadmaster.cluster.simulated import SimulatedCluster
from loadmaster.model.tasks import Task, TaskStatus
from loadmaster.resources import Resources

from .contract import AGENT_CONTROL, Cluster, ClusterBackendContract, StepClock, make_task

AGENTS = (
    AgentInfo("sim-a", "node-a", Resources.of(cpus=4.0, mem=2048.0, disk=4096.0)),
    AgentInfo("sim-b", "node-b", Resources.of(cpus=2.0, mem=1024.0, disk=1024.0)),
)
SHORT_SECONDS = 1.0  # ends at the first clock reading after its launch: the next poll
HOUR_SECONDS = 3600.0  # outlives any test
# Contract tasks that must still run when the test looks at them. The holder is checked once
# while it runs, a few readings after its launch, and then waited for to end.
RUN_SECONDS = {"holder": 10.0, "victim": HOUR_SECONDS, "doomed": HOUR_SECONDS}


@dataclass(slots=True)
class StepReadings:
    """The step clock in the shape the simulated cluster reads: `now()`."""

    steps: StepClock

    def now(self) -> datetime:
        return self.steps()


@dataclass(slots=True)
class SimulatedHarness:
    """Two agents of fixed size; run times from `run_seconds` by task id, else short."""

    scratch: Path
    clock: StepClock = field(default_factory=StepClock)
    run_seconds: dict[str, float] = field(default_factory=lambda: dict(RUN_SECONDS))
    features: frozenset[str] = frozenset({AGENT_CONTROL})

    def run_time(self, task: Task) -> float:
        return self.run_seconds.get(task.id, SHORT_SECONDS)

    def create(self) -> SimulatedCluster:
        return SimulatedCluster(StepReadings(self.clock), AGENTS, self.run_time)

    def stop_agent(self, backend: ClusterBackend, hostname: str) -> None:
        assert isinstance(backend, SimulatedCluster)
        backend.stop_agent(hostname)

    def start_agent(self, backend: ClusterBackend, hostname: str) -> None:
        assert isinstance(backend, SimulatedCluster)
        backend.start_agent(hostname)

    def cleanup(self) -> None:
        return


@pytest.fixture
def harness(tmp_path: Path) -> SimulatedHarness:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return SimulatedHarness(scratch)


class TestSimulatedBackendContract(ClusterBackendContract):
    pass


# -- what only the simulated cluster shows ----------------------------------------------------
def test_a_task_ends_after_its_run_time_in_clock_readings(harness: SimulatedHarness) -> None:
    harness.run_seconds["slow"] = 5.0
    cluster = Cluster(harness)
    try:
        cluster.launch(make_task("slow", ("never-run",)))
        launched = cluster.wait_for("slow", TaskStatus.RUNNING).timestamp
        ended = cluster.wait_for("slow", TaskStatus.FINISHED)
        assert (ended.timestamp - launched).total_seconds() == 5.0
        assert ended.exit_code == 0
    finally:
        cluster.close()


def test_a_stopped_agent_keeps_the_books_straight(harness: SimulatedHarness) -> None:
    cluster = Cluster(harness)
    try:
        backend = cluster.backend
        assert isinstance(backend, SimulatedCluster)
        cluster.launch(make_task("victim", ("never-run",)), agent_id="sim-a")
        cluster.offer("sim-b")  # held while node-a goes away
        backend.stop_agent("node-a")
        backend.stop_agent("node-a")  # already stopped: nothing more happens
        assert cluster.statuses("victim")[-1] is TaskStatus.LOST
        assert backend.running_count() == 0
        assert backend.invariant_violations() == []
        assert backend.free_amounts()[0].sum() == 0.0
        backend.start_agent("node-a")
        backend.start_agent("node-a")  # alive again: no second restart
        assert [a.agent_id for a in backend.agents()] == ["sim-a.1", "sim-b"]
        assert backend.used("sim-a.1").is_zero()
        assert backend.invariant_violations() == []
    finally:
        cluster.close()
