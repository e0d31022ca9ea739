"""The Dask backend: every worker of an existing Dask cluster is an agent.

Threads. The protocol methods never talk to Dask: they change state under one lock and queue
commands. One driver thread owns the `distributed.Client`: it connects (retrying with backoff
while the scheduler cannot be reached), submits and kills, reads the scheduler's worker list
every `poll_interval_seconds`, and turns finished futures into status updates. Dask calls back
on its own threads (future done callbacks, topic events); those only queue a command or take
the lock briefly. The lock is never held while calling the client, so a callback can never
wait for a thread that waits for Dask.

Agents. A worker's `--name` is the node's hostname; the agent id is the worker's address with
a counter of the name's sightings (`tcp://10.0.0.5:40123#2`), so a worker that restarts under
the same name — even on the same address — is the same node with a new agent id. Its total
is what it declares with `--resources` (see `dask_config.worker_resources`); its free part
(total less what the tasks we launched there hold) is offered once per cycle, outstanding
until combined or declined. A worker that leaves the scheduler is gone from `agents()` and its
tasks are LOST.

Tasks. Each is one `client.submit(run_task, …, workers=[address], allow_other_workers=False)`
under a unique key (task id plus a random suffix, as task ids may be reused). STAGING when
submitted; RUNNING when the command started (`run_task` logs an event on a topic this backend
subscribes to; an end whose command started reports RUNNING first if that event came late);
FINISHED / FAILED by exit code; KILLED when `kill_task` asked; LOST when the worker or the
connection to the scheduler is lost. Output comes back with the result, bounded in size.

Not supported: a backend does not find the tasks of an earlier one (a Dask future belongs to
its client); `reconcile` answers from what this backend knows and LOST otherwise.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from distributed import Client as _DaskClient

from loadmaster.cluster.dask_config import DaskBackendConfig, worker_hostname, worker_resources
from loadmaster.cluster.dask_remote import PLUGIN_NAME, TaskRegistry, kill_on_worker, run_task
from loadmaster.cluster.dask_tasks import (
    DaskAgent,
    TaskEnd,
    TrackedTask,
    end_from_result,
    end_without_result,
)
from loadmaster.cluster.launch_checks import launch_checked, offers_problem
from loadmaster.cluster.protocol import AgentInfo
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources, total

_log = logging.getLogger(__name__)

LIVE_WORKER_STATES = frozenset({"running", "paused"})
# `distributed` is only partly annotated: the client is handled as `Any` here.
_new_client: Callable[..., Any] = _DaskClient
SHUTDOWN_EXTRA_SECONDS = 5.0
JOIN_SECONDS = 15.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class DaskBackend:
    """A `ClusterBackend` placing tasks on the workers of a Dask cluster."""

    __slots__ = (
        "_agents",
        "_clock",
        "_commands",
        "_config",
        "_connected",
        "_driver",
        "_ended",
        "_first_attempt",
        "_lock",
        "_offer_counter",
        "_offers",
        "_sightings",
        "_started",
        "_stop",
        "_stopped",
        "_tasks",
        "_topic",
        "_updates",
        "name",
    )

    def __init__(self, config: DaskBackendConfig, clock: Callable[[], datetime] = utc_now):
        self.name = "dask"
        self._config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._agents: dict[str, DaskAgent] = {}  # by worker address
        self._sightings: dict[str, int] = {}  # per hostname: how many agents it has had
        self._tasks: dict[str, TrackedTask] = {}
        self._ended: OrderedDict[str, TaskEnd] = OrderedDict()
        self._offers: dict[str, ResourceOffer] = {}
        self._updates: list[TaskStatusUpdate] = []
        self._commands: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._offer_counter = 0
        self._topic = f"loadmaster-{uuid.uuid4().hex}"
        self._connected = False
        self._started = False
        self._stopped = False
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._driver: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the driver and wait for its first connection attempt (at most the connect
        timeout): a reachable cluster has its agents listed when `start` returns, an
        unreachable one leaves the backend unhealthy and retrying."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this backend was shut down; create a new one")
            if self._started:
                return
            self._started = True
            self._driver = threading.Thread(
                target=self._drive, name="loadmaster-dask-driver", daemon=True
            )
            self._driver.start()
        self._first_attempt.wait(self._config.connect_timeout_seconds + 5.0)

    def shutdown(self, kill_tasks: bool) -> None:
        """With kill_tasks, blocks until the tasks are gone (the grace period and a little
        more); tasks whose end did not come back by then are reported LOST."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._offers.clear()
            for agent in self._agents.values():
                agent.offer_id = None
            if kill_tasks:
                for tracked in self._tasks.values():
                    self._request_kill(tracked)
        if kill_tasks:
            deadline = time.monotonic() + self._config.kill_grace_seconds + SHUTDOWN_EXTRA_SECONDS
            while time.monotonic() < deadline:
                with self._lock:
                    if not self._tasks or not self._connected:
                        break
                time.sleep(0.02)
        with self._lock:
            for tracked in list(self._tasks.values()):
                self._untrack(tracked)
                if kill_tasks:
                    self._emit(tracked, TaskStatus.LOST, message="its end did not come back")
        self._stop.set()
        if self._driver is not None:
            self._driver.join(JOIN_SECONDS)

    def is_healthy(self) -> bool:
        with self._lock:
            driver = self._driver
            alive = driver is not None and driver.is_alive()
            return self._running() and self._connected and alive

    def framework_id(self) -> str | None:
        with self._lock:
            return self._config.framework_id if self._running() else None

    def _running(self) -> bool:
        return self._started and not self._stopped

    # -- agents and offers --------------------------------------------------------------------
    def agents(self) -> list[AgentInfo]:
        with self._lock:
            if not self._running():
                return []
            return [AgentInfo(a.agent_id, a.hostname, a.total) for a in self._agents.values()]

    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        """One offer per live worker that has none outstanding and something free."""
        with self._lock:
            if not self._running():
                return []
            offers: list[ResourceOffer] = []
            for agent in self._agents.values():
                if agent.offer_id is not None:
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

    def _free(self, agent: DaskAgent) -> Resources:
        used = total(t.resources for t in self._tasks.values() if t.agent is agent)
        free = agent.total.subtract(used)
        return Resources({name: max(value, 0.0) for name, value in free.items()}).round_values()

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        with self._lock:
            for offer in offers:
                self._drop_offer(offer.id)

    def _drop_offer(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)
        for agent in self._agents.values():
            if agent.offer_id == offer_id:
                agent.offer_id = None

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        """Spend the offers and launch the tasks on their worker. Invalid offers make every
        task LOST; an invalid task, or tasks needing more than offered, are FAILED."""
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

    def _offers_agent(self, offers: Sequence[ResourceOffer]) -> tuple[DaskAgent | None, str]:
        if not self._running():
            return None, "the dask backend is not running"
        problem = offers_problem(offers, self._offers)
        if problem is not None:
            return None, problem
        agent = next((a for a in self._agents.values() if a.agent_id == offers[0].agent_id), None)
        if agent is None:
            return None, f"agent {offers[0].agent_id} is not alive"
        return agent, ""

    def _launch(self, agent: DaskAgent, task: Task) -> None:
        key = f"loadmaster-{task.id}-{uuid.uuid4().hex[:12]}"
        argv = ["/bin/sh", "-c", task.command[0]] if task.shell and task.command else []
        argv = argv or list(task.command)
        spec: dict[str, Any] = {
            "task_id": task.id,
            "key": key,
            "hostname": agent.hostname,
            "argv": argv,
            "env": self._forwarded_env() | dict(task.environment),
            "work_dir": self._config.work_dir,
            "topic": self._topic,
            "log_limit_bytes": self._config.log_limit_bytes,
        }
        tracked = TrackedTask(task.id, key, agent, task.resources, spec)
        self._tasks[task.id] = tracked
        self._ended.pop(task.id, None)
        self._emit(tracked, TaskStatus.STAGING)
        self._commands.put(("submit", tracked))

    def _forwarded_env(self) -> dict[str, str]:
        patterns = self._config.forward_env
        return {
            name: value
            for name, value in os.environ.items()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
        }

    # -- kills and reconciliation -------------------------------------------------------------
    def kill_task(self, task_id: str, agent_id: str) -> None:
        """SIGTERM to the task's process group on its worker, SIGKILL after the grace period;
        a task still queued on the worker is cancelled. KILLED once it is gone; an ended task
        is answered with its end, an unknown one LOST."""
        with self._lock:
            tracked = self._tasks.get(task_id)
            if tracked is None:
                self._answer_untracked(task_id, agent_id)
            else:
                self._request_kill(tracked)

    def _request_kill(self, tracked: TrackedTask) -> None:
        if not tracked.kill_requested:
            tracked.kill_requested = True
            self._commands.put(("kill", tracked))

    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            for task_id, agent_id in tasks:
                tracked = self._tasks.get(task_id)
                if tracked is None:
                    self._answer_untracked(task_id, agent_id)
                else:
                    status = TaskStatus.RUNNING if tracked.reported_running else TaskStatus.STAGING
                    self._emit(tracked, status)

    def _answer_untracked(self, task_id: str, agent_id: str) -> None:
        ended = self._ended.get(task_id)
        if ended is None:
            self._emit_for(task_id, agent_id, TaskStatus.LOST, message="unknown task")
        else:
            self._emit_for(task_id, agent_id, ended.status, ended.exit_code, ended.message)

    # -- updates and logs ---------------------------------------------------------------------
    def collect_updates(self) -> list[TaskStatusUpdate]:
        with self._lock:
            updates, self._updates = self._updates, []
            return updates

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        """The head of the stream (at most `log_limit_bytes`) once the task has ended; a task
        still running has no output here yet (its full log is in its directory on the
        worker)."""
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must not be negative")
        with self._lock:
            ended = self._ended.get(task_id)
            if ended is None and task_id not in self._tasks:
                raise KeyError(task_id)
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        data = ended.logs.get(stream, b"") if ended is not None else b""
        return data[offset:] if length is None else data[offset : offset + length]

    def _emit(
        self,
        tracked: TrackedTask,
        status: TaskStatus,
        exit_code: int | None = None,
        message: str | None = None,
    ) -> None:
        self._emit_for(tracked.task_id, tracked.agent.agent_id, status, exit_code, message)

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
                task_id, agent_id, status, self._clock(), exit_code, message, source="dask"
            )
        )

    def _untrack(self, tracked: TrackedTask) -> bool:
        """Stop tracking the task; False when it is not (or no longer) this one."""
        if self._tasks.get(tracked.task_id) is not tracked:
            return False
        del self._tasks[tracked.task_id]
        return True

    # -- the driver thread --------------------------------------------------------------------
    def _drive(self) -> None:
        delay = self._config.reconnect_min_seconds
        while not self._stop.is_set():
            client = self._connect()
            self._first_attempt.set()
            if client is None:
                self._stop.wait(delay)
                delay = min(delay * 2, self._config.reconnect_max_seconds)
                continue
            delay = self._config.reconnect_min_seconds
            try:
                self._serve(client)
            except Exception:  # a bug must not end the driver: reconnect and go on
                _log.exception("dask backend: the driver failed; reconnecting")
            finally:
                self._disconnect(client)

    def _connect(self) -> Any:
        address = self._config.scheduler_address
        client: Any = None
        try:
            client = _new_client(
                address,
                timeout=self._config.connect_timeout_seconds,
                set_as_default=False,
                asynchronous=False,
            )
            client.register_plugin(TaskRegistry(), name=PLUGIN_NAME)
            client.subscribe_topic(self._topic, self._on_event)
            workers = self._workers(client)
        except Exception as exc:  # OSError, TimeoutError, CommClosedError …
            _log.warning("dask backend: cannot connect to %s: %s", address, exc)
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close(timeout=self._config.connect_timeout_seconds)
            return None
        with self._lock:
            self._connected = True
            self._apply_workers(workers)
        _log.info("dask backend: connected to %s (%d workers)", address, len(workers))
        return client

    def _serve(self, client: Any) -> None:
        """Run commands and refresh the worker list until stopped or disconnected."""
        poll = self._config.poll_interval_seconds
        next_refresh = time.monotonic() + poll
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                command = self._commands.get(timeout=max(next_refresh - time.monotonic(), 0.0))
                self._run_command(client, command)
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + poll
                if client.status != "running":
                    return
                try:
                    workers = self._workers(client)
                except Exception as exc:
                    _log.warning("dask backend: lost the scheduler: %s", exc)
                    return
                with self._lock:
                    futures = self._apply_workers(workers)
                self._cancel(client, futures)

    def _run_command(self, client: Any, command: tuple[Any, ...]) -> None:
        kind = command[0]
        if kind == "submit":
            self._submit(client, command[1])
        elif kind == "kill":
            self._kill(client, command[1])
        elif kind == "done":
            self._finish(command[1], command[2])

    def _disconnect(self, client: Any) -> None:
        """Whatever ran through this client is lost to us: Dask forgets futures whose client
        is gone. On a shutdown that leaves tasks running, that is what was asked."""
        with self._lock:
            self._connected = False
            for tracked in list(self._tasks.values()):
                self._untrack(tracked)
                message = "lost the connection to the Dask scheduler"
                self._emit(tracked, TaskStatus.LOST, message=message)
            self._agents.clear()
            self._offers.clear()
        with contextlib.suppress(Exception):
            client.close(timeout=self._config.connect_timeout_seconds)

    # -- workers ------------------------------------------------------------------------------
    @staticmethod
    def _workers(client: Any) -> dict[str, dict[str, Any]]:
        info = client.scheduler_info()
        workers = info.get("workers", {})
        return {
            str(address): dict(worker)
            for address, worker in workers.items()
            if str(worker.get("status", "running")) in LIVE_WORKER_STATES
        }

    def _apply_workers(self, workers: Mapping[str, Mapping[str, Any]]) -> list[Any]:
        """New workers become agents, gone ones take their tasks with them (LOST). Returns the
        futures of the lost tasks, to be cancelled outside the lock."""
        futures: list[Any] = []
        for address in [a for a in self._agents if a not in workers]:
            futures += self._agent_left(self._agents.pop(address))
        for address, info in workers.items():
            if address in self._agents:
                continue
            hostname = worker_hostname(address, info)
            number = self._sightings.get(hostname, 0) + 1
            self._sightings[hostname] = number
            agent = DaskAgent(address, hostname, f"{address}#{number}", worker_resources(info))
            self._agents[address] = agent
        return futures

    def _agent_left(self, agent: DaskAgent) -> list[Any]:
        if agent.offer_id is not None:
            self._offers.pop(agent.offer_id, None)
        futures = []
        for tracked in [t for t in self._tasks.values() if t.agent is agent]:
            self._untrack(tracked)
            self._emit(tracked, TaskStatus.LOST, message=f"worker {agent.address} left")
            if tracked.future is not None:
                futures.append(tracked.future)
        return futures

    @staticmethod
    def _cancel(client: Any, futures: list[Any]) -> None:
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(futures)

    # -- submitting, killing, finishing -------------------------------------------------------
    def _submit(self, client: Any, tracked: TrackedTask) -> None:
        with self._lock:
            if self._tasks.get(tracked.task_id) is not tracked:
                return  # lost before it was sent
        try:
            future = client.submit(
                run_task,
                tracked.spec,
                key=tracked.key,
                workers=[tracked.agent.address],
                allow_other_workers=False,
                pure=False,
            )
        except Exception as exc:
            with self._lock:
                if self._untrack(tracked):
                    self._emit(tracked, TaskStatus.LOST, message=f"cannot submit: {exc}")
            return
        with self._lock:
            tracked.future = future
            orphaned = self._tasks.get(tracked.task_id) is not tracked
        if orphaned:  # lost with its worker while being submitted: nobody waits for it
            self._cancel(client, [future])
            return
        future.add_done_callback(lambda f: self._commands.put(("done", tracked, f)))

    def _kill(self, client: Any, tracked: TrackedTask) -> None:
        with self._lock:
            if self._tasks.get(tracked.task_id) is not tracked:
                return  # ended, or lost with its worker or connection, meanwhile
        address = tracked.agent.address
        try:
            answers = client.run(
                kill_on_worker,
                tracked.task_id,
                self._config.kill_grace_seconds,
                workers=[address],
                on_error="return",
            )
            running = answers.get(address) is True
        except Exception as exc:
            _log.warning("dask backend: cannot reach %s to kill %s: %s", address, tracked, exc)
            running = False
        future = tracked.future
        if running or future is None or future.done():
            return  # its end comes back through the future
        self._cancel(client, [future])
        with self._lock:
            if self._untrack(tracked):
                self._end_as(tracked, TaskEnd(TaskStatus.KILLED, None, "killed before it started"))

    def _finish(self, tracked: TrackedTask, future: Any) -> None:
        """A future is done: its result becomes the task's end."""
        with self._lock:
            if self._tasks.get(tracked.task_id) is not tracked:
                return
        result: dict[str, Any] | None = None
        problem = ""
        status = future.status
        try:
            if status == "finished":
                result = future.result(timeout=self._config.connect_timeout_seconds)
            elif status == "error":
                problem = f"the task failed on the worker: {future.exception(timeout=5)!r}"
            else:
                problem = f"the Dask task is {status}"
        except Exception as exc:
            status, problem = "lost", f"cannot fetch the task's result: {exc}"
        with contextlib.suppress(Exception):
            future.release()
        with self._lock:
            if not self._untrack(tracked):
                return
            end = (
                end_from_result(result)
                if result is not None
                else end_without_result(status, problem, tracked.kill_requested)
            )
            if end is None:
                self._emit(tracked, TaskStatus.LOST, message=problem)
                return
            if end.command_started and not tracked.reported_running:
                tracked.reported_running = True
                self._emit(tracked, TaskStatus.RUNNING)
            self._end_as(tracked, end)

    def _end_as(self, tracked: TrackedTask, end: TaskEnd) -> None:
        self._emit(tracked, end.status, end.exit_code, end.message)
        self._ended[tracked.task_id] = end
        self._ended.move_to_end(tracked.task_id)
        while len(self._ended) > self._config.kept_ended_tasks:
            self._ended.popitem(last=False)

    def _on_event(self, event: tuple[float, Any]) -> None:
        """A topic event from `run_task` (on a Dask thread): the command started."""
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else None
        if not isinstance(msg, dict):
            return
        with self._lock:
            tracked = self._tasks.get(str(msg.get("task_id")))
            if tracked is None or tracked.key != msg.get("key") or tracked.reported_running:
                return
            tracked.reported_running = True
            self._emit(tracked, TaskStatus.RUNNING)
