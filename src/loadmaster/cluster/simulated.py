"""A simulated cluster: agents that exist only as numbers, under a virtual clock.

It is a full `ClusterBackend` (and so the core's client): each call to `collect_offers` offers
every agent's free resources, `combine_offers` starts the tasks, and each task finishes after
the run time the owner's `run_time` function gives it — the trace's, in a replay. Nothing
happens between calls: the backend looks at the clock when it is called and reports what
happened up to then, in order.

It answers like the other backends (tests/cluster/contract.py): tasks go STAGING then
RUNNING at launch; offers are spent by a launch either way; tasks launched on offers that are
not outstanding are LOST and tasks needing more than their offers FAILED; a kill or a
reconciliation of an unknown task is answered LOST, of an ended one with how it ended.
`stop_agent` takes an agent away (its tasks are LOST, its offers void) and `start_agent` brings
it back empty under a new agent id, as a restarted agent registers anew.
With `strict`, the two launch errors raise `OverCommitError` instead: in a replay they can only
be a scheduler bug, which the simulator must expose, never absorb.

Amounts are kept as integers of micro-units, so a million launches and finishes leave no
float residue behind: a node that is empty again offers exactly its size, and the over-commit
checks are exact.
"""

from __future__ import annotations

import heapq
import threading
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
SHAPE_CACHE_SIZE = 10_000
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
    strict: bool = False
    name: str = "simulated"
    resource_names: tuple[str, ...] = ()
    _index: dict[str, int] = field(default_factory=dict)
    _total: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _used: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _held: IntMatrix = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    _up: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    _offers: dict[str, _Outstanding] = field(default_factory=dict)
    _running: dict[str, _RunningTask] = field(default_factory=dict)
    _ends: list[tuple[datetime, int, str]] = field(default_factory=list)
    _updates: list[TaskStatusUpdate] = field(default_factory=list)
    _ended: dict[str, TaskStatusUpdate] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _shapes: dict[bytes, Resources] = field(default_factory=dict)
    _sequence: int = 0
    _offer_counter: int = 0
    _restarts: int = 0
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
        self._up = np.ones(len(self.agent_infos), dtype=np.bool_)

    # -- conversions --------------------------------------------------------------------------
    def _units(self, res: Resources) -> list[int]:
        return [round(res.get(name) * UNITS_PER_AMOUNT) for name in self.resource_names]

    def _task_units(self, task: Task) -> npt.NDArray[np.int64] | str:
        """The task's amounts, or what is wrong with it."""
        for name, value in task.resources.items():
            if value > 0 and name not in self.resource_names:
                return f"task {task.id} needs {name}, which no agent has"
        return np.array(self._units(task.resources), dtype=np.int64)

    def _resources(self, units: npt.NDArray[np.int64]) -> Resources:
        """Resources are immutable, so identical amounts (idle nodes of one shape) share one."""
        key = units.tobytes()
        found = self._shapes.get(key)
        if found is None:
            if len(self._shapes) >= SHAPE_CACHE_SIZE:
                self._shapes.clear()
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
        with self._lock:
            self._offers.clear()
            self._held[:] = 0
            self._stopped = True

    def is_healthy(self) -> bool:
        return self._started and not self._stopped

    def framework_id(self) -> str | None:
        return self.framework if self.is_healthy() else None

    def agents(self) -> list[AgentInfo]:
        return [info for info, up in zip(self.agent_infos, self._up, strict=True) if up]

    # -- agent failure ------------------------------------------------------------------------
    def _live_index(self, hostname: str) -> int | None:
        for index, info in enumerate(self.agent_infos):
            if info.hostname == hostname and self._up[index]:
                return index
        return None

    def stop_agent(self, hostname: str) -> None:
        """The agent goes away: its running tasks are LOST, its outstanding offers are void
        (tasks launched on them are LOST) and it offers nothing until started again."""
        with self._lock:
            self._advance()
            index = self._live_index(hostname)
            if index is None:
                return
            self._up[index] = False
            for offer_id in [o for o, held in self._offers.items() if held.agent_index == index]:
                del self._offers[offer_id]
            self._held[index] = 0
            agent_id = self.agent_infos[index].agent_id
            now = self.clock.now()
            for task_id in [t for t, run in self._running.items() if run.agent_index == index]:
                del self._running[task_id]
                message = f"agent {agent_id} stopped"
                self._emit(
                    TaskStatusUpdate(task_id, agent_id, TaskStatus.LOST, now, message=message)
                )
            self._used[index] = 0

    def start_agent(self, hostname: str) -> None:
        """A stopped agent comes back empty, with its size and a new agent id (a no-op while it
        is alive)."""
        with self._lock:
            if self._live_index(hostname) is not None:
                return
            index = next(i for i, info in enumerate(self.agent_infos) if info.hostname == hostname)
            old = self.agent_infos[index]
            agent_id = old.agent_id
            while agent_id in self._index:
                self._restarts += 1
                agent_id = f"{old.agent_id}.{self._restarts}"
            infos = list(self.agent_infos)
            infos[index] = AgentInfo(agent_id, old.hostname, old.total)
            self.agent_infos = infos
            del self._index[old.agent_id]
            self._index[agent_id] = index
            self._up[index] = True

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
            self._emit(TaskStatusUpdate(task_id, agent_id, TaskStatus.FINISHED, ended_at, 0))

    def _emit(self, update: TaskStatusUpdate) -> None:
        self._updates.append(update)
        if update.status.is_terminal:
            self._ended[update.task_id] = update

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

    def last_end_time(self) -> datetime | None:
        """When the last running task ends (None when nothing runs)."""
        return max((running.ends for running in self._running.values()), default=None)

    # -- offers -------------------------------------------------------------------------------
    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        """One offer per agent with anything free that is not already offered."""
        with self._lock:
            if not self.is_healthy():
                return []
            self._advance()
            return self._offer_free(when)

    def _offer_free(self, when: datetime) -> list[ResourceOffer]:
        free = self._total - self._used - self._held
        offers: list[ResourceOffer] = []
        for index in np.flatnonzero((free > 0).any(axis=1) & self._up):
            units = free[index].copy()
            self._offer_counter += 1
            offer_id = f"sim-offer-{self._offer_counter}"
            agent_id = self.agent_infos[int(index)].agent_id
            self._offers[offer_id] = _Outstanding(int(index), units)
            self._held[index] += units
            offers.append(ResourceOffer(offer_id, agent_id, self._resources(units), when))
        return offers

    def _spend(
        self, offers: Sequence[ResourceOffer]
    ) -> tuple[int | None, npt.NDArray[np.int64], str]:
        """Take the offers out (spent whatever happens next): their agent and the amounts
        they really hold (not what the caller's copies say), or the problem."""
        problem = ""
        agents: set[int] = set()
        offered = np.zeros(len(self.resource_names), np.int64)
        for offer in offers:
            held = self._offers.pop(offer.id, None)
            if held is None:
                problem = f"offer {offer.id} is not outstanding (used or declined)"
                continue
            self._held[held.agent_index] -= held.units
            offered += held.units
            agents.add(held.agent_index)
        if not offers:
            problem = "no offer was given for the tasks"
        elif len(agents) > 1:
            problem = "offers of more than one agent"
        elif not self.is_healthy():
            problem = "the simulated cluster is not running"
        if problem or not agents:
            return None, offered, problem
        return agents.pop(), offered, ""

    def _reject(self, tasks: Sequence[Task], status: TaskStatus, problem: str) -> None:
        if self.strict and tasks:
            raise OverCommitError(problem)
        now = self.clock.now()
        for task in tasks:
            self._emit(TaskStatusUpdate(task.id, task.agent_id or "", status, now, message=problem))

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        with self._lock:
            self._advance()
            agent_index, offered, problem = self._spend(offers)
            if agent_index is None:
                self._reject(tasks, TaskStatus.LOST, problem)
                return
            agent_id = self.agent_infos[agent_index].agent_id
            units: list[npt.NDArray[np.int64]] = []
            for task in tasks:
                found = self._task_units(task)
                if isinstance(found, str) or task.agent_id not in (None, agent_id):
                    wrong = (
                        found if isinstance(found, str) else f"task {task.id} is not for {agent_id}"
                    )
                    self._reject(tasks, TaskStatus.FAILED, wrong)
                    return
                units.append(found)
            needed = sum(units, np.zeros(len(self.resource_names), np.int64))
            if (needed > offered).any() or (
                self._used[agent_index] + needed > self._total[agent_index]
            ).any():
                self._reject(
                    tasks,
                    TaskStatus.FAILED,
                    f"agent {agent_id}: tasks need {self._new_resources(needed)} "
                    f"but the offers hold {self._new_resources(offered)}",
                )
                return
            now = self.clock.now()
            for task, task_units in zip(tasks, units, strict=True):
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
        self._ended.pop(task.id, None)
        self._sequence += 1
        heapq.heappush(self._ends, (ends, self._sequence, task.id))
        self._emit(TaskStatusUpdate(task.id, agent_id, TaskStatus.STAGING, now))
        self._emit(TaskStatusUpdate(task.id, agent_id, TaskStatus.RUNNING, now))

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        with self._lock:
            for offer in offers:
                held = self._offers.pop(offer.id, None)
                if held is not None:
                    self._held[held.agent_index] -= held.units

    # -- tasks --------------------------------------------------------------------------------
    def _answer(self, task_id: str, agent_id: str, now: datetime) -> TaskStatusUpdate:
        """What a task is now: running, how it ended, or LOST when never seen."""
        if task_id in self._running:
            agent = self.agent_infos[self._running[task_id].agent_index].agent_id
            return TaskStatusUpdate(task_id, agent, TaskStatus.RUNNING, now)
        ended = self._ended.get(task_id)
        if ended is not None:
            return TaskStatusUpdate(
                task_id, ended.agent_id, ended.status, now, ended.exit_code, ended.message
            )
        return TaskStatusUpdate(task_id, agent_id, TaskStatus.LOST, now, message="unknown task")

    def kill_task(self, task_id: str, agent_id: str) -> None:
        with self._lock:
            self._advance()
            running = self._running.pop(task_id, None)
            now = self.clock.now()
            if running is None:
                self._updates.append(self._answer(task_id, agent_id, now))
                return
            self._used[running.agent_index] -= running.units
            agent = self.agent_infos[running.agent_index].agent_id
            self._emit(TaskStatusUpdate(task_id, agent, TaskStatus.KILLED, now))

    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            self._advance()
            now = self.clock.now()
            self._updates.extend(
                self._answer(task_id, agent_id, now) for task_id, agent_id in tasks
            )

    def collect_updates(self) -> list[TaskStatusUpdate]:
        with self._lock:
            self._advance()
            out, self._updates = self._updates, []
        return out

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Simulated tasks print nothing."""
        if task_id not in self._running and task_id not in self._ended:
            raise KeyError(task_id)
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        return b""

    # -- inspection (metrics and tests) -------------------------------------------------------
    def running_count(self) -> int:
        return len(self._running)

    def used(self, agent_id: str) -> Resources:
        return self._resources(self._used[self._index[agent_id]])

    def free_amounts(self) -> npt.NDArray[np.float64]:
        """Free (not running, offers included) amounts per agent × resource name; a stopped
        agent has nothing free."""
        free: npt.NDArray[np.float64] = (self._total - self._used) / UNITS_PER_AMOUNT
        free[~self._up] = 0.0
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
