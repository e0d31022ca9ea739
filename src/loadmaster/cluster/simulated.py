"""A simulated cluster: agents that exist only as numbers, under a virtual clock.

It is a full `ClusterBackend` (and so the core's client): each call to `collect_offers` offers
every agent's free resources, `combine_offers` starts the tasks, and each task finishes after
the run time the owner's `run_time` function gives it — the trace's, in a replay. Nothing
happens between calls: the backend looks at the clock when it is called and reports what
happened up to then, in order.

Amounts are kept as integers of micro-units, so a million launches and finishes leave no
float residue behind: a node that is empty again offers exactly its size, and the over-commit
check (`OverCommitError`) is exact. Accepting tasks beyond the offers used is a scheduler bug
the simulator must expose, never absorb.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from loadmaster.cluster.protocol import AgentInfo
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import STANDARD_NAMES, Resources

UNITS_PER_AMOUNT = 1_000_000
RunTime = Callable[[Task], float | None]
IntMatrix = npt.NDArray[np.int64]


class Clock(Protocol):
    def now(self) -> datetime: ...


class OverCommitError(RuntimeError):
    """Tasks were launched beyond the offers they came with, or beyond the agent's size."""


@dataclass(slots=True)
class _RunningTask:
    task_id: str
    agent_index: int
    units: npt.NDArray[np.int64]
    ends: datetime


@dataclass(slots=True)
class _Outstanding:
    agent_index: int
    units: npt.NDArray[np.int64]


