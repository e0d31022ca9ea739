"""Configuration of the Dask backend, and how a Dask worker's declaration becomes an agent.

A worker declares what loadmaster may use with `--resources "cpus=8,mem=32768,disk=100000,
gpus=2"` (mem and disk in MiB, any other name is a custom resource). A worker that declares no
`cpus` offers its thread count, one that declares no `mem` its memory limit: every worker
offers something, and an operator who wants other numbers says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadmaster.resources import CPUS, MEM, Resources

MIB = 1024 * 1024
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+$")


@dataclass(slots=True, frozen=True)
class DaskBackendConfig:
    """`scheduler_address` is the Dask scheduler's (`tcp://host:8786`).

    `work_dir` is the directory on every worker under which task directories are made
    (`<work_dir>/<worker name>/tasks/<task id>`); None means `loadmaster/` in the worker's
    local directory. `connect_timeout_seconds` bounds one connection attempt; after a failed
    one the backend tries again after `reconnect_min_seconds`, doubling up to
    `reconnect_max_seconds`. `forward_env` lists glob patterns of this process's environment
    variables that tasks get as well (a worker has its own environment; nothing of the
    service's is passed by default). `log_limit_bytes` bounds the head of each stream that
    comes back to the service; the whole log stays on the worker. `kept_ended_tasks` is how
    many ended tasks' logs and ends the backend remembers.
    """

    scheduler_address: str
    work_dir: str | None = None
    connect_timeout_seconds: float = 10.0
    kill_grace_seconds: float = 10.0
    framework_id: str = "loadmaster-dask"
    poll_interval_seconds: float = 0.25
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 30.0
    forward_env: tuple[str, ...] = ()
    log_limit_bytes: int = 1024 * 1024
    kept_ended_tasks: int = 2000

    def __post_init__(self) -> None:
        if not _ADDRESS.match(self.scheduler_address):
            raise ValueError(
                f"scheduler_address must look like tcp://host:port, not {self.scheduler_address!r}"
            )
        positive = {
            "connect_timeout_seconds": self.connect_timeout_seconds,
            "poll_interval_seconds": self.poll_interval_seconds,
            "reconnect_min_seconds": self.reconnect_min_seconds,
            "log_limit_bytes": self.log_limit_bytes,
            "kept_ended_tasks": self.kept_ended_tasks,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive")
        if self.kill_grace_seconds < 0:
            raise ValueError("kill_grace_seconds must not be negative")
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds must be at least reconnect_min_seconds")


def worker_resources(info: Mapping[str, Any]) -> Resources:
    """An agent's total from the scheduler's record of a worker (`scheduler_info()`)."""
    declared = info.get("resources") or {}
    values = {
        str(name): float(amount)
        for name, amount in declared.items()
        if isinstance(amount, int | float) and not isinstance(amount, bool) and amount >= 0
    }
    if CPUS not in values:
        values[CPUS] = float(info.get("nthreads") or 0)
    if MEM not in values:
        values[MEM] = float(info.get("memory_limit") or 0) / MIB
    return Resources(values).round_values()


def worker_hostname(address: str, info: Mapping[str, Any]) -> str:
    """The node's identity: the worker's `--name`, else its address (which then changes on
    every restart, so a worker without a name comes back as a new node)."""
    name = info.get("name")
    return str(name) if name not in (None, "") else address
