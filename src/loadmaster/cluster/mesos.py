"""The Mesos cluster backend: a framework on the v1 scheduler HTTP API.

The `MesosClient` keeps the subscription and sends calls; this class keeps what the service
asks about — agents, outstanding offers, live and ended tasks, buffered status updates —
under one lock, so every protocol method answers at once from memory and never waits on the
network (calls are queued).

What it decides itself, and why:
* Offers: only SCALAR resources of role `*` or our role count (exact match); an offer with
  none is declined at once. Offers die with their subscription, so a disconnect drops them.
* A combine with offers that are not outstanding (used, declined, rescinded, of a lost
  agent or an earlier subscription) answers LOST for its tasks without asking the master:
  the tasks were never sent and may be launched again elsewhere.
* Agents are learned from offers; `total` is what the master's `/master/slaves` says we may
  use (unreserved plus our role's reservations), else the high-water mark of offered + our
  running tasks' resources. An agent FAILURE event removes it.
* Status updates are stamped with this backend's clock (when we learned of them), and are
  acknowledged once `collect_updates` has handed them out; a re-sent update is dropped by
  its uuid (and re-acknowledged if it was acknowledged already).
* A kill or reconcile of a task that ended under this backend is answered from memory with
  its end, so a late kill can never turn a FINISHED task into a LOST one.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from loadmaster.cluster.mesos_client import MesosClient, PendingCall
from loadmaster.cluster.mesos_config import FrameworkIdStore, MesosBackendConfig
from loadmaster.cluster.mesos_wire import (
    ContainerSettings,
    FrameworkSettings,
    JsonDict,
    ParsedOffer,
    accept_call,
    acknowledge_call,
    agent_totals,
    allocate_scalars,
    decline_call,
    decline_inverse_call,
    kill_call,
    parse_offer,
    parse_status,
    reconcile_call,
    task_info,
    value_of,
)
from loadmaster.cluster.protocol import AgentInfo
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources, total

_log = logging.getLogger(__name__)

TASK_ID_ENV = "LOADMASTER_TASK_ID"
MEMORY = 10_000  # ended tasks and seen update uuids kept for answering late questions
SOURCE = "mesos"
SLAVES_PATH = "/master/slaves"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Agent:
    hostname: str
    watermark: Resources = field(default_factory=Resources)
    total: Resources | None = None  # from the master's /master/slaves, when it answered


@dataclass(slots=True, frozen=True)
class _Held:
    offer: ParsedOffer
    generation: int


@dataclass(slots=True, frozen=True)
class _Live:
    agent_id: str
    resources: Resources


@dataclass(slots=True, frozen=True)
class _Buffered:
    update: TaskStatusUpdate
    uuid: str | None


class MesosBackend:
    """A `ClusterBackend` that is a Mesos framework."""

    def __init__(
        self,
        config: MesosBackendConfig,
        framework_ids: FrameworkIdStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        problems = config.problems()
        if problems:
            raise ValueError("; ".join(f"backend.mesos.{p}" for p in problems))
        self.name = "mesos"
        self._config = config
        self._framework_ids = framework_ids
        self._clock = clock
        self._container = ContainerSettings(docker_image=config.docker_image)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._client: MesosClient | None = None
        self._started = False
        self._stopped = False
        self._saw_offers = False
        self._agents: dict[str, _Agent] = {}
        self._offers: dict[str, _Held] = {}
        self._new: list[str] = []
        self._live: dict[str, _Live] = {}
        self._ended: OrderedDict[str, TaskStatusUpdate] = OrderedDict()
        self._updates: list[_Buffered] = []
        self._pending_uuids: set[str] = set()
        self._acked_uuids: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._warned_roles: set[str] = set()
        self._totals: dict[str, Resources] = {}
        self._totals_asked: set[str] = set()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Subscribe and wait (at most `start_wait_seconds`) for the first offers, so that the
        service's first cycle knows the framework id and the agents."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this backend was shut down; create a new one")
            if self._started:
                return
            self._started = True
            known = self._load_framework_id()
            config = self._config
            settings = FrameworkSettings(
                name=config.framework_name,
                role=config.role,
                principal=config.principal,
                failover_timeout_seconds=config.failover_timeout_seconds,
                user=config.user,
                hostname=config.hostname or socket.getfqdn(),
            )
            auth = (config.principal, config.secret) if config.principal and config.secret else None
            self._client = MesosClient(
                config.base_url(),
                settings,
                self,
                framework_id=known,
                auth=auth,
                connect_timeout_seconds=config.connect_timeout_seconds,
                heartbeat_misses=config.heartbeat_misses,
                reconnect_initial_seconds=config.reconnect_initial_seconds,
                reconnect_max_seconds=config.reconnect_max_seconds,
            )
            self._client.start()
            deadline = time.monotonic() + config.start_wait_seconds
            while not self._saw_offers and time.monotonic() < deadline:
                self._changed.wait(min(0.05, max(deadline - time.monotonic(), 0.0)))

    def _load_framework_id(self) -> str | None:
        try:
            return self._framework_ids.framework_id()
        except Exception as exc:  # a store that is down must not stop the subscription
            _log.warning("mesos: cannot read the stored framework id: %s", exc)
            return None

    def shutdown(self, kill_tasks: bool) -> None:
        """With kill_tasks: KILL every live task, wait (at most `kill_wait_seconds`) for their
        ends, then TEARDOWN. Without: close the stream; the master keeps the tasks running for
        `failover_timeout` and a new backend with the stored framework id takes them over."""
        with self._lock:
            if self._stopped or not self._started:
                self._stopped = True
                return
            self._stopped = True
            client = self._client
            self._drop_offers()
            if kill_tasks and client is not None:
                for task_id, live in self._live.items():
                    self._kill(task_id, live.agent_id)
                deadline = time.monotonic() + self._config.kill_wait_seconds
                while self._live and time.monotonic() < deadline and client.subscribed:
                    self._changed.wait(0.05)
        if client is not None:
            client.stop(teardown=kill_tasks)

    def is_healthy(self) -> bool:
        with self._lock:
            client = self._client
            running = self._running()
        return running and client is not None and client.alive() and client.subscribed

    def framework_id(self) -> str | None:
        """The framework id while subscribed; None while (re)connecting, so that no cycle
        plans with offers that cannot be used."""
        with self._lock:
            client = self._client
            if not self._running() or client is None:
                return None
        return client.framework_id if client.subscribed else None

    def last_error(self) -> str | None:
        client = self._client
        return client.last_error if client is not None else None

    def _running(self) -> bool:
        return self._started and not self._stopped

    # -- the client's sink (stream thread) ------------------------------------------------------
    def subscribed(self, framework_id: str, generation: int) -> None:
        with self._lock:
            self._drop_offers()
            to_reconcile = [(t, live.agent_id) for t, live in self._live.items()]
        try:
            if self._framework_ids.framework_id() != framework_id:
                self._framework_ids.set_framework_id(framework_id, when=self._clock())
        except Exception as exc:  # persisted on the next subscription instead
            _log.warning("mesos: cannot store the framework id %s: %s", framework_id, exc)
        self._refresh_totals()
        if to_reconcile:
            self.reconcile(to_reconcile)

    def _refresh_totals(self) -> None:
        """Agent totals usable by us (unreserved plus our role's reservations), as the
        reference's synchronisation reads them from the master; without them the total is
        the offers' high-water mark, which misses what tasks of an earlier backend hold."""
        client = self._client
        answer = client.fetch_json(SLAVES_PATH) if client is not None else None
        totals = agent_totals(answer, self._config.role)
        with self._lock:
            self._totals.update(totals)
            for agent_id, agent in self._agents.items():
                if agent_id in self._totals:
                    agent.total = self._totals[agent_id]

    def disconnected(self, reason: str) -> None:
        with self._lock:
            self._drop_offers()
            self._changed.notify_all()

    def event(self, event: JsonDict) -> None:
        kind = event.get("type")
        with self._lock:
            self._event(kind, event)
            unasked = set(self._agents) - self._totals_asked
            self._totals_asked |= unasked
        if unasked:  # a new agent: ask once for its totals
            self._refresh_totals()

    def _event(self, kind: object, event: JsonDict) -> None:
        if kind == "OFFERS":
            self._on_offers((event.get("offers") or {}).get("offers") or [])
        elif kind == "INVERSE_OFFERS":
            raw = (event.get("inverse_offers") or {}).get("inverse_offers") or []
            ids = [value_of(r.get("id")) for r in raw if isinstance(r, dict)]
            if ids:
                refuse = self._config.refuse_seconds
                self._submit(
                    "DECLINE_INVERSE_OFFERS", lambda f: decline_inverse_call(f, ids, refuse)
                )
        elif kind == "RESCIND":
            self._forget_offer(value_of((event.get("rescind") or {}).get("offer_id")))
        elif kind == "UPDATE":
            self._on_update((event.get("update") or {}).get("status") or {})
        elif kind == "FAILURE":
            self._on_failure(event.get("failure") or {})
        elif kind == "ERROR":
            message = str((event.get("error") or {}).get("message") or "")
            if self._client is not None:
                self._client.forget_framework(message)
        elif kind == "MESSAGE":
            _log.debug("mesos: framework message from an executor (ignored)")
        elif kind != "HEARTBEAT":
            _log.debug("mesos: unhandled event %s", kind)
        self._changed.notify_all()

    def _on_offers(self, raw_offers: list[JsonDict]) -> None:
        generation = self._client.generation if self._client is not None else 0
        useless: list[str] = []
        for raw in raw_offers:
            offer = parse_offer(raw, self._config.role)
            for role in offer.rejected_roles - self._warned_roles:
                self._warned_roles.add(role)
                _log.warning("mesos: ignoring resources of role %r (not ours)", role)
            if not offer.offer_id or not offer.agent_id:
                continue
            if offer.resources.is_zero() or not self._running():
                useless.append(offer.offer_id)
                continue
            agent = self._agents.setdefault(offer.agent_id, _Agent(offer.hostname))
            agent.total = self._totals.get(offer.agent_id, agent.total)
            agent.hostname = offer.hostname or agent.hostname
            self._offers[offer.offer_id] = _Held(offer, generation)
            self._new.append(offer.offer_id)
            self._raise_watermark(offer.agent_id)
        if useless:
            self._decline(useless, generation)
        self._saw_offers = True

    def _raise_watermark(self, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        offered = total(
            h.offer.resources for h in self._offers.values() if h.offer.agent_id == agent_id
        )
        tasks = total(t.resources for t in self._live.values() if t.agent_id == agent_id)
        agent.watermark = agent.watermark.increase_up_to(offered.add(tasks)).round_values()

    def _on_failure(self, failure: JsonDict) -> None:
        agent_id = value_of(failure.get("agent_id"))
        if failure.get("executor_id") is not None or not agent_id:
            _log.info("mesos: executor failure %s", failure)
            return
        _log.warning("mesos: agent %s failed; it is removed", agent_id)
        self._agents.pop(agent_id, None)
        for offer_id in [o for o, h in self._offers.items() if h.offer.agent_id == agent_id]:
            self._forget_offer(offer_id)

    def _on_update(self, raw: JsonDict) -> None:
        status = parse_status(raw)
        if not status.task_id:
            return
        if status.uuid is not None:
            if status.uuid in self._pending_uuids:
                return  # a re-send of an update not yet handed out
            if status.uuid in self._acked_uuids:
                self._acknowledge(status.agent_id, status.task_id, status.uuid)
                return
            self._pending_uuids.add(status.uuid)
        update = TaskStatusUpdate(
            status.task_id,
            status.agent_id,
            status.status,
            self._clock(),
            status.exit_code,
            status.message,
            status.reason,
            SOURCE,
            status.data,
        )
        self._updates.append(_Buffered(update, status.uuid))
        if status.status.is_terminal:
            self._live.pop(status.task_id, None)
            self._ended[status.task_id] = update
            while len(self._ended) > MEMORY:
                self._ended.popitem(last=False)
        elif status.status is TaskStatus.LOST:
            self._live.pop(status.task_id, None)
        elif status.task_id not in self._live and status.agent_id:
            # A task of an earlier backend, found by reconciliation.
            self._live[status.task_id] = _Live(status.agent_id, Resources())

    # -- agents and offers ----------------------------------------------------------------------
    def agents(self) -> list[AgentInfo]:
        with self._lock:
            if not self._running():
                return []
            return [
                AgentInfo(i, a.hostname, a.total if a.total is not None else a.watermark)
                for i, a in self._agents.items()
            ]

    def collect_offers(self, when: datetime) -> list[ResourceOffer]:
        with self._lock:
            if not self._running():
                return []
            out = []
            for offer_id in self._new:
                held = self._offers.get(offer_id)
                if held is not None:
                    offer = held.offer
                    out.append(ResourceOffer(offer_id, offer.agent_id, offer.resources, when))
            self._new = []
            return out

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None:
        with self._lock:
            by_generation: dict[int, list[str]] = {}
            for offer in offers:
                held = self._forget_offer(offer.id)
                if held is not None:
                    by_generation.setdefault(held.generation, []).append(offer.id)
            for generation, ids in by_generation.items():
                self._decline(ids, generation)

    def _decline(self, ids: list[str], generation: int) -> None:
        refuse = self._config.refuse_seconds
        self._submit("DECLINE", lambda f: decline_call(f, ids, refuse), generation)

    def _forget_offer(self, offer_id: str) -> _Held | None:
        held = self._offers.pop(offer_id, None)
        if held is not None and offer_id in self._new:
            self._new.remove(offer_id)
        return held

    def _drop_offers(self) -> None:
        self._offers.clear()
        self._new = []

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        with self._lock:
            held = [h for o in offers if (h := self._offers.get(o.id)) is not None]
            problem = self._combine_problem(offers, held)
            for offer in offers:
                self._forget_offer(offer.id)
            if problem is not None:
                if held:
                    self._decline([h.offer.offer_id for h in held], held[0].generation)
                for task in tasks:
                    self._emit(task.id, task.agent_id or "", TaskStatus.LOST, problem)
                return
            agent_id = held[0].offer.agent_id
            available = [copy.deepcopy(s) for h in held for s in h.offer.scalars]
            infos = []
            for task in tasks:
                resources = allocate_scalars(
                    task.resources, available, self._config.role, self._config.principal
                )
                env = {TASK_ID_ENV: task.id}
                infos.append(task_info(task, agent_id, resources, self._container, env))
                self._live[task.id] = _Live(agent_id, task.resources)
            offer_ids = [h.offer.offer_id for h in held]
            refuse = self._config.refuse_seconds
            ids = [t.id for t in tasks]
            self._submit(
                "ACCEPT",
                lambda f: accept_call(f, offer_ids, infos, refuse),
                held[0].generation,
                on_drop=lambda why: self._lose(ids, agent_id, why),
            )

    def _combine_problem(self, offers: Sequence[ResourceOffer], held: list[_Held]) -> str | None:
        if not self._running():
            return "the mesos backend is not running"
        if not offers:
            return "no offer was given for the tasks"
        if len(held) != len(offers):
            unknown = sorted({o.id for o in offers} - {h.offer.offer_id for h in held})
            return f"offers {unknown} are not outstanding (used, declined or rescinded)"
        agents = {h.offer.agent_id for h in held}
        if len(agents) != 1 or len({h.generation for h in held}) != 1:
            return f"offers of more than one agent or subscription: {sorted(agents)}"
        return None

    def _lose(self, task_ids: list[str], agent_id: str, why: str) -> None:
        with self._lock:
            for task_id in task_ids:
                if self._live.pop(task_id, None) is not None:
                    self._emit(task_id, agent_id, TaskStatus.LOST, why)
            self._changed.notify_all()

    # -- kill and reconcile ---------------------------------------------------------------------
    def kill_task(self, task_id: str, agent_id: str) -> None:
        with self._lock:
            ended = self._ended.get(task_id)
            if ended is not None:
                self._updates.append(_Buffered(replace(ended, timestamp=self._clock()), None))
                return
            self._kill(task_id, agent_id)

    def _kill(self, task_id: str, agent_id: str) -> None:
        self._submit("KILL", lambda f: kill_call(f, task_id, agent_id))

    def reconcile(self, tasks: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            ask = []
            for task_id, agent_id in tasks:
                ended = self._ended.get(task_id)
                if ended is not None:
                    self._updates.append(_Buffered(replace(ended, timestamp=self._clock()), None))
                else:
                    ask.append((task_id, agent_id))
            if ask:
                self._submit("RECONCILE", lambda f: reconcile_call(f, ask))

    def revive(self) -> None:
        """Ask for offers again after `suppress` (and clear every decline filter)."""
        with self._lock:
            self._submit("REVIVE", lambda f: {"type": "REVIVE", "framework_id": {"value": f}})

    def suppress(self) -> None:
        """Stop receiving offers until `revive` (for a scheduler with nothing to place)."""
        with self._lock:
            self._submit("SUPPRESS", lambda f: {"type": "SUPPRESS", "framework_id": {"value": f}})

    # -- updates and logs -----------------------------------------------------------------------
    def collect_updates(self) -> list[TaskStatusUpdate]:
        with self._lock:
            buffered, self._updates = self._updates, []
            for item in buffered:
                if item.uuid is not None:
                    self._pending_uuids.discard(item.uuid)
                    self._acked_uuids[item.uuid] = (item.update.agent_id, item.update.task_id)
                    while len(self._acked_uuids) > MEMORY:
                        self._acked_uuids.popitem(last=False)
                    self._acknowledge(item.update.agent_id, item.update.task_id, item.uuid)
            return [item.update for item in buffered]

    def _acknowledge(self, agent_id: str, task_id: str, uuid: str) -> None:
        self._submit("ACKNOWLEDGE", lambda f: acknowledge_call(f, agent_id, task_id, uuid))

    def read_log(
        self, task_id: str, stream: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        """Task output lives in the agent's sandbox, which this backend does not read."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        raise KeyError(task_id)

    # -- helpers ------------------------------------------------------------------------------
    def _emit(self, task_id: str, agent_id: str, status: TaskStatus, message: str) -> None:
        update = TaskStatusUpdate(
            task_id, agent_id, status, self._clock(), None, message, None, SOURCE
        )
        self._updates.append(_Buffered(update, None))

    def _submit(
        self,
        kind: str,
        build: Callable[[str], JsonDict],
        generation: int | None = None,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        if self._client is not None:
            self._client.submit(PendingCall(kind, build, generation, on_drop))
