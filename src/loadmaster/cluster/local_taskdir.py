"""The on-disk record of one local task: what lets a restarted backend find the task again.

A task launched by one backend instance may outlive it, and then it is no longer that
process's child: nobody can `wait()` for it. So every fact a later instance needs is kept in
the task's directory `<work_dir>/<agent name>/tasks/<task id>/`:

    task.json   written by the backend before the runner starts: agent, resources, argv
    pid.json    written by the runner at start (its pid, which is also its process group id,
                and its start time from /proc); rewritten with the command's pid once the
                command runs
    exit.json   written by the runner when the command ended: exit code or signal
    kill.json   written by the backend when it asked the task to stop, so that an exit caused
                by the kill reads as KILLED and not FAILED, even after a restart
    stdout.log, stderr.log

Every JSON file is written to a temporary name and renamed, so a reader sees all of it or
none of it. A pid alone does not identify a process (pids are reused), so liveness compares
the start time recorded in pid.json with the one /proc reports now.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TASKS_DIR = "tasks"
# Steps of one job execution share a working directory named after the execution, so a step
# reads what the step before it wrote; the task's own directory keeps its logs and records.
EXECUTIONS_DIR = "executions"
EXECUTION_KEY_ENV = "LOADMASTER_EXECUTION_KEY"


def execution_work_dir(agent_dir: Path, environment: Mapping[str, str]) -> Path | None:
    key = environment.get(EXECUTION_KEY_ENV)
    if not key or "/" in key or key in (".", ".."):
        return None
    return agent_dir / EXECUTIONS_DIR / key


TASK_FILE = "task.json"
PID_FILE = "pid.json"
EXIT_FILE = "exit.json"
KILL_FILE = "kill.json"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
LOG_FILES = {"stdout": STDOUT_FILE, "stderr": STDERR_FILE}

# Exit codes a shell gives for a command it cannot run; the runner reports the same.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126


def is_safe_name(name: str) -> bool:
    """Agent names and task ids become path components: they must stay one component."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary sibling, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, or None when it is missing or not an object (a foreign file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot), or None if it is not running.

    A zombie counts as not running: it has ended, only its parent has not reaped it yet.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


@dataclass(slots=True, frozen=True)
class RunnerRecord:
    """The runner process of a task; its pid is also the task's process group id."""

    pid: int
    start_ticks: int
    command_pid: int | None = None

    def is_alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "pgid": self.pid,
            "start_ticks": self.start_ticks,
            "command_pid": self.command_pid,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunnerRecord | None:
        pid, ticks, command = data.get("pid"), data.get("start_ticks"), data.get("command_pid")
        if not isinstance(pid, int) or not isinstance(ticks, int):
            return None
        return cls(pid, ticks, command if isinstance(command, int) else None)


@dataclass(slots=True, frozen=True)
class ExitRecord:
    """How the command ended. `exit_code` is 128 + N for a command ended by signal N (the
    shell's convention), so every ended command has an exit code; `command_started` is false
    when the command could not be run at all."""

    exit_code: int | None
    signal: int | None = None
    message: str | None = None
    command_started: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "signal": self.signal,
            "message": self.message,
            "command_started": self.command_started,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExitRecord:
        code, signum, message = data.get("exit_code"), data.get("signal"), data.get("message")
        return cls(
            code if isinstance(code, int) else None,
            signum if isinstance(signum, int) else None,
            message if isinstance(message, str) else None,
            bool(data.get("command_started", True)),
        )

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitRecord:
        """From `Popen.returncode`, which is -N for a process ended by signal N."""
        if returncode >= 0:
            return cls(returncode)
        signum = -returncode
        return cls(128 + signum, signum, f"terminated by {signal_name(signum)}")


@dataclass(slots=True, frozen=True)
class TaskDir:
    """One task's directory and the records in it."""

    path: Path

    @classmethod
    def of(cls, agent_dir: Path, task_id: str) -> TaskDir:
        return cls(agent_dir / TASKS_DIR / task_id)

    @property
    def task_id(self) -> str:
        return self.path.name

    def log_path(self, stream: str) -> Path:
        """Raises ValueError for a stream other than `stdout` or `stderr`."""
        name = LOG_FILES.get(stream)
        if name is None:
            raise ValueError(f"stream must be one of {sorted(LOG_FILES)}, not {stream!r}")
        return self.path / name

    def read_task(self) -> dict[str, Any] | None:
        return read_json(self.path / TASK_FILE)

    def write_task(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path / TASK_FILE, data)

    def read_runner(self) -> RunnerRecord | None:
        data = read_json(self.path / PID_FILE)
        return RunnerRecord.from_json(data) if data is not None else None

    def write_runner(self, record: RunnerRecord) -> None:
        write_json_atomic(self.path / PID_FILE, record.to_json())

    def read_exit(self) -> ExitRecord | None:
        data = read_json(self.path / EXIT_FILE)
        return ExitRecord.from_json(data) if data is not None else None

    def write_exit(self, record: ExitRecord) -> None:
        write_json_atomic(self.path / EXIT_FILE, record.to_json())

    def is_kill_requested(self) -> bool:
        return (self.path / KILL_FILE).exists()

    def mark_kill_requested(self, reason: str) -> None:
        write_json_atomic(self.path / KILL_FILE, {"reason": reason})

    def live_runner(self) -> RunnerRecord | None:
        """The runner, when it is still running and the command has not ended."""
        if (self.path / EXIT_FILE).exists():
            return None
        runner = self.read_runner()
        return runner if runner is not None and runner.is_alive() else None


def task_dirs(agent_dir: Path) -> list[TaskDir]:
    """Every task directory of an agent, in name order (stable for tests and cleanup)."""
    try:
        entries = sorted((agent_dir / TASKS_DIR).iterdir())
    except OSError:
        return []
    return [TaskDir(entry) for entry in entries if entry.is_dir() and not entry.is_symlink()]