@dataclass(slots=True)
class SimulatedCluster:
    """Agents in the given order; `run_time(task)` is the task's run time in seconds (None or
    a negative value: it ends at once, as node and system tasks do in a replay)."""

    clock: Clock
    agent_infos: Sequence[AgentInfo]
    run_time: RunTime
    framework: str = "simulated"
    name: str = "simulated"
    resource_names: tuple[str, ...] = ()
    _index: dict[str, int] = field(default_factory=dict)
    _total: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _used: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _held: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _offers: dict[str, _Outstanding] = field(default_factory=dict)
    _running: dict[str, _RunningTask] = field(default_factory=dict)
    _ends: list[tuple[datetime, int, str]] = field(default_factory=list)
    _updates: list[TaskStatusUpdate] = field(default_factory=list)
    _known_tasks: set[str] = field(default_factory=set)
    _shapes: dict[bytes, Resources] = field(default_factory=dict)
    _sequence: int = 0
    _offer_counter: int = 0
    _started: bool = False
    _stopped: bool = False

    def __post_init__(self) -> None:
        names: list[str] = list(STANDARD_NAMES)
        for info in self.agent_infos:
            names.extend(n for n in info.total.names() if n not in names)
        self.resource_names = tuple(names)
        self._index = {info.agent_id: i for i, info in enumerate(self.agent_infos)}
        if len(self._index) != len(self.agent_infos):
            raise ValueError("simulated cluster: agent ids must be unique")
        self._total = np.array(
            [self._units(info.total) for info in self.agent_infos], dtype=np.int64
        ).reshape(len(self.agent_infos), len(names))
        self._used = np.zeros_like(self._total)
        self._held = np.zeros_like(self._total)

    # -- conversions --------------------------------------------------------------------------
    def _units(self, res: Resources) -> list[int]:
        return [round(res.get(name) * UNITS_PER_AMOUNT) for name in self.resource_names]

    def _task_units(self, task: Task) -> npt.NDArray[np.int64]:
        for name, value in task.resources.items():
            if value > 0 and name not in self.resource_names:
                raise OverCommitError(f"task {task.id} needs {name}, which no agent has")
        return np.array(self._units(task.resources), dtype=np.int64)

    def _resources(self, units: npt.NDArray[np.int64]) -> Resources:
        """Resources are immutable, so identical amounts (idle nodes of one shape) share one."""
        key = units.tobytes()
        found = self._shapes.get(key)
        if found is None:
            found = self._shapes[key] = self._new_resources(units)
        return found

    def _new_resources(self, units: npt.NDArray[np.int64]) -> Resources:
        return Resources(
            {
                name: int(u) / UNITS_PER_AMOUNT
                for name, u in zip(self.resource_names, units, strict=True)
            }
        )

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._started = True

    def shutdown(self, kill_tasks: bool) -> None:
        if kill_tasks:
            for task_id, running in list(self._running.items()):
                self.kill_task(task_id, self.agent_infos[running.agent_index].agent_id)
        self._offers.clear()
        self._held[:] = 0
        self._stopped = True

    def is_healthy(self) -> bool:
        return self._started and not self._stopped

    def framework_id(self) -> str | None:
        return self.framework if self.is_healthy() else None

    def agents(self) -> list[AgentInfo]:
        return list(self.agent_infos)

    # -- time ---------------------------------------------------------------------------------
    def _advance(self) -> None:
        """Finish every task whose end has come, in end order (ties: launch order)."""
        now = self.clock.now()
        ends = self._ends
        while ends and ends[0][0] <= now:
            ended_at, _, task_id = heapq.heappop(ends)
            running = self._running.get(task_id)
            if running is None or running.ends != ended_at:
                continue  # killed earlier
            del self._running[task_id]
            self._used[running.agent_index] -= running.units
            agent_id = self.agent_infos[running.agent_index].agent_id
            self._updates.append(
                TaskStatusUpdate(task_id, agent_id, TaskStatus.FINISHED, ended_at, exit_code=0)
            )

    def next_event_time(self) -> datetime | None:
        """When the next running task ends (None when nothing runs)."""
        ends = self._ends
        while ends:
            ended_at, _, task_id = ends[0]
            running = self._running.get(task_id)
            if running is not None and running.ends == ended_at:
                return ended_at
            heapq.heappop(ends)
        return None

    # -- offers -------------------------------------------------------------------------------
    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        """One offer per agent with anything free that is not already offered."""
        if not self.is_healthy():
            return []
        self._advance()
        free = self._total - self._used - self._held
        offers: list[ResourceOffer] = []
        for index in np.flatnonzero((free > 0).any(axis=1)):
            units = free[index].copy()
            self._offer_counter += 1
            offer_id = f"sim-offer-{self._offer_counter}"
            agent_id = self.agent_infos[int(index)].agent_id
            self._offers[offer_id] = _Outstanding(int(index), units)
            self._held[index] += units
            offers.append(ResourceOffer(offer_id, agent_id, self._resources(units), when))
        return offers

    def _take_offer(self, offer: ResourceOffer) -> _Outstanding:
        held = self._offers.pop(offer.id, None)
        if held is None:
            raise OverCommitError(f"offer {offer.id} is not outstanding (used or declined)")
        self._held[held.agent_index] -= held.units
        return held

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        if not offers:
            if tasks:
                raise OverCommitError("tasks launched without an offer")
            return
        taken = [self._take_offer(offer) for offer in offers]
        agent_index = taken[0].agent_index
        if any(t.agent_index != agent_index for t in taken):
            raise OverCommitError("one launch combined offers of several agents")
        agent_id = self.agent_infos[agent_index].agent_id
        offered = sum((t.units for t in taken), np.zeros(len(self.resource_names), np.int64))
        units = [self._task_units(task) for task in tasks]
        needed = sum(units, np.zeros(len(self.resource_names), np.int64))
        if (needed > offered).any():
            raise OverCommitError(
                f"agent {agent_id}: tasks need {self._resources(needed)} "
                f"but the offers hold {self._resources(offered)}"
            )
        if (self._used[agent_index] + needed > self._total[agent_index]).any():
            raise OverCommitError(f"agent {agent_id}: tasks exceed the agent's size")
        now = self.clock.now()
        for task, task_units in zip(tasks, units, strict=True):
            if task.agent_id not in (None, agent_id):
                raise OverCommitError(
                    f"task {task.id} is for agent {task.agent_id}, not {agent_id}"
                )
            self._launch(task, agent_index, agent_id, task_units, now)

    def _launch(
        self,
        task: Task,
        agent_index: int,
        agent_id: str,
        units: npt.NDArray[np.int64],
        now: datetime,
    ) -> None:
        seconds = self.run_time(task)
        ends = now + timedelta(seconds=max(seconds or 0.0, 0.0))
        self._used[agent_index] += units
        self._running[task.id] = _RunningTask(task.id, agent_index, units, ends)
        self._known_tasks.add(task.id)
        self._sequence += 1
        heapq.heappush(self._ends, (ends, self._sequence, task.id))
        self._updates.append(TaskStatusUpdate(task.id, agent_id, TaskStatus.RUNNING, now))

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        for offer in offers:
            held = self._offers.pop(offer.id, None)
            if held is not None:
                self._held[held.agent_index] -= held.units

    # -- tasks --------------------------------------------------------------------------------
    def kill_task(self, task_id: str, agent_id: str) -> None:
        running = self._running.pop(task_id, None)
        if running is None:
            return
        self._used[running.agent_index] -= running.units
        self._updates.append(
            TaskStatusUpdate(task_id, agent_id, TaskStatus.KILLED, self.clock.now())
        )

    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        now = self.clock.now()
        for task_id, agent_id in tasks:
            status = TaskStatus.RUNNING if task_id in self._running else TaskStatus.LOST
            self._updates.append(TaskStatusUpdate(task_id, agent_id, status, now))

    def collect_updates(self) -> list[TaskStatusUpdate]:
        self._advance()
        out, self._updates = self._updates, []
        return out

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Simulated tasks print nothing."""
        if task_id not in self._known_tasks:
            raise KeyError(task_id)
        return b""

    # -- inspection (metrics and tests) -------------------------------------------------------
    def running_count(self) -> int:
        return len(self._running)

    def used(self, agent_id: str) -> Resources:
        return self._resources(self._used[self._index[agent_id]])

    def free_amounts(self) -> npt.NDArray[np.float64]:
        """Free (not running, offers included) amounts per agent × resource name."""
        free: npt.NDArray[np.float64] = (self._total - self._used) / UNITS_PER_AMOUNT
        return free

    def used_total(self) -> npt.NDArray[np.float64]:
        used: npt.NDArray[np.float64] = self._used.sum(axis=0) / UNITS_PER_AMOUNT
        return used

    def capacity_total(self) -> npt.NDArray[np.float64]:
        cap: npt.NDArray[np.float64] = self._total.sum(axis=0) / UNITS_PER_AMOUNT
        return cap

    def invariant_violations(self) -> list[str]:
        """Every way the books can be wrong; empty when a node was never over-committed."""
        problems: list[str] = []
        for index, info in enumerate(self.agent_infos):
            used, held, size = self._used[index], self._held[index], self._total[index]
            if (used < 0).any() or (held < 0).any():
                problems.append(f"{info.agent_id}: negative usage")
            if (used + held > size).any():
                problems.append(
                    f"{info.agent_id}: running {self._resources(used)} + offered "
                    f"{self._resources(held)} exceed {info.total}"
                )
        running = np.zeros_like(self._used)
        for task in self._running.values():
            running[task.agent_index] += task.units
        if (running != self._used).any():
            problems.append("usage does not match the running tasks")
        return problems
