"""Settings of the Mesos backend, and the port through which it keeps its framework id.

The framework id is what lets a restarted scheduler fail over to its running tasks instead
of registering as a new framework (whose tasks the master would kill once the old one's
`failover_timeout` runs out), so it is kept outside the process: the service passes its
store's settings (`store.config` has exactly this shape).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

DEFAULT_FAILOVER_TIMEOUT_SECONDS = 7 * 24 * 3600.0


class FrameworkIdStore(Protocol):
    def framework_id(self) -> str | None: ...

    def set_framework_id(self, framework_id: str | None, *, when: datetime) -> None: ...


@dataclass(slots=True)
class MemoryFrameworkIds:
    """A `FrameworkIdStore` for tests and one-shot runs: forgets everything at exit."""

    value: str | None = None
    saves: list[str | None] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def framework_id(self) -> str | None:
        with self._lock:
            return self.value

    def set_framework_id(self, framework_id: str | None, *, when: datetime) -> None:
        with self._lock:
            self.value = framework_id
            self.saves.append(framework_id)


@dataclass(slots=True, frozen=True)
class MesosBackendConfig:
    """`master` is one master's base URL (`http://host:5050`); a non-leading master redirects
    to the leader. `role` is the single role the framework subscribes with and whose
    reservations (besides unreserved `*`) it uses. Timing knobs exist for tests."""

    master: str
    role: str = "*"
    principal: str | None = None
    secret: str | None = None
    failover_timeout_seconds: float = DEFAULT_FAILOVER_TIMEOUT_SECONDS
    framework_name: str = "loadmaster"
    docker_image: str | None = None
    user: str = "root"
    hostname: str | None = None
    refuse_seconds: float = 5.0
    heartbeat_misses: int = 3
    connect_timeout_seconds: float = 10.0
    reconnect_initial_seconds: float = 0.5
    reconnect_max_seconds: float = 30.0
    start_wait_seconds: float = 10.0
    kill_wait_seconds: float = 10.0

    def problems(self) -> list[str]:
        """What is wrong, each naming its key; empty when the settings can be used."""
        out: list[str] = []
        parts = urlsplit(self.master)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            out.append(f"master: must be an http(s) URL like http://host:5050, not {self.master!r}")
        if not self.role or self.role != self.role.strip():
            out.append(f"role: must be a role name or '*', not {self.role!r}")
        if self.secret and not self.principal:
            out.append("secret: needs a principal")
        if self.failover_timeout_seconds < 0:
            out.append("failover_timeout_seconds: must not be negative")
        if not self.framework_name:
            out.append("framework_name: must not be empty")
        if self.heartbeat_misses < 1:
            out.append("heartbeat_misses: must be at least 1")
        return out

    def base_url(self) -> str:
        parts = urlsplit(self.master)
        return f"{parts.scheme}://{parts.netloc}"
