"""What runs inside a Dask worker process for the Dask backend.

`run_task` is the function the backend submits, pinned to one worker: it runs the task's
command as a subprocess in its own session (so its pid is the task's process group id), waits
for it and returns how it ended with the head of its output. The task directory on the worker
(`<work dir>/<hostname>/tasks/<task id>/`) has the same layout as a local agent's: the
command's pid.json and exit.json, stdout.log and stderr.log, so the local node tasks (health
check, cleanup) work on Dask workers unchanged.

While it waits the function has seceded from the worker's thread pool: a waiting task does not
hold a thread slot, so `--nthreads` does not limit how many tasks a worker runs (loadmaster's
own resource accounting does).

Kills come from the backend through `Client.run(kill_on_worker, …)`: the worker's
`TaskRegistry` plugin knows the pid of every running command, SIGTERMs its group, and the
waiting `run_task` sends SIGKILL once the grace period is over. A kill that arrives before the
command started is remembered, and the command is then never started.

The command is started through a tiny Python shim that sets PR_SET_PDEATHSIG and then execs
it: when the worker process dies (SIGKILL, out of memory), the command dies with it instead of
running on unaccounted. Only the group's leader gets that signal; its own children may stay.

This module is imported on workers: it must only need the standard library, `distributed`
and `loadmaster.cluster.local_taskdir`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import get_worker, secede
from distributed.diagnostics.plugin import WorkerPlugin

from loadmaster.cluster.local_taskdir import (
    EXIT_CANNOT_EXECUTE,
    EXIT_NOT_FOUND,
    ExitRecord,
    RunnerRecord,
    TaskDir,
    execution_work_dir,
    process_start_ticks,
)

PLUGIN_NAME = "loadmaster-tasks"
# Node tasks are built on the service's side, which knows neither the worker's work dir nor
# its Python: these stand for them in a command and are replaced on the worker.
WORK_DIR_TOKEN = "{loadmaster_work_dir}"
PYTHON_TOKEN = "{loadmaster_python}"
TASK_ID_ENV = "LOADMASTER_TASK_ID"
WORK_DIR_ENV = "LOADMASTER_WORK_DIR"
DEFAULT_WORK_SUBDIR = "loadmaster"
WAIT_SLICE_SECONDS = 0.05
# `distributed.secede` is not annotated.
_secede: Callable[[], None] = secede
EARLY_KILL_TTL = 3600.0

_SHIM = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(137)  # the worker died before the signal was armed
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except FileNotFoundError:
    sys.stderr.write("command not found: " + sys.argv[2] + "\\n")
    os._exit(127)
except OSError as exc:
    sys.stderr.write("cannot run " + sys.argv[2] + ": " + str(exc) + "\\n")
    os._exit(126)
"""


@dataclass(slots=True)
class _Running:
    pid: int | None = None
    kill_deadline: float | None = None  # time.monotonic() after which SIGKILL follows
    hard_killed: bool = False


class TaskRegistry(WorkerPlugin):
    """Per-worker registry of the commands `run_task` runs: what a kill needs to find them.

    Registered by every backend under one name and idempotent, so a later backend's
    registration keeps the registry (and the running tasks it knows) of an earlier one.
    It travels pickled without its state; the state lives on the worker only.
    """

    idempotent = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._killed_early: dict[str, float] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def teardown(self, worker: Any) -> None:
        """The worker is closing: its tasks are lost either way, so none may run on."""
        for entry in list(self._running.values()):
            if entry.pid is not None:
                _signal_group(entry.pid, signal.SIGKILL)

    def register(self, task_id: str) -> bool:
        """False when a kill for the task arrived before it started: do not start it."""
        with self._lock:
            if self._killed_early.pop(task_id, None) is not None:
                return False
            self._running[task_id] = _Running()
            return True

    def started(self, task_id: str, pid: int) -> None:
        with self._lock:
            entry = self._running.get(task_id)
            if entry is not None:
                entry.pid = pid
                if entry.kill_deadline is not None:
                    _signal_group(pid, signal.SIGTERM)

    def finished(self, task_id: str) -> bool:
        """Forget the task; True when a kill was asked for it."""
        with self._lock:
            entry = self._running.pop(task_id, None)
            return entry is not None and entry.kill_deadline is not None

    def kill(self, task_id: str, grace_seconds: float) -> bool:
        """SIGTERM the task's group now (SIGKILL follows from `run_task`). True when the task
        was running here; otherwise it is remembered and never started."""
        with self._lock:
            entry = self._running.get(task_id)
            if entry is None:
                now = time.monotonic()
                for stale in [
                    t for t, at in self._killed_early.items() if now - at > EARLY_KILL_TTL
                ]:
                    del self._killed_early[stale]  # kills of tasks that ended or never came
                self._killed_early[task_id] = now
                return False
            if entry.kill_deadline is None:
                entry.kill_deadline = time.monotonic() + grace_seconds
                if entry.pid is not None:
                    _signal_group(entry.pid, signal.SIGTERM)
            return True

    def escalate(self, task_id: str) -> None:
        """SIGKILL a killed task whose grace period is over."""
        with self._lock:
            entry = self._running.get(task_id)
            if entry is None or entry.kill_deadline is None or entry.hard_killed:
                return
            if entry.pid is not None and time.monotonic() >= entry.kill_deadline:
                entry.hard_killed = True
                _signal_group(entry.pid, signal.SIGKILL)


