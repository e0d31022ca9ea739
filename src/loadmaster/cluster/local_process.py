"""One local task's processes: starting its runner, signalling its group, reading its state.

A `LocalTask` is either launched by this backend (`popen` set: the runner is our child) or
adopted from an earlier backend (`popen` None: liveness comes from /proc and the start time in
pid.json). Both end the same way: the runner writes exit.json and ends; a runner that ends
without one was killed from outside. Polling returns what changed as data, so the backend
decides where updates go.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadmaster.cluster.local_taskdir import ExitRecord, RunnerRecord, TaskDir
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources

RUNNER_MODULE = "loadmaster.cluster.runner"


@dataclass(slots=True, frozen=True)
class Change:
    """A status a task reached, to be reported as an update."""

    status: TaskStatus
    exit_code: int | None = None
    message: str | None = None


@dataclass(slots=True, eq=False)
class LocalTask:
    """A task that holds its agent's resources until it has ended."""

    task_id: str
    agent_name: str
    report_agent_id: str
    resources: Resources
    dir: TaskDir
    popen: subprocess.Popen[bytes] | None = None
    runner: RunnerRecord | None = None
    reported_running: bool = False
    kill_deadline: float | None = None  # time.monotonic() after which SIGKILL follows
    hard_killed: bool = False

    def runner_alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.runner is not None and self.runner.is_alive()

    def signal_group(self, signum: int) -> bool:
        """Signal the task's process group, never a process that merely reuses its pid."""
        if self.popen is not None:
            if self.popen.poll() is not None:
                return False
            group = self.popen.pid  # not reaped yet, so the pid cannot have been reused
        elif self.runner is not None and self.runner.is_alive():
            group = self.runner.pid
        else:
            return False
        try:
            os.killpg(group, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def request_kill(self, reason: str, grace_seconds: float, now: float) -> None:
        """SIGTERM now, SIGKILL from `poll` once the grace period is over."""
        if self.kill_deadline is not None or self.dir.read_exit() is not None:
            return  # already being killed, or ended on its own (then that is what it reports)
        with contextlib.suppress(OSError):
            self.dir.mark_kill_requested(reason)
        self.kill_deadline = now + grace_seconds
        self.signal_group(signal.SIGTERM)

    def poll(self, now: float) -> tuple[list[Change], bool]:
        """What changed since the last poll, and whether the task has ended.

        The exit record is read only once the runner is gone (it writes the record, then
        ends), so a running task costs one non-blocking wait per poll and no file read."""
        if self.runner_alive():
            return self._progress(now), False
        ended = self.dir.read_exit()
        if ended is None:
            return [self._vanished()], True
        changes: list[Change] = []
        if ended.command_started and not self.reported_running:
            self.reported_running = True
            changes.append(Change(TaskStatus.RUNNING))
        changes.append(ended_change(self.dir, ended))
        return changes, True

    def _vanished(self) -> Change:
        """The runner ended without recording an exit: killed, or it could not work at all."""
        if self.popen is not None:  # clear whatever the killed runner left in its group
            with contextlib.suppress(OSError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        if self.kill_deadline is not None:
            how = " with SIGKILL after the grace period" if self.hard_killed else ""
            return Change(TaskStatus.KILLED, None, f"killed{how}")
        returncode = self.popen.returncode if self.popen is not None else None
        if returncode is not None and returncode >= 0:  # it failed by itself: no retry helps
            message = f"the task runner failed with exit status {returncode}, see stderr.log"
            return Change(TaskStatus.FAILED, None, message)
        return Change(TaskStatus.LOST, None, "the task runner ended without recording an exit")

    def _progress(self, now: float) -> list[Change]:
        changes: list[Change] = []
        if not self.reported_running:
            runner = self.dir.read_runner()
            if runner is not None and runner.command_pid is not None:
                self.runner = runner
                self.reported_running = True
                changes.append(Change(TaskStatus.RUNNING))
        if self.kill_deadline is not None and not self.hard_killed and now >= self.kill_deadline:
            self.hard_killed = True
            self.signal_group(signal.SIGKILL)
        return changes


def ended_change(task_dir: TaskDir, ended: ExitRecord) -> Change:
    """FINISHED on exit 0, FAILED otherwise, KILLED whatever the code if we asked for it."""
    message = ended.message
    if ended.exit_code is not None:
        status_text = f"exited with status {ended.exit_code}"
        message = status_text if message is None else f"{message} ({status_text})"
    if task_dir.is_kill_requested():
        return Change(TaskStatus.KILLED, ended.exit_code, message)
    status = TaskStatus.FINISHED if ended.exit_code == 0 else TaskStatus.FAILED
    return Change(status, ended.exit_code, message)


def start_runner(
    python: str,
    task_dir: TaskDir,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the runner as the leader of a new session (its pid is the task's process group)
    with the task's log files as stdout and stderr, and hand it the launch spec on stdin; the
    command runs in `cwd` (the task's directory unless given)."""
    spec: dict[str, Any] = {"argv": list(argv), "env": dict(env), "cwd": str(cwd or task_dir.path)}
    with (
        open(task_dir.log_path("stdout"), "wb") as stdout,
        open(task_dir.log_path("stderr"), "wb") as stderr,
    ):
        popen = subprocess.Popen(
            [python, "-m", RUNNER_MODULE],
            cwd=task_dir.path,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    assert popen.stdin is not None
    try:
        popen.stdin.write(json.dumps(spec).encode())
        popen.stdin.close()
    except BrokenPipeError:  # the runner died at once; polling reports it
        pass
    return popen
