"""The local backend's harness for the contract suite."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from loadmaster.cluster.local import LocalBackend
from loadmaster.cluster.local_config import LocalAgentSpec, LocalBackendConfig
from loadmaster.cluster.local_taskdir import task_dirs
from loadmaster.cluster.protocol import ClusterBackend
from loadmaster.resources import Resources

from .contract import AGENT_CONTROL, COMMANDS, PROCESS_GROUPS, RESTART, SHELL, StepClock, pid_alive

AGENT = LocalAgentSpec("node-a", Resources.of(cpus=4.0, mem=2048.0, disk=4096.0))
OTHER = LocalAgentSpec("node-b", Resources.of(cpus=2.0, mem=1024.0, disk=1024.0))


@dataclass(slots=True)
class LocalHarness:
    """Backends on one work dir, with a short kill grace and fast polling."""

    work_dir: Path
    scratch: Path
    agents: list[LocalAgentSpec]
    clock: StepClock = field(default_factory=StepClock)
    features: frozenset[str] = frozenset({RESTART, AGENT_CONTROL, PROCESS_GROUPS, SHELL, COMMANDS})
    python_executable: str | None = None

    def config(self) -> LocalBackendConfig:
        return LocalBackendConfig(
            work_dir=self.work_dir,
            agents=self.agents,
            kill_grace_seconds=0.3,
            framework_id="test-framework",
            poll_interval_seconds=0.01,
            python_executable=self.python_executable,
        )

    def create(self) -> LocalBackend:
        return LocalBackend(self.config(), clock=self.clock)

    def stop_agent(self, backend: ClusterBackend, hostname: str) -> None:
        assert isinstance(backend, LocalBackend)
        backend.stop_agent(hostname)

    def start_agent(self, backend: ClusterBackend, hostname: str) -> None:
        assert isinstance(backend, LocalBackend)
        backend.start_agent(hostname)

    def cleanup(self) -> None:
        """Kill the group of any runner still alive, and any process a test recorded."""
        agent_dirs = list(self.work_dir.iterdir()) if self.work_dir.exists() else []
        for agent_dir in agent_dirs:
            for task_dir in task_dirs(agent_dir):
                runner = task_dir.read_runner()
                if runner is not None and runner.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(runner.pid, signal.SIGKILL)
        for pid_file in self.scratch.glob("*.pid"):
            text = pid_file.read_text()
            if text.isdigit() and pid_alive(int(text)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(text), signal.SIGKILL)


def make_harness(tmp_path: Path, agents: list[LocalAgentSpec]) -> LocalHarness:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return LocalHarness(tmp_path / "work", scratch, agents)
