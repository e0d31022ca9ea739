"""A fake Mesos master speaking the v1 scheduler HTTP API, for tests (no real master here).

`POST /api/v1/scheduler` on 127.0.0.1: SUBSCRIBE answers 200 with a chunked RecordIO event
stream and a `Mesos-Stream-Id` header; every other call must carry that header and is
answered 202. Agents are simulated: each has scalar resources (some reserved for a role,
some of a foreign role), a ports range and attributes; a launched command task really runs
as a subprocess here and its agent sends STARTING, RUNNING and FINISHED/FAILED (with "exited
with status N") updates, each with a uuid that must be acknowledged (unacknowledged ones are
re-sent). Docker tasks are run the same way, from their arguments.

Simplifications, on purpose: one framework at a time; at most one outstanding offer per
agent (an agent is re-offered whole once its offer is used or declined); a task's next update
is sent without waiting for the previous one's acknowledgement; no failover-timeout expiry.

Faults: `drop_stream`, `rescind_all`, `lose_task`, `remove_agent` (RESCIND, FAILURE, then
TASK_LOST of its tasks), `restart_agent` (new agent id), `redirect_to` (307 to another fake
master), `stop_heartbeats`, `fragment` (records split across and packed into chunks).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

JsonDict = dict[str, Any]
PATH = "/api/v1/scheduler"
SLAVES_PATH = "/master/slaves"


def record(event: JsonDict) -> bytes:
    """RecordIO, written independently of the code under test: `<byte length>\\n<JSON>`."""
    body = json.dumps(event).encode("utf-8")
    return b"%d\n" % len(body) + body


def scalar(name: str, value: float, role: str = "*", principal: str | None = None) -> JsonDict:
    out: JsonDict = {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": role}
    if principal is not None:
        out["reservation"] = {"principal": principal}
    return out


def ports(begin: int, end: int) -> JsonDict:
    return {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": begin, "end": end}]}}


@dataclass(slots=True)
class AgentSpec:
    hostname: str
    resources: list[JsonDict]
    attributes: list[JsonDict] = field(default_factory=list)


def _key(resource: JsonDict) -> str:
    return json.dumps(
        [resource.get("name"), resource.get("role", "*"), resource.get("reservation")],
        sort_keys=True,
    )


@dataclass(slots=True)
class _Task:
    task_id: str
    agent_id: str
    info: JsonDict
    popen: subprocess.Popen[bytes] | None = None
    killed: bool = False
    lost: bool = False
    done: bool = False


@dataclass(slots=True)
class _Agent:
    agent_id: str
    spec: AgentSpec
    tasks: dict[str, _Task] = field(default_factory=dict)
    offer_id: str | None = None
    refused_until: float = 0.0


class _Stream:
    """One subscription's event queue; the handler thread writes it to the socket."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.events: queue.Queue[JsonDict | None] = queue.Queue()
        self.closed = threading.Event()
        self.sock: socket.socket | None = None


