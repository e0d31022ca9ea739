"""Configuration of the local backend: which agents run on this machine, with what resources.

Without explicit agents the machine is one agent named after its hostname, offering what the
machine has less a reserve for the service itself and the operating system. Resource sizes
are measured once, when the agent list is resolved: an agent's total never changes while it
runs (as a Mesos agent's does not).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from loadmaster.cluster.local_taskdir import is_safe_name
from loadmaster.resources import CPUS, DISK, MEM, Resources

MIB = 1024 * 1024
DEFAULT_RESERVE = Resources.of(cpus=0.5, mem=512.0, disk=1024.0)


@dataclass(slots=True, frozen=True)
class LocalAgentSpec:
    """One local agent. The name is its hostname and its directory under the work dir."""

    name: str
    resources: Resources

    def __post_init__(self) -> None:
        if not is_safe_name(self.name):
            raise ValueError(f"agent name {self.name!r} must be a single path component")


@dataclass(slots=True, frozen=True)
class LocalBackendConfig:
    """`agents=None` means one agent for the whole machine, less `reserve`.

    `kill_grace_seconds` is how long a killed task has between SIGTERM and SIGKILL;
    `poll_interval_seconds` how often the watcher looks at running tasks (it bounds how late a
    status update can be). `python_executable` runs the task runner (default: this Python).
    """

    work_dir: Path
    agents: list[LocalAgentSpec] | None = None
    reserve: Resources = DEFAULT_RESERVE
    kill_grace_seconds: float = 10.0
    framework_id: str = "loadmaster-local"
    poll_interval_seconds: float = 0.05
    python_executable: str | None = None

    def __post_init__(self) -> None:
        if self.kill_grace_seconds < 0:
            raise ValueError("kill_grace_seconds must not be negative")
        if self.poll_interval_seconds <= 0:
            raise ValueError("poll_interval_seconds must be positive")
        if self.agents is not None:
            names = [agent.name for agent in self.agents]
            if not names:
                raise ValueError("agents: give at least one agent, or None for the machine")
            if len(set(names)) != len(names):
                raise ValueError(f"agents: names must be unique, got {names}")

    def resolved_agents(self) -> list[LocalAgentSpec]:
        if self.agents is not None:
            return list(self.agents)
        return [
            LocalAgentSpec(socket.gethostname(), machine_resources(self.work_dir, self.reserve))
        ]


def machine_resources(work_dir: Path, reserve: Resources = DEFAULT_RESERVE) -> Resources:
    """This machine's cpus, memory (MiB) and free disk of `work_dir` (MiB), less `reserve`;
    no amount goes below zero. Container limits (cgroup v2) win over the host's numbers."""
    measured = Resources(
        {CPUS: _cpu_count(), MEM: _memory_bytes() / MIB, DISK: _free_disk_bytes(work_dir) / MIB}
    )
    free = measured.subtract(reserve)
    return Resources({name: max(value, 0.0) for name, value in free.items()}).round_values()


def _cpu_count() -> float:
    count = float(len(os.sched_getaffinity(0)))
    quota = _read_first_line("/sys/fs/cgroup/cpu.max")
    if quota is not None:
        parts = quota.split()
        if len(parts) == 2 and parts[0] != "max":
            with contextlib.suppress(ValueError, ZeroDivisionError):
                count = min(count, int(parts[0]) / int(parts[1]))
    return count


def _memory_bytes() -> float:
    physical = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    limit = _read_first_line("/sys/fs/cgroup/memory.max")
    if limit is not None and limit.isdigit():
        return min(physical, float(limit))
    return physical


def _free_disk_bytes(work_dir: Path) -> float:
    """Free space of the work dir's file system (of its nearest existing parent)."""
    path = work_dir.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return float(shutil.disk_usage(path).free)


def _read_first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip()
    except OSError:
        return None
