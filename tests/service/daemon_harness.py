"""Run `loadmaster serve` as a real process against a SQLite file, and watch its jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from loadmaster.store.records import JobRecord
from loadmaster.store.sql import SqlStore


@dataclass
class Deployment:
    root: Path
    config_path: Path
    db_url: str

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "loadmaster", *args, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"loadmaster {args} failed: {result.stderr}")
        return result

    def submit(self, workload: str) -> list[int]:
        path = self.root / f"workload-{time.monotonic_ns()}.toml"
        path.write_text(workload)
        out = self.cli("submit", str(path), "--parsable").stdout
        return [int(line) for line in out.split()]

    def jobs(self, ids: list[int]) -> dict[int, JobRecord]:
        with SqlStore.open(self.db_url) as store:
            return {i: job for i in ids if (job := store.jobs.get(i)) is not None}

    def wait_for(
        self, ids: list[int], done: Callable[[JobRecord], bool], timeout: float = 60.0
    ) -> dict[int, JobRecord]:
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs(ids)
            if len(jobs) == len(ids) and all(done(j) for j in jobs.values()):
                return jobs
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting; jobs: {[(j.id, j.status) for j in jobs.values()]}"
                )
            time.sleep(0.2)

    def wait_all_ended(self, ids: list[int], timeout: float = 60.0) -> dict[int, JobRecord]:
        return self.wait_for(ids, lambda j: j.status.has_ended, timeout)


def make_deployment(
    root: Path, *, cpus: float = 2.0, on_shutdown: str = "kill", extra: str = ""
) -> Deployment:
    db = root / "loadmaster.db"
    url = f"sqlite:///{db}"
    config = root / "loadmaster.toml"
    config.write_text(f"""
[store]
url = "{url}"
[scheduler]
data_dir = "{root / "data"}"
cycle_seconds = 0.2
sync_seconds = 0.5
on_shutdown = "{on_shutdown}"
[backend.local]
kill_grace_seconds = 1.0
[[backend.local.agents]]
name = "local-1"
resources = {{ cpus = {cpus}, mem = 4096, disk = 100000 }}
[logging]
level = "INFO"
{extra}
""")
    return Deployment(root, config, url)


@contextmanager
def running_daemon(deployment: Deployment) -> Iterator[subprocess.Popen[bytes]]:
    log = open(deployment.root / f"serve-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "loadmaster", "serve", "--config", str(deployment.config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    try:
        wait_healthy(deployment, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def wait_healthy(
    deployment: Deployment, process: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    status = deployment.data_dir / "status.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}")
        try:
            doc = json.loads(status.read_text())
            if doc.get("healthy") and doc.get("pid") == process.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become healthy")
