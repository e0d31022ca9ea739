"""A Mesos v1 scheduler API client on httpx: one subscription stream, a queue of calls.

Two threads. The stream thread SUBSCRIBEs (following 307 redirects to the leading master),
decodes the RecordIO event stream and hands every event to the sink; when the stream ends or
fails it reconnects with exponential backoff, re-subscribing with the framework id it has
(a failover, so tasks survive). The call thread sends queued calls with the stream's
`Mesos-Stream-Id`, only while subscribed and only to the master that holds the stream, and
doubles as the watchdog: no event (HEARTBEAT or other) for `heartbeat_misses` intervals, or
no SUBSCRIBED soon after connecting, and the stream socket is shut down, which makes the
stream thread reconnect.

Calls tied to a subscription generation (ACCEPT and DECLINE name offers, which die with the
subscription) are dropped when the generation changed, and their `on_drop` says so; every
other call waits for the next subscription. Nothing here blocks the caller.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from loadmaster.cluster.mesos_wire import (
    FrameworkSettings,
    FramingError,
    JsonDict,
    RecordDecoder,
    call,
    subscribe_call,
    value_of,
)

_log = logging.getLogger(__name__)

API_PATH = "/api/v1/scheduler"
STREAM_ID_HEADER = "Mesos-Stream-Id"
MAX_REDIRECTS = 5
CALL_RETRY_SECONDS = 0.2
WATCH_SECONDS = 0.05


class EventSink(Protocol):
    """Called on the stream thread, in stream order."""

    def subscribed(self, framework_id: str, generation: int) -> None: ...

    def event(self, event: JsonDict) -> None: ...

    def disconnected(self, reason: str) -> None: ...


@dataclass(slots=True)
class PendingCall:
    kind: str
    build: Callable[[str], JsonDict]  # the body, given the framework id at send time
    generation: int | None = None
    on_drop: Callable[[str], None] | None = None


class _Refused(Exception):
    pass


class MesosClient:
    def __init__(
        self,
        master_url: str,
        settings: FrameworkSettings,
        sink: EventSink,
        *,
        framework_id: str | None,
        auth: tuple[str, str] | None = None,
        connect_timeout_seconds: float = 10.0,
        heartbeat_misses: int = 3,
        reconnect_initial_seconds: float = 0.5,
        reconnect_max_seconds: float = 30.0,
    ) -> None:
        self._master = master_url.rstrip("/")
        self._settings = settings
        self._sink = sink
        self._auth = httpx.BasicAuth(*auth) if auth else None
        self._connect_timeout = connect_timeout_seconds
        self._misses = heartbeat_misses
        self._backoff = (reconnect_initial_seconds, reconnect_max_seconds)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._pending: deque[PendingCall] = deque()
        self._framework_id = framework_id
        self._leader: str | None = None
        self._stream_id: str | None = None
        self._generation = 0
        self._subscribed = False
        self._interval: float | None = None
        self._last_event = 0.0
        self._opened: float | None = None
        self._socket: socket.socket | None = None
        self.last_error: str | None = None
        timeout = httpx.Timeout(connect_timeout_seconds, read=None)
        self._stream_http = httpx.Client(timeout=timeout, auth=self._auth)
        self._calls_http = httpx.Client(timeout=connect_timeout_seconds, auth=self._auth)
        self._threads: list[threading.Thread] = []

    # -- state --------------------------------------------------------------------------------
    @property
    def subscribed(self) -> bool:
        with self._cond:
            return self._subscribed

    @property
    def framework_id(self) -> str | None:
        with self._cond:
            return self._framework_id

    @property
    def leader(self) -> str | None:
        with self._cond:
            return self._leader

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._stream_loop, "stream"), (self._call_loop, "calls")):
            thread = threading.Thread(target=target, name=f"loadmaster-mesos-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def fetch_json(self, path: str) -> object | None:
        """GET a master endpoint (e.g. `/master/slaves`) of the leader; None on any failure."""
        with self._cond:
            base = self._leader or self._master
        try:
            response = self._calls_http.get(base + path, headers={"Accept": "application/json"})
            response.raise_for_status()
            answer: object = response.json()
            return answer
        except (httpx.HTTPError, ValueError) as exc:
            _log.warning("mesos: GET %s failed: %s", path, exc)
            return None

    def stop(self, teardown: bool, drain_seconds: float = 2.0) -> None:
        """Queued calls (acknowledgements, kills) get `drain_seconds` to go out first. With
        `teardown` the framework is then removed (the master kills its tasks); without, the
        stream is just closed and the master waits `failover_timeout` for a re-subscribe."""
        deadline = time.monotonic() + drain_seconds
        with self._cond:
            while self._pending and self._subscribed and time.monotonic() < deadline:
                self._cond.wait(WATCH_SECONDS)
        if teardown:
            self._teardown()
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._drop_stream()
        for thread in self._threads:
            thread.join(timeout=self._connect_timeout + 1.0)
        self._stream_http.close()
        self._calls_http.close()

    def _teardown(self) -> None:
        with self._cond:
            target = self._target()
        if target is None:
            return
        url, headers, framework_id = target
        try:
            self._calls_http.post(url, json=call("TEARDOWN", framework_id), headers=headers)
        except httpx.HTTPError as exc:
            _log.warning("mesos: TEARDOWN failed: %s", exc)

    def forget_framework(self, reason: str) -> None:
        """The master removed the framework (an ERROR event): subscribe anew, as a new one."""
        _log.error("mesos: framework removed by the master (%s); subscribing anew", reason)
        with self._cond:
            self._framework_id = None
        self._drop_stream()

    # -- calls --------------------------------------------------------------------------------
    def submit(self, pending: PendingCall) -> None:
        with self._cond:
            self._pending.append(pending)
            self._cond.notify_all()

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def _target(self) -> tuple[str, dict[str, str], str] | None:
        if not self._subscribed or self._framework_id is None or self._stream_id is None:
            return None
        base = self._leader or self._master
        return base + API_PATH, {STREAM_ID_HEADER: self._stream_id}, self._framework_id

    def _call_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._watch()
                target = self._target()
                if target is None or not self._pending:
                    self._cond.wait(WATCH_SECONDS)
                    continue
                item = self._pending.popleft()
                generation = self._generation
            if item.generation is not None and item.generation != generation:
                if item.on_drop is not None:
                    item.on_drop(
                        f"{item.kind} not sent: its offers belong to an ended subscription"
                    )
                continue
            url, headers, framework_id = target
            try:
                response = self._calls_http.post(
                    url, json=item.build(framework_id), headers=headers
                )
            except httpx.HTTPError as exc:
                self._retry(item, f"{item.kind} failed: {exc}")
                continue
            code = response.status_code
            if code in (200, 202):
                with self._cond:
                    self._cond.notify_all()
                continue
            if code >= 500 or code == 307:
                self._retry(item, f"{item.kind} answered {code}")
                continue
            problem = f"{item.kind} refused with {code}: {response.text[:300]}"
            _log.error("mesos: %s", problem)
            if item.on_drop is not None:
                item.on_drop(problem)

    def _retry(self, item: PendingCall, problem: str) -> None:
        _log.warning("mesos: %s; will retry", problem)
        with self._cond:
            self._pending.appendleft(item)
        self._stop.wait(CALL_RETRY_SECONDS)

    def _watch(self) -> None:
        """Heartbeat-loss and stuck-subscribe detection (called with the lock held)."""
        now = time.monotonic()
        if self._subscribed and self._interval:
            if now - self._last_event > self._interval * self._misses:
                _log.warning("mesos: no heartbeat for %.1f s; reconnecting", now - self._last_event)
                self._shutdown_socket()
        elif self._opened is not None and now - self._opened > self._connect_timeout:
            _log.warning("mesos: no SUBSCRIBED within %.1f s; reconnecting", self._connect_timeout)
            self._shutdown_socket()

    def _drop_stream(self) -> None:
        with self._cond:
            self._shutdown_socket()

    def _shutdown_socket(self) -> None:
        sock, self._socket = self._socket, None
        self._opened = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- the stream ---------------------------------------------------------------------------
    def _stream_loop(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                self._subscribe_once()
                reason = "the event stream ended"
            except (httpx.HTTPError, OSError, FramingError, ValueError, _Refused) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            with self._cond:
                was_subscribed = self._subscribed
                self._subscribed = False
                self._leader = None  # it may be gone: ask the configured master again
                self._stream_id = None
                self._socket = None
                self._opened = None
                self.last_error = reason
            if was_subscribed:
                delay = self._backoff[0]
            if self._stop.is_set():
                break
            _log.warning("mesos: disconnected (%s); reconnecting in %.2f s", reason, delay)
            self._sink.disconnected(reason)
            self._stop.wait(delay)
            delay = min(delay * 2, self._backoff[1])

    def _subscribe_once(self) -> None:
        with self._cond:
            base = self._leader or self._master
        for _ in range(MAX_REDIRECTS):
            with self._cond:
                body = subscribe_call(self._settings, self._framework_id)
            headers = {"Accept": "application/json"}
            with self._stream_http.stream(
                "POST", base + API_PATH, json=body, headers=headers
            ) as response:
                if response.status_code == 307:
                    base = _redirect_base(base, response.headers.get("Location", ""))
                    _log.info("mesos: redirected to the leading master %s", base)
                    with self._cond:
                        self._leader = base
                    continue
                if response.status_code != 200:
                    raise _Refused(
                        f"SUBSCRIBE answered {response.status_code}: {response.read()[:300]!r}"
                    )
                self._read_stream(base, response)
                return
        raise _Refused(f"more than {MAX_REDIRECTS} redirects")

    def _read_stream(self, base: str, response: httpx.Response) -> None:
        with self._cond:
            self._leader = base
            self._stream_id = response.headers.get(STREAM_ID_HEADER)
            self._socket = _socket_of(response)
            self._opened = time.monotonic()
        decoder = RecordDecoder()
        for chunk in response.iter_raw():
            for record in decoder.feed(chunk):
                event = json.loads(record)
                if not isinstance(event, dict):
                    raise FramingError("an event is not a JSON object")
                self._on_event(event)
            if self._stop.is_set():
                return

    def _on_event(self, event: JsonDict) -> None:
        with self._cond:
            self._last_event = time.monotonic()
        if event.get("type") != "SUBSCRIBED":
            self._sink.event(event)
            return
        subscribed = event.get("subscribed") or {}
        framework_id = value_of(subscribed.get("framework_id"))
        with self._cond:
            self._framework_id = framework_id
            self._interval = float(subscribed.get("heartbeat_interval_seconds") or 0.0) or None
            self._subscribed = True
            self._opened = None
            self._generation += 1
            generation = self._generation
            self.last_error = None
            self._cond.notify_all()
        _log.info("mesos: subscribed as framework %s", framework_id)
        self._sink.subscribed(framework_id, generation)


def _redirect_base(base: str, location: str) -> str:
    """The master's Location is scheme-relative and without a path (`//host:5050`)."""
    if not location:
        raise _Refused("307 without a Location")
    joined = httpx.URL(base).join(location)
    port = f":{joined.port}" if joined.port else ""
    return f"{joined.scheme}://{joined.host}{port}"


def _socket_of(response: httpx.Response) -> socket.socket | None:
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    sock = stream.get_extra_info("socket")
    return sock if isinstance(sock, socket.socket) else None
