"""A real Dask cluster on loopback for the Dask backend's tests, and its contract harness.

One `dask scheduler` and a few `dask worker` processes (without nanny, so that killing a
worker's process kills the worker), each with its own `--name` and `--resources`. Stopping an
agent SIGKILLs its worker; starting it runs a new worker under the same name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Client

from loadmaster.cluster.dask import DaskBackend
from loadmaster.cluster.dask_config import DaskBackendConfig
from loadmaster.cluster.protocol import ClusterBackend

from .contract import AGENT_CONTROL, COMMANDS, PROCESS_GROUPS, SHELL, StepClock, pid_alive

START_SECONDS = 30.0


@dataclass(slots=True, frozen=True)
class WorkerSpec:
    name: str
    resources: str  # as for `dask worker --resources`
    nthreads: int = 2


DEFAULT_WORKERS = (
    WorkerSpec("dask-a", "cpus=4,mem=2048,disk=4096"),
    WorkerSpec("dask-b", "cpus=2,mem=1024,disk=1024"),
    WorkerSpec("dask-gpu", "cpus=2,mem=1024,disk=1024,gpus=1"),
)


@dataclass(slots=True)
class DaskTestCluster:
    """The processes of one loopback Dask cluster; `close` leaves none behind."""

    root: Path
    workers: tuple[WorkerSpec, ...] = DEFAULT_WORKERS
    port: int = 0
    address: str = ""
    scheduler: subprocess.Popen[bytes] | None = None
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ended: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        scheduler_file = self.root / "scheduler.json"
        self.scheduler = self._spawn(
            "scheduler",
            [
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        _wait(scheduler_file.exists, "the scheduler file")
        self.address = str(json.loads(scheduler_file.read_text())["address"])
        for spec in self.workers:
            self.start_worker(spec.name, wait=False)
        self.wait_for_workers({spec.name for spec in self.workers})

    def _spawn(self, label: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{label}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        with log:
            return subprocess.Popen(
                [sys.executable, "-m", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_worker(self, name: str, wait: bool = True) -> None:
        spec = next(s for s in self.workers if s.name == name)
        local = self.root / "workers" / name
        local.mkdir(parents=True, exist_ok=True)
        self.running[name] = self._spawn(
            f"worker-{name}",
            [
                "distributed.cli.dask_worker",
                self.address,
                "--name",
                name,
                "--nthreads",
                str(spec.nthreads),
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--resources",
                spec.resources,
                "--local-directory",
                str(local),
            ],
        )
        if wait:
            self.wait_for_workers({name})

    def kill_worker(self, name: str) -> int:
        """SIGKILL the worker's process (as a crash would); returns its pid."""
        process = self.running.pop(name)
        process.kill()
        process.wait()
        self.ended.append(process)
        return process.pid

    def worker_names(self) -> set[str]:
        with Client(self.address, timeout=10, set_as_default=False) as client:
            workers = client.scheduler_info()["workers"].values()
            return {str(w.get("name")) for w in workers}

    def address_of(self, name: str) -> str:
        with Client(self.address, timeout=10, set_as_default=False) as client:
            workers = client.scheduler_info()["workers"].items()
            return next(str(a) for a, w in workers if str(w.get("name")) == name)

    def wait_for_workers(self, names: set[str]) -> None:
        _wait(lambda: names <= self.worker_names(), f"workers {sorted(names)}")

    def restore(self) -> None:
        """Bring back every stopped worker (a test may leave one stopped)."""
        missing = [spec.name for spec in self.workers if spec.name not in self.running]
        for name in missing:
            self.start_worker(name, wait=False)
        if missing:
            self.wait_for_workers(set(missing))

    def close(self) -> None:
        """Workers first, then the scheduler (a worker whose scheduler is gone first waits to
        reconnect); SIGKILL what is still there after a few seconds. The commands of the
        workers die with them (see `dask_remote`)."""
        _terminate(list(self.running.values()))
        self.running.clear()
        if self.scheduler is not None:
            _terminate([self.scheduler])


def _terminate(processes: list[subprocess.Popen[bytes]], grace_seconds: float = 3.0) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait(predicate: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


@dataclass(slots=True)
class DaskHarness:
    """Backends on one shared loopback cluster, with a short kill grace and fast polling."""

    cluster: DaskTestCluster
    scratch: Path
    clock: StepClock = field(default_factory=StepClock)
    features: frozenset[str] = frozenset({AGENT_CONTROL, PROCESS_GROUPS, SHELL, COMMANDS})

    def config(self) -> DaskBackendConfig:
        return DaskBackendConfig(
            scheduler_address=self.cluster.address,
            connect_timeout_seconds=10.0,
            kill_grace_seconds=0.3,
            framework_id="test-framework",
            poll_interval_seconds=0.05,
            forward_env=("LOADMASTER_TEST_*",),
        )

    def create(self) -> DaskBackend:
        return DaskBackend(self.config(), clock=self.clock)

    def stop_agent(self, backend: ClusterBackend, hostname: str) -> None:
        self.cluster.kill_worker(hostname)

    def start_agent(self, backend: ClusterBackend, hostname: str) -> None:
        self.cluster.start_worker(hostname)
        deadline = time.monotonic() + START_SECONDS
        while hostname not in {a.hostname for a in backend.agents()}:
            assert time.monotonic() < deadline, f"{hostname} did not come back"
            time.sleep(0.02)

    def cleanup(self) -> None:
        """Kill any process a test recorded, and bring stopped workers back."""
        for pid_file in self.scratch.glob("*.pid"):
            text = pid_file.read_text()
            if text.isdigit() and pid_alive(int(text)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(text), signal.SIGKILL)
        self.cluster.restore()