class FakeMaster:
    def __init__(
        self,
        agents: list[AgentSpec],
        *,
        heartbeat_seconds: float = 0.2,
        resend_seconds: float = 0.5,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._sandboxes = tempfile.TemporaryDirectory(prefix="fake-mesos-")
        self.heartbeat_seconds = heartbeat_seconds
        self.resend_seconds = resend_seconds
        self.credentials = credentials
        self.lock = threading.RLock()
        self.calls: list[JsonDict] = []
        self.subscribes: list[JsonDict] = []
        self.redirect: str | None = None
        self.heartbeats = True
        self.fragment = False
        self.suppressed = False
        self.framework_id: str | None = None
        self.removed: set[str] = set()
        self._stream: _Stream | None = None
        self._ids = itertools.count(1)
        self._agents: dict[str, _Agent] = {}
        self._offers: dict[str, str] = {}  # offer id -> agent id
        self._unacked: dict[str, tuple[float, JsonDict]] = {}
        self._threads: list[threading.Thread] = []
        for spec in agents:
            self._add_agent(spec)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._serve.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def close(self) -> None:
        """Stop serving and end every task and thread this master started."""
        with self.lock:
            self._end_stream()
            tasks = [t for a in self._agents.values() for t in a.tasks.values()]
        for task in tasks:
            self._kill_process(task, signal.SIGKILL)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sandboxes.cleanup()

    # -- faults -------------------------------------------------------------------------------
    def drop_stream(self) -> None:
        with self.lock:
            self._end_stream()

    def stop_heartbeats(self) -> None:
        self.heartbeats = False

    def redirect_to(self, other: FakeMaster | None) -> None:
        """Answer SUBSCRIBE with 307 to `other` (scheme-relative, no path, as Mesos does)."""
        self.redirect = None if other is None else f"//{other.address}"
        if other is not None:
            self.drop_stream()

    def rescind_all(self) -> list[str]:
        with self.lock:
            ids = list(self._offers)
            for offer_id in ids:
                self._rescind(offer_id)
            return ids

    def lose_task(self, task_id: str) -> None:
        with self.lock:
            task = self._task(task_id)
            if task is None:
                return
            task.lost = True
        self._kill_process(task, signal.SIGKILL)

    def remove_agent(self, hostname: str) -> str:
        with self.lock:
            agent = self._agent_by_host(hostname)
            del self._agents[agent.agent_id]
            if agent.offer_id is not None:
                self._rescind(agent.offer_id)
            self._send({"type": "FAILURE", "failure": {"agent_id": {"value": agent.agent_id}}})
            tasks = list(agent.tasks.values())
            for task in tasks:
                task.lost = True
        for task in tasks:
            self._kill_process(task, signal.SIGKILL)
        return agent.agent_id

    def restart_agent(self, hostname: str, spec: AgentSpec) -> str:
        with self.lock:
            agent = self._add_agent(spec)
            self._allocate()
            return agent.agent_id

    def remove_framework(self, message: str) -> None:
        """The master removed the framework (e.g. its failover timeout ran out): ERROR, then
        the stream ends; the old id is refused from now on."""
        with self.lock:
            self._send({"type": "ERROR", "error": {"message": message}})
            self.removed.add(self.framework_id or "")
            self.framework_id = None

    def send_inverse_offer(self, hostname: str) -> None:
        """An operator asks for the agent back (maintenance); frameworks may decline."""
        with self.lock:
            agent = self._agent_by_host(hostname)
            inverse = {
                "id": {"value": f"inverse-{next(self._ids)}"},
                "agent_id": {"value": agent.agent_id},
                "unavailability": {"start": {"nanoseconds": int(time.time() * 1e9)}},
            }
            self._send({"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": [inverse]}})

    def agent_id(self, hostname: str) -> str:
        with self.lock:
            return self._agent_by_host(hostname).agent_id

    def launched(self) -> list[JsonDict]:
        with self.lock:
            return [
                info
                for c in self.calls
                if c.get("type") == "ACCEPT"
                for op in c["accept"].get("operations", [])
                for info in op.get("launch", {}).get("task_infos", [])
            ]

    def calls_of(self, kind: str) -> list[JsonDict]:
        with self.lock:
            return [c for c in self.calls if c.get("type") == kind]

    def slaves(self) -> list[JsonDict]:
        """The `/master/slaves` view: totals split into unreserved and per-role reserved."""
        with self.lock:
            out = []
            for agent in self._agents.values():
                unreserved: dict[str, float] = {}
                reserved: dict[str, dict[str, float]] = {}
                for r in agent.spec.resources:
                    if r.get("type") != "SCALAR":
                        continue
                    role = r.get("role", "*")
                    bag = unreserved if role == "*" else reserved.setdefault(role, {})
                    bag[r["name"]] = bag.get(r["name"], 0.0) + r["scalar"]["value"]
                out.append(
                    {
                        "id": agent.agent_id,
                        "hostname": agent.spec.hostname,
                        "unreserved_resources": {**unreserved, "ports": "[31000-32000]"},
                        "reserved_resources": reserved,
                        "active": True,
                    }
                )
            return out

    def running(self) -> list[str]:
        """Ids of tasks whose command runs now."""
        with self.lock:
            return [
                t.task_id
                for a in self._agents.values()
                for t in a.tasks.values()
                if t.popen is not None and not t.done
            ]

    def unacknowledged(self) -> int:
        with self.lock:
            return len(self._unacked)

    # -- agents and offers --------------------------------------------------------------------
    def _add_agent(self, spec: AgentSpec) -> _Agent:
        agent = _Agent(f"{spec.hostname}-S{next(self._ids)}", spec)
        self._agents[agent.agent_id] = agent
        return agent

    def _agent_by_host(self, hostname: str) -> _Agent:
        return next(a for a in self._agents.values() if a.spec.hostname == hostname)

    def _task(self, task_id: str) -> _Task | None:
        for agent in self._agents.values():
            if task_id in agent.tasks:
                return agent.tasks[task_id]
        return None

    def _free(self, agent: _Agent) -> dict[str, JsonDict]:
        free = {_key(r): json.loads(json.dumps(r)) for r in agent.spec.resources}
        for task in agent.tasks.values():
            for used in task.info.get("resources", []):
                entry = free.get(_key(used))
                if entry is not None and entry.get("type") == "SCALAR":
                    entry["scalar"]["value"] = round(
                        entry["scalar"]["value"] - used["scalar"]["value"], 6
                    )
        return free

    def _allocate(self) -> None:
        """Offer every agent without an outstanding offer (lock held)."""
        if self._stream is None or self.framework_id is None or self.suppressed:
            return
        now = time.monotonic()
        offers = []
        for agent in self._agents.values():
            if agent.offer_id is not None or agent.refused_until > now:
                continue
            free = self._free(agent).values()
            resources = [r for r in free if r.get("type") != "SCALAR" or r["scalar"]["value"] > 0]
            if not any(r.get("type") == "SCALAR" for r in resources):
                continue
            offer_id = f"offer-{next(self._ids)}"
            agent.offer_id = offer_id
            self._offers[offer_id] = agent.agent_id
            offers.append(
                {
                    "id": {"value": offer_id},
                    "framework_id": {"value": self.framework_id},
                    "agent_id": {"value": agent.agent_id},
                    "hostname": agent.spec.hostname,
                    "resources": resources,
                    "attributes": agent.spec.attributes,
                }
            )
        if offers:
            self._send({"type": "OFFERS", "offers": {"offers": offers}})

    def _rescind(self, offer_id: str) -> None:
        self._spend(offer_id)
        self._send({"type": "RESCIND", "rescind": {"offer_id": {"value": offer_id}}})

    def _spend(self, offer_id: str, refuse_seconds: float = 0.0) -> _Agent | None:
        agent_id = self._offers.pop(offer_id, None)
        agent = self._agents.get(agent_id or "")
        if agent is not None:
            agent.offer_id = None
            agent.refused_until = time.monotonic() + refuse_seconds
        return agent

    # -- status updates -----------------------------------------------------------------------
    def _status(
        self, task: _Task | None, task_id: str, agent_id: str, state: str, **extra: str
    ) -> None:
        """An update; those an agent sends for its tasks carry a uuid to acknowledge."""
        status: JsonDict = {
            "task_id": {"value": task_id},
            "agent_id": {"value": agent_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "timestamp": time.time(),
            **extra,
        }
        if task is not None:
            status["uuid"] = base64.b64encode(uuidlib.uuid4().bytes).decode()
        event = {"type": "UPDATE", "update": {"status": status}}
        if "uuid" in status:
            self._unacked[status["uuid"]] = (time.monotonic(), event)
        self._send(event)

    def _run(self, task: _Task) -> None:
        command = task.info.get("command", {})
        if command.get("shell", True):
            argv = ["/bin/sh", "-c", str(command.get("value", ""))]
        else:
            argv = [str(a) for a in command.get("arguments") or [command.get("value", "")]]
        env_vars = command.get("environment", {}).get("variables", [])
        env = {str(v["name"]): str(v["value"]) for v in env_vars}
        sandbox = Path(self._sandboxes.name) / task.agent_id / task.task_id
        sandbox.mkdir(parents=True, exist_ok=True)
        env["MESOS_SANDBOX"] = str(sandbox)
        with self.lock:
            self._status(task, task.task_id, task.agent_id, "TASK_STARTING")
            try:
                task.popen = subprocess.Popen(
                    argv,
                    cwd=sandbox,
                    env={**_base_env(), **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                task.done = True
                agent = self._agents.get(task.agent_id)
                if agent is not None:
                    agent.tasks.pop(task.task_id, None)
                self._status(
                    task,
                    task.task_id,
                    task.agent_id,
                    "TASK_FAILED",
                    message=f"Failed to launch the command {argv[0]}: {exc}",
                    reason="REASON_COMMAND_EXECUTOR_FAILED",
                )
                self._allocate()
                return
            self._status(task, task.task_id, task.agent_id, "TASK_RUNNING")
        code = task.popen.wait()
        with self.lock:
            task.done = True
            agent = self._agents.get(task.agent_id)
            if agent is not None:
                agent.tasks.pop(task.task_id, None)
            if task.lost:
                self._status(
                    task,
                    task.task_id,
                    task.agent_id,
                    "TASK_LOST",
                    message="agent lost the task",
                    reason="REASON_AGENT_REMOVED",
                    source="SOURCE_MASTER",
                )
            elif task.killed:
                self._status(
                    task,
                    task.task_id,
                    task.agent_id,
                    "TASK_KILLED",
                    message="Command terminated with signal Terminated",
                )
            elif code == 0:
                self._status(
                    task,
                    task.task_id,
                    task.agent_id,
                    "TASK_FINISHED",
                    message="Command exited with status 0",
                )
            else:
                self._status(
                    task,
                    task.task_id,
                    task.agent_id,
                    "TASK_FAILED",
                    message=f"Command exited with status {code}",
                )
            self._allocate()

    def _kill_process(self, task: _Task, sig: int) -> None:
        popen = task.popen
        if popen is not None and popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(sig)

    # -- calls --------------------------------------------------------------------------------
    def _handle_call(self, call: JsonDict) -> None:
        kind = call.get("type")
        handlers: dict[str, Callable[[JsonDict], None]] = {
            "ACCEPT": self._accept,
            "DECLINE": self._decline,
            "KILL": self._kill,
            "ACKNOWLEDGE": self._ack,
            "RECONCILE": self._reconcile,
        }
        with self.lock:
            self.calls.append(call)
            if kind in handlers:
                handlers[str(kind)](call)
            elif kind == "REVIVE":
                self.suppressed = False
                for agent in self._agents.values():
                    agent.refused_until = 0.0
                self._allocate()
            elif kind == "SUPPRESS":
                self.suppressed = True
            elif kind == "TEARDOWN":
                tasks = [t for a in self._agents.values() for t in a.tasks.values()]
                for task in tasks:
                    task.killed = True
                    self._kill_process(task, signal.SIGKILL)
                self.framework_id = None
                self._end_stream()

    def _accept(self, call: JsonDict) -> None:
        body = call["accept"]
        refuse = float(body.get("filters", {}).get("refuse_seconds", 5.0))
        offer_ids = [o["value"] for o in body.get("offer_ids", [])]
        infos = [
            info
            for op in body.get("operations", [])
            if op.get("type") == "LAUNCH"
            for info in op["launch"]["task_infos"]
        ]
        valid = (
            all(o in self._offers for o in offer_ids)
            and len({self._offers.get(o) for o in offer_ids}) == 1
        )
        agents = [self._spend(o, refuse) for o in offer_ids if o in self._offers]
        if not valid or not agents or agents[0] is None:
            for info in infos:
                self._status(
                    None,
                    info["task_id"]["value"],
                    info["agent_id"]["value"],
                    "TASK_LOST",
                    message="Task launched with invalid offers",
                    reason="REASON_INVALID_OFFERS",
                    source="SOURCE_MASTER",
                )
            self._allocate()
            return
        agent = agents[0]
        free = self._free(agent)
        for info in infos:
            task_id = info["task_id"]["value"]
            problem = self._task_problem(agent, info, free)
            if problem is not None:
                self._status(
                    None,
                    task_id,
                    agent.agent_id,
                    "TASK_ERROR",
                    message=problem,
                    reason="REASON_TASK_INVALID",
                    source="SOURCE_MASTER",
                )
                continue
            task = _Task(task_id, agent.agent_id, info)
            agent.tasks[task_id] = task
            thread = threading.Thread(target=self._run, args=(task,), daemon=True)
            self._threads.append(thread)
            thread.start()
        self._allocate()

    def _task_problem(self, agent: _Agent, info: JsonDict, free: dict[str, JsonDict]) -> str | None:
        task_id = info["task_id"]["value"]
        if task_id in agent.tasks or self._task(task_id) is not None:
            return f"Task {task_id} uses a task id that is in use"
        for used in info.get("resources", []):
            entry = free.get(_key(used))
            need = float(used["scalar"]["value"])
            if entry is None or entry["scalar"]["value"] + 1e-9 < need:
                return f"Task uses more resources {used} than available in the offers"
            entry["scalar"]["value"] -= need
        return None

    def _decline(self, call: JsonDict) -> None:
        body = call["decline"]
        refuse = float(body.get("filters", {}).get("refuse_seconds", 5.0))
        for offer in body.get("offer_ids", []):
            self._spend(offer["value"], refuse)
        self._allocate()

    def _kill(self, call: JsonDict) -> None:
        task_id = call["kill"]["task_id"]["value"]
        task = self._task(task_id)
        if task is None:
            agent_id = call["kill"].get("agent_id", {}).get("value", "")
            self._status(
                None, task_id, agent_id, "TASK_LOST", message="unknown task", source="SOURCE_MASTER"
            )
            return
        task.killed = True
        self._kill_process(task, signal.SIGTERM)

    def _ack(self, call: JsonDict) -> None:
        self._unacked.pop(call["acknowledge"]["uuid"], None)

    def _reconcile(self, call: JsonDict) -> None:
        for entry in call["reconcile"].get("tasks", []):
            task_id = entry["task_id"]["value"]
            task = self._task(task_id)
            agent_id = entry.get("agent_id", {}).get("value", "")
            if task is not None and not task.done:
                state = "TASK_RUNNING" if task.popen is not None else "TASK_STAGING"
                self._status(
                    None,
                    task_id,
                    task.agent_id,
                    state,
                    source="SOURCE_MASTER",
                    reason="REASON_RECONCILIATION",
                )
            else:
                self._status(
                    None,
                    task_id,
                    agent_id,
                    "TASK_LOST",
                    message="unknown task",
                    source="SOURCE_MASTER",
                    reason="REASON_RECONCILIATION",
                )

    # -- the stream ---------------------------------------------------------------------------
    def _send(self, event: JsonDict) -> None:
        if self._stream is not None:
            self._stream.events.put(event)

    def _end_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.closed.set()
            stream.events.put(None)
            if stream.sock is not None:
                with contextlib.suppress(OSError):
                    stream.sock.shutdown(socket.SHUT_RDWR)
            for agent in self._agents.values():  # offers die with the subscription
                agent.offer_id = None
            self._offers.clear()

    def _subscribe(self, call: JsonDict, sock: socket.socket) -> _Stream:
        info = call["subscribe"]["framework_info"]
        with self.lock:
            self.subscribes.append(call)
            self._end_stream()
            wanted = (info.get("id") or {}).get("value")
            if wanted in self.removed:
                wanted = None  # a real master refuses it; the fake registers anew
            self.framework_id = wanted or f"fake-framework-{next(self._ids)}"
            stream = _Stream(f"stream-{next(self._ids)}")
            stream.sock = sock
            self._stream = stream
            stream.events.put(
                {
                    "type": "SUBSCRIBED",
                    "subscribed": {
                        "framework_id": {"value": self.framework_id},
                        "heartbeat_interval_seconds": self.heartbeat_seconds,
                    },
                }
            )
            for _, event in sorted(self._unacked.values(), key=lambda p: p[0]):
                stream.events.put(event)
            self._allocate()
            return stream

    def _tick(self, stream: _Stream) -> list[JsonDict]:
        """Heartbeat, re-sends and expired refuse filters, between events."""
        out: list[JsonDict] = []
        with self.lock:
            if self._stream is not stream:
                return out
            if self.heartbeats:
                out.append({"type": "HEARTBEAT"})
            now = time.monotonic()
            for key, (sent, event) in list(self._unacked.items()):
                if now - sent >= self.resend_seconds:
                    self._unacked[key] = (now, event)
                    out.append(event)
            self._allocate()
        return out

    def _write_stream(self, handler: BaseHTTPRequestHandler, stream: _Stream) -> None:
        pending = b""
        while not stream.closed.is_set():
            try:
                event = stream.events.get(timeout=self.heartbeat_seconds)
            except queue.Empty:
                events = self._tick(stream)
            else:
                events = [] if event is None else [event]
            data = pending + b"".join(record(e) for e in events)
            pending = b""
            if not data:
                continue
            if self.fragment and len(data) > 3:
                cut = len(data) * 2 // 3
                chunks, pending = [data[:7], data[7:cut]], data[cut:]
            else:
                chunks = [data]
            try:
                for chunk in chunks:
                    if chunk:
                        handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.flush()
            except OSError:
                break
            if pending and stream.events.empty():
                stream.events.put({"type": "HEARTBEAT"})  # so the held-back tail follows soon

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        master = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(
                self, code: int, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != SLAVES_PATH:
                    self._reply(404)
                    return
                body = json.dumps({"slaves": master.slaves()}).encode()
                self._reply(200, body, {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != PATH:
                    self._reply(404)
                    return
                if master.credentials is not None:
                    user, secret = master.credentials
                    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self._reply(
                            401, b"Unauthorized", {"WWW-Authenticate": 'Basic realm="mesos"'}
                        )
                        return
                try:
                    call = json.loads(raw)
                except ValueError:
                    self._reply(400, b"Failed to parse the body")
                    return
                if call.get("type") == "SUBSCRIBE":
                    self._subscribe(call)
                    return
                with master.lock:
                    stream = master._stream
                if stream is None or self.headers.get("Mesos-Stream-Id") != stream.stream_id:
                    self._reply(400, b"The stream ID is not valid")
                    return
                if (call.get("framework_id") or {}).get("value") != master.framework_id:
                    self._reply(400, b"Call is not for the subscribed framework")
                    return
                self._reply(202)
                master._handle_call(call)

            def _subscribe(self, call: JsonDict) -> None:
                if master.redirect is not None:
                    self._reply(307, b"", {"Location": master.redirect})
                    return
                stream = master._subscribe(call, self.connection)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Mesos-Stream-Id", stream.stream_id)
                self.end_headers()
                master._write_stream(self, stream)
                self.close_connection = True

        return Handler


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
