"""The local cluster backend: agents on this machine, tasks as real process groups.

Each agent is a share of this machine with its own directory `<work_dir>/<agent name>/`.
Every task runs inside `python -m loadmaster.cluster.runner` (see `runner`), which leaves its
pid and exit in the task directory. That directory is the source of truth: a backend polls it
for status, and a new backend on the same work dir finds tasks of an earlier one there
(`start` adopts the live ones so that their resources are not offered twice, `reconcile`
answers for any of them).

One watcher thread polls the running tasks every `poll_interval_seconds` (status changes, and
the SIGKILL that follows a SIGTERM after the grace period), so status updates keep coming
however often the service collects them; every public method takes one lock, so the backend
may be called from any thread.

Agent ids are `<name>-<n>`, with n counted per agent in `<agent dir>/agent.json` so that a
restarted agent (or a restarted backend) never reuses an id; the file also lists every id the
hostname had. A task reports under the agent id it was launched with, also after a restart.
A reconcile of a live task switches it to the id the caller names when that id is one of the
same hostname's (so the caller can route the answer); an id of another hostname, or one never
seen, gets the answer under the task's hostname's current id instead: the task is there, not
where the caller thought. Answers about ended or unknown tasks carry the caller's id.

One backend per work dir at a time: two would adopt and report the same tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadmaster.cluster.launch_checks import launch_checked, offers_problem
from loadmaster.cluster.local_config import LocalAgentSpec, LocalBackendConfig
from loadmaster.cluster.local_process import LocalTask, ended_change, start_runner
from loadmaster.cluster.local_taskdir import (
    TASKS_DIR,
    ExitRecord,
    RunnerRecord,
    TaskDir,
    execution_work_dir,
    is_safe_name,
    read_json,
    task_dirs,
    write_json_atomic,
)
from loadmaster.cluster.protocol import AgentInfo
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources, total

_log = logging.getLogger(__name__)

AGENT_FILE = "agent.json"
TASK_ID_ENV = "LOADMASTER_TASK_ID"
WORK_DIR_ENV = "LOADMASTER_WORK_DIR"
# How much longer than the grace period `shutdown(kill_tasks=True)` waits for tasks to go.
SHUTDOWN_EXTRA_SECONDS = 5.0
REAP_INTERVAL_SECONDS = 0.1


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class _Agent:
    spec: LocalAgentSpec
    dir: Path
    agent_id: str = ""
    alive: bool = False
    offer_id: str | None = None
    known_ids: set[str] = field(default_factory=set)  # every id this hostname ever had


class LocalBackend:
    """A `ClusterBackend` running tasks as subprocesses of this machine."""

    __slots__ = (
        "_agents",
        "_clock",
        "_config",
        "_detached",
        "_lock",
        "_offer_counter",
        "_offers",
        "_started",
        "_stop",
        "_stopped",
        "_tasks",
        "_updates",
        "_watcher",
        "name",
    )

    def __init__(self, config: LocalBackendConfig, clock: Callable[[], datetime] = utc_now):
        self.name = "local"
        self._config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._agents: dict[str, _Agent] = {}
        self._tasks: dict[str, LocalTask] = {}
        self._offers: dict[str, ResourceOffer] = {}
        self._updates: list[TaskStatusUpdate] = []
        self._detached: list[subprocess.Popen[bytes]] = []  # killed runners still to be reaped
        self._offer_counter = 0
        self._started = False
        self._stopped = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._stopped:
                raise RuntimeError("this backend was shut down; create a new one")
            if self._started:
                return
            self._config.work_dir.mkdir(parents=True, exist_ok=True)
            for spec in self._config.resolved_agents():
                agent = _Agent(spec, self._config.work_dir / spec.name)
                self._agents[spec.name] = agent
                self._bring_up(agent)
            self._started = True
            self._watcher = threading.Thread(
                target=self._watch, name="loadmaster-local-watcher", daemon=True
            )
            self._watcher.start()

    def shutdown(self, kill_tasks: bool) -> None:
        """Blocks while killing (at most the grace period and a little more): a service that
        shuts down with kill_tasks must not leave processes behind."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._offers.clear()
            for agent in self._agents.values():
                agent.offer_id = None
            self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        if not kill_tasks:
            with self._lock:  # they run on and record their exit for the next backend
                pending = self._detached + [t.popen for t in self._tasks.values() if t.popen]
                self._detached = []
                self._tasks.clear()
            if pending:
                threading.Thread(
                    target=_reap, args=(pending,), name="loadmaster-local-reaper", daemon=True
                ).start()
            return
        with self._lock:
            now = time.monotonic()
            for task in self._tasks.values():
                task.request_kill("shutdown", self._config.kill_grace_seconds, now)
        deadline = time.monotonic() + self._config.kill_grace_seconds + SHUTDOWN_EXTRA_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                self._poll()
                if not self._tasks and not self._detached:
                    return
            time.sleep(self._config.poll_interval_seconds)

    def is_healthy(self) -> bool:
        with self._lock:
            watcher = self._watcher
            return self._running() and watcher is not None and watcher.is_alive()

    def framework_id(self) -> str | None:
        with self._lock:
            return self._config.framework_id if self._running() else None

    def _running(self) -> bool:
        return self._started and not self._stopped

    # -- agents -------------------------------------------------------------------------------
    def agents(self) -> list[AgentInfo]:
        with self._lock:
            if not self._running():
                return []
            return [
                AgentInfo(a.agent_id, a.spec.name, a.spec.resources)
                for a in self._agents.values()
                if a.alive
            ]

    def stop_agent(self, name: str) -> None:
        """The agent dies: its tasks are killed at once (SIGKILL) and reported LOST, its offer
        is gone. Raises KeyError for an unknown name; stopping a stopped agent does nothing."""
        with self._lock:
            agent = self._agents[name]
            if not agent.alive:
                return
            agent.alive = False
            if agent.offer_id is not None:
                self._offers.pop(agent.offer_id, None)
                agent.offer_id = None
            for task in [t for t in self._tasks.values() if t.agent_name == name]:
                task.signal_group(signal.SIGKILL)
                if task.popen is not None and task.popen.poll() is None:
                    self._detached.append(task.popen)
                del self._tasks[task.task_id]
                self._emit(task, TaskStatus.LOST, message=f"agent {agent.agent_id} stopped")

    def start_agent(self, name: str) -> None:
        """Bring a stopped agent back under a new agent id (same hostname)."""
        with self._lock:
            if not self._running():
                raise RuntimeError("the backend is not running")
            agent = self._agents[name]
            if not agent.alive:
                self._bring_up(agent)

    def _bring_up(self, agent: _Agent) -> None:
        (agent.dir / TASKS_DIR).mkdir(parents=True, exist_ok=True)
        history = read_json(agent.dir / AGENT_FILE) or {}
        ids = [str(i) for i in history.get("agent_ids", []) if isinstance(i, str)]
        number = len(ids) + 1
        while f"{agent.spec.name}-{number}" in ids:
            number += 1
        agent.agent_id = f"{agent.spec.name}-{number}"
        ids.append(agent.agent_id)
        write_json_atomic(agent.dir / AGENT_FILE, {"hostname": agent.spec.name, "agent_ids": ids})
        agent.known_ids = set(ids)
        agent.alive = True
        for task_dir in task_dirs(agent.dir):
            if task_dir.task_id not in self._tasks:
                runner = task_dir.live_runner()
                if runner is not None:
                    self._adopt(agent, task_dir, runner)

    def _adopt(self, agent: _Agent, task_dir: TaskDir, runner: RunnerRecord) -> LocalTask:
        """Track a task an earlier backend launched; it reports under its launch agent id."""
        info = task_dir.read_task() or {}
        task = LocalTask(
            task_dir.task_id,
            agent.spec.name,
            str(info.get("agent_id") or agent.agent_id),
            _resources_of(info.get("resources")),
            task_dir,
            runner=runner,
            reported_running=runner.command_pid is not None,
        )
        self._tasks[task.task_id] = task
        return task

    # -- offers -------------------------------------------------------------------------------
    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        """One offer per live agent that has none outstanding; an agent with nothing free
        offers nothing (as a Mesos agent does)."""
        with self._lock:
            if not self._running():
                return []
            offers: list[ResourceOffer] = []
            for agent in self._agents.values():
                if not agent.alive or agent.offer_id is not None:
                    continue
                free = self._free(agent)
                if all(value <= 0.0 for _, value in free.items()):
                    continue
                self._offer_counter += 1
                offer = ResourceOffer(
                    f"{agent.agent_id}-offer-{self._offer_counter}", agent.agent_id, free, when
                )
                self._offers[offer.id] = offer
                agent.offer_id = offer.id
                offers.append(offer)
            return offers

    def _free(self, agent: _Agent) -> Resources:
        used = total(t.resources for t in self._tasks.values() if t.agent_name == agent.spec.name)
        free = agent.spec.resources.subtract(used)
        return Resources({name: max(value, 0.0) for name, value in free.items()}).round_values()

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        with self._lock:
            for offer in offers:
                self._drop_offer(offer.id)

    def _drop_offer(self, offer_id: str) -> ResourceOffer | None:
        offer = self._offers.pop(offer_id, None)
        for agent in self._agents.values():
            if agent.offer_id == offer_id:
                agent.offer_id = None
        return offer

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        """Use the offers (they are spent either way) and launch the tasks on their agent.

        Invalid offers make every task LOST (it may be launched again elsewhere); a task that
        is itself invalid, or tasks that need more than the offers hold, are FAILED (Mesos'
        TASK_LOST and TASK_ERROR)."""
        with self._lock:
            agent, problem = self._offers_agent(offers)
            for offer in offers:
                self._drop_offer(offer.id)
            launch_checked(
                offers,
                tasks,
                agent.agent_id if agent is not None else None,
                problem,
                self._tasks,
                self._emit_for,
                lambda task: self._launch(agent, task),  # type: ignore[arg-type]
            )

    def _offers_agent(self, offers: Sequence[ResourceOffer]) -> tuple[_Agent | None, str]:
        if not self._running():
            return None, "the local backend is not running"
        problem = offers_problem(offers, self._offers)
        if problem is not None:
            return None, problem
        agent = next((a for a in self._agents.values() if a.agent_id == offers[0].agent_id), None)
        if agent is None or not agent.alive:
            return None, f"agent {offers[0].agent_id} is not alive"
        return agent, ""

    def _launch(self, agent: _Agent, task: Task) -> None:
        task_dir = TaskDir.of(agent.dir, task.id)
        tracked = LocalTask(task.id, agent.spec.name, agent.agent_id, task.resources, task_dir)
        self._tasks[task.id] = tracked
        self._emit(tracked, TaskStatus.STAGING)
        argv = _argv(task)
        try:
            if task_dir.path.exists():
                if task_dir.live_runner() is not None:
                    raise _LaunchError(f"a task {task.id} is still running in {task_dir.path}")
                shutil.rmtree(task_dir.path)  # an ended task of the same id: ids may be reused
            task_dir.path.mkdir(parents=True)
            task_dir.write_task(_task_record(task, agent, argv, self._clock()))
            env = dict(os.environ)
            env.update(task.environment)
            env[TASK_ID_ENV] = task.id
            work_dir = execution_work_dir(agent.dir, task.environment) or task_dir.path
            work_dir.mkdir(parents=True, exist_ok=True)
            env[WORK_DIR_ENV] = str(work_dir)
            python = self._config.python_executable or sys.executable
            tracked.popen = start_runner(python, task_dir, argv, env, cwd=work_dir)
        except (OSError, _LaunchError) as exc:
            del self._tasks[task.id]
            message = f"cannot launch the task: {exc}"
            if task_dir.path.is_dir():
                with contextlib.suppress(OSError):
                    task_dir.write_exit(ExitRecord(None, None, message, False))
            self._emit(tracked, TaskStatus.FAILED, message=message)

    # -- killing ------------------------------------------------------------------------------
    def kill_task(self, task_id: str, agent_id: str) -> None:
        """SIGTERM to the task's process group, SIGKILL after the grace period, KILLED once it
        is gone. A task that already ended is answered with how it ended; an unknown one LOST."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                task = self._reconcile_one(task_id, agent_id)
            if task is not None:
                task.request_kill("kill_task", self._config.kill_grace_seconds, time.monotonic())

    # -- watching -----------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(self._config.poll_interval_seconds):
            with self._lock:
                try:
                    self._poll()
                except Exception:  # one unreadable task must not stop the others' updates
                    _log.exception("local backend: polling tasks failed")

    def _poll(self) -> None:
        now = time.monotonic()
        for task in list(self._tasks.values()):
            changes, ended = task.poll(now)
            for change in changes:
                self._emit(task, change.status, change.exit_code, change.message)
            if ended:
                del self._tasks[task.task_id]
        self._detached = [p for p in self._detached if p.poll() is None]

    # -- reconciliation -----------------------------------------------------------------------
    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            for task_id, agent_id in tasks:
                self._reconcile_one(task_id, agent_id)

    def _reconcile_one(self, task_id: str, agent_id: str) -> LocalTask | None:
        """Answer for one task; returns it when it is live (and now tracked)."""
        task = self._tasks.get(task_id)
        if task is None:
            found = self._find_task_dir(task_id)
            if found is None:
                self._emit_for(task_id, agent_id, TaskStatus.LOST, message="unknown task")
                return None
            agent, task_dir = found
            ended = task_dir.read_exit()
            runner = task_dir.live_runner() if ended is None and agent.alive else None
            if runner is None:
                ended = ended or task_dir.read_exit()
                if ended is None:
                    message = "the task's runner is gone without recording an exit"
                    self._emit_for(task_id, agent_id, TaskStatus.LOST, message=message)
                else:
                    change = ended_change(task_dir, ended)
                    self._emit_for(
                        task_id, agent_id, change.status, change.exit_code, change.message
                    )
                return None
            task = self._adopt(agent, task_dir, runner)
        agent = self._agents[task.agent_name]
        task.report_agent_id = agent_id if agent_id in agent.known_ids else agent.agent_id
        self._emit(task, TaskStatus.RUNNING if task.reported_running else TaskStatus.STAGING)
        return task

    def _find_task_dir(self, task_id: str) -> tuple[_Agent, TaskDir] | None:
        if not is_safe_name(task_id):
            return None
        for agent in self._agents.values():
            task_dir = TaskDir.of(agent.dir, task_id)
            if task_dir.path.is_dir():
                return agent, task_dir
        return None

    # -- updates and logs ---------------------------------------------------------------------
    def collect_updates(self) -> list[TaskStatusUpdate]:
        with self._lock:
            updates, self._updates = self._updates, []
            return updates

    def _emit(
        self,
        task: LocalTask,
        status: TaskStatus,
        exit_code: int | None = None,
        message: str | None = None,
    ) -> None:
        self._emit_for(task.task_id, task.report_agent_id, status, exit_code, message)

    def _emit_for(
        self,
        task_id: str,
        agent_id: str,
        status: TaskStatus,
        exit_code: int | None = None,
        message: str | None = None,
    ) -> None:
        self._updates.append(
            TaskStatusUpdate(
                task_id, agent_id, status, self._clock(), exit_code, message, source="local"
            )
        )

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        with self._lock:
            task = self._tasks.get(task_id)
            found = self._find_task_dir(task_id) if task is None else (None, task.dir)
        if found is None:
            raise KeyError(task_id)
        path = found[1].log_path(stream)
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(-1 if length is None else length)
        except FileNotFoundError:
            return b""


class _LaunchError(Exception):
    pass


def _argv(task: Task) -> list[str]:
    if task.shell and task.command:
        return ["/bin/sh", "-c", task.command[0]]
    return list(task.command)


def _task_record(task: Task, agent: _Agent, argv: list[str], when: datetime) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "kind": task.kind,
        "name": task.name,
        "agent_name": agent.spec.name,
        "agent_id": agent.agent_id,
        "resources": task.resources.as_dict(),
        "argv": argv,
        "launched": when.isoformat(),
    }


def _resources_of(raw: object) -> Resources:
    if not isinstance(raw, dict):
        return Resources()
    return Resources(
        {
            str(name): float(value)
            for name, value in raw.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
    )


def _reap(runners: list[subprocess.Popen[bytes]]) -> None:
    """Wait for runners left running at shutdown, so that they do not linger as zombies of a
    process that goes on (another backend may find their tasks; it reads their files)."""
    while runners:
        time.sleep(REAP_INTERVAL_SECONDS)
        runners = [runner for runner in runners if runner.poll() is None]