def kill_on_worker(task_id: str, grace_seconds: float, dask_worker: Any) -> bool:
    """Run on a worker through `Client.run`: ask its registry to kill the task."""
    registry = dask_worker.plugins.get(PLUGIN_NAME)
    if not isinstance(registry, TaskRegistry):
        return False
    return registry.kill(task_id, grace_seconds)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _expand(value: str, work_dir: Path) -> str:
    return value.replace(WORK_DIR_TOKEN, str(work_dir)).replace(PYTHON_TOKEN, sys.executable)


def _missing_command(argv: list[str], env: dict[str, str]) -> str | None:
    """Why the command cannot run, found before anything starts (so it never reads RUNNING)."""
    program = argv[0]
    if "/" in program:
        if not os.path.isfile(program):
            return f"command not found: {program}"
        if not os.access(program, os.X_OK):
            return f"permission denied: {program}"
        return None
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        return f"command not found: {program}"
    return None


def _head(path: Path, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def _result(task_dir: TaskDir, record: ExitRecord, killed: bool, log_limit: int) -> dict[str, Any]:
    task_dir.write_exit(record)
    return {
        "exit_code": record.exit_code,
        "signal": record.signal,
        "message": record.message,
        "command_started": record.command_started,
        "killed": killed,
        "stdout": _head(task_dir.log_path("stdout"), log_limit),
        "stderr": _head(task_dir.log_path("stderr"), log_limit),
    }


def _prepare(spec: dict[str, Any], worker: Any) -> tuple[Path, TaskDir]:
    root = Path(spec.get("work_dir") or Path(worker.local_directory) / DEFAULT_WORK_SUBDIR)
    node_dir = root / str(spec["hostname"])
    task_dir = TaskDir.of(node_dir, str(spec["task_id"]))
    if task_dir.path.exists():  # an ended task of the same id: ids may be reused
        shutil.rmtree(task_dir.path, ignore_errors=True)
    task_dir.path.mkdir(parents=True)
    for stream in ("stdout", "stderr"):
        task_dir.log_path(stream).touch()
    return root, task_dir


def run_task(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task's command on this worker; returns exit code, messages and output heads.

    `spec` holds task_id, hostname, argv, env (what the task adds to the worker's
    environment), work_dir (None: under the worker's local directory), topic (where the
    RUNNING event goes) and log_limit_bytes.
    """
    worker = get_worker()
    registry = worker.plugins.get(PLUGIN_NAME)
    if not isinstance(registry, TaskRegistry):
        raise RuntimeError(f"the worker has no {PLUGIN_NAME} plugin")
    task_id = str(spec["task_id"])
    log_limit = int(spec["log_limit_bytes"])
    root, task_dir = _prepare(spec, worker)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in spec["env"].items()})
    env[TASK_ID_ENV] = task_id
    cwd = execution_work_dir(task_dir.path.parent.parent, env) or task_dir.path
    cwd.mkdir(parents=True, exist_ok=True)
    env[WORK_DIR_ENV] = str(cwd)
    argv = [_expand(str(arg), root) for arg in spec["argv"]]
    if not registry.register(task_id):
        record = ExitRecord(None, signal.SIGTERM, "killed before start", False)
        return _result(task_dir, record, True, log_limit)
    try:
        if not argv:  # a step without a command has nothing to do and succeeds at once
            return _result(task_dir, ExitRecord(0), registry.finished(task_id), log_limit)
        problem = _missing_command(argv, env)
        if problem is not None:
            code = EXIT_NOT_FOUND if problem.startswith("command not found") else 126
            record = ExitRecord(code, None, problem, False)
            return _result(task_dir, record, registry.finished(task_id), log_limit)
        return _run_command(spec, worker, registry, task_dir, argv, env, cwd)
    finally:
        registry.finished(task_id)


def _run_command(
    spec: dict[str, Any],
    worker: Any,
    registry: TaskRegistry,
    task_dir: TaskDir,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
) -> dict[str, Any]:
    task_id = str(spec["task_id"])
    log_limit = int(spec["log_limit_bytes"])
    shim = [sys.executable, "-I", "-c", _SHIM, str(os.getpid()), *argv]
    try:
        with (
            open(task_dir.log_path("stdout"), "wb") as stdout,
            open(task_dir.log_path("stderr"), "wb") as stderr,
        ):
            popen = subprocess.Popen(
                shim,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
    except OSError as exc:
        record = ExitRecord(EXIT_CANNOT_EXECUTE, None, f"cannot run {argv[0]}: {exc}", False)
        return _result(task_dir, record, registry.finished(task_id), log_limit)
    ticks = process_start_ticks(popen.pid) or 0
    task_dir.write_runner(RunnerRecord(popen.pid, ticks, popen.pid))
    registry.started(task_id, popen.pid)
    worker.log_event(str(spec["topic"]), {"task_id": task_id, "key": spec["key"], "pid": popen.pid})
    with contextlib.suppress(ValueError):  # not in a worker thread (called directly)
        _secede()
    while True:
        try:
            returncode = popen.wait(timeout=WAIT_SLICE_SECONDS)
            break
        except subprocess.TimeoutExpired:
            registry.escalate(task_id)
    _signal_group(popen.pid, signal.SIGKILL)  # what the command left in its group
    killed = registry.finished(task_id)
    return _result(task_dir, ExitRecord.from_returncode(returncode), killed, log_limit)
