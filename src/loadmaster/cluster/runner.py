"""The wrapper every local task runs in: `python -m loadmaster.cluster.runner`.

The service that launched a task may restart while the task runs; the task is then no longer
its child and cannot be waited for. The runner does the waiting and leaves what it learns in
the task directory (its working directory): pid.json when it starts, exit.json when the
command ends (see `local_taskdir`).

The launch spec (argv and the command's complete environment) arrives as JSON on stdin, not
as arguments and environment of the runner: a task's PYTHONHOME or PYTHONPATH must not break
the runner, and the environment (which may hold secrets) never lands on disk.

The backend starts the runner as the leader of a new session, so the runner's pid is the
process group id of the whole task. A kill is a SIGTERM to that group: the command gets it
directly and the runner only notes it, keeps waiting and records the outcome. When the command
has ended the runner kills whatever is left in the group, so a task's background processes do
not outlive it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from loadmaster.cluster.local_taskdir import (
    EXIT_CANNOT_EXECUTE,
    EXIT_NOT_FOUND,
    ExitRecord,
    RunnerRecord,
    TaskDir,
    process_start_ticks,
)


@dataclass(slots=True)
class _Termination:
    """SIGTERM bookkeeping: did it arrive, and did the command already exist to receive it.

    A signal that lands between the command's start and `command` being set is passed on
    although the group signal reached the command too: a second SIGTERM, harmless for a kill.
    """

    requested: bool = False
    reached_command: bool = False
    command: subprocess.Popen[bytes] | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        if self.command is not None:
            self.reached_command = True  # the group signal reached the command as well

    def forward_if_missed(self) -> None:
        """A SIGTERM that came before the command existed never reached it: pass it on."""
        if self.requested and not self.reached_command and self.command is not None:
            self.reached_command = True
            self.command.send_signal(signal.SIGTERM)


EXIT_INCOMPLETE_SPEC = 2


class IncompleteSpec(Exception):
    """The launch spec did not arrive whole (the launching process died while sending it)."""


def _read_spec() -> tuple[list[str], dict[str, str], str | None]:
    """An empty or truncated spec is not an empty command: it means the launch itself was
    interrupted, and the runner must leave no exit record so the task reads as LOST (and is
    launched again) rather than as a step that succeeded without running."""
    try:
        spec = json.loads(sys.stdin.buffer.read())
    except ValueError:
        raise IncompleteSpec from None
    if not isinstance(spec, dict) or "argv" not in spec or "env" not in spec:
        raise IncompleteSpec
    argv = [str(arg) for arg in spec.get("argv", [])]
    env = {str(key): str(value) for key, value in spec.get("env", {}).items()}
    cwd = spec.get("cwd")
    return argv, env, str(cwd) if cwd else None


def _start(
    argv: list[str], env: dict[str, str], cwd: str | None
) -> subprocess.Popen[bytes] | ExitRecord:
    """Start the command (stdout and stderr are the runner's: the task's log files)."""
    try:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, close_fds=True)
    except FileNotFoundError:
        return ExitRecord(EXIT_NOT_FOUND, None, f"command not found: {argv[0]}", False)
    except PermissionError:
        return ExitRecord(EXIT_CANNOT_EXECUTE, None, f"permission denied: {argv[0]}", False)
    except OSError as exc:
        return ExitRecord(EXIT_CANNOT_EXECUTE, None, f"cannot run {argv[0]}: {exc}", False)


def _clear_process_group() -> None:
    """Kill what the command left behind; only when we lead our own group (as launched by
    the backend), never the group of a shell that ran the runner by hand."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)  # ends the runner too: its work is done


def run(task_dir: TaskDir) -> int:
    argv, env, cwd = _read_spec()
    termination = _Termination()
    signal.signal(signal.SIGTERM, termination.handle)
    pid = os.getpid()
    ticks = process_start_ticks(pid)
    if ticks is None:  # pragma: no cover - /proc always knows the running process
        raise RuntimeError("cannot read this process's start time from /proc")
    task_dir.write_runner(RunnerRecord(pid, ticks))
    if termination.requested:
        task_dir.write_exit(ExitRecord(None, signal.SIGTERM, "killed before start", False))
        return 0
    if not argv:  # a step without a command has nothing to do and succeeds at once
        task_dir.write_exit(ExitRecord(0))
        return 0
    started = _start(argv, env, cwd)
    if isinstance(started, ExitRecord):
        task_dir.write_exit(started)
        return 0
    termination.command = started
    termination.forward_if_missed()
    task_dir.write_runner(RunnerRecord(pid, ticks, started.pid))
    returncode = started.wait()
    task_dir.write_exit(ExitRecord.from_returncode(returncode))
    _clear_process_group()
    return 0


def main() -> int:
    try:
        return run(TaskDir(Path.cwd()))
    except IncompleteSpec:
        print("loadmaster runner: the launch spec was incomplete; nothing was run", file=sys.stderr)
        return EXIT_INCOMPLETE_SPEC


if __name__ == "__main__":
    sys.exit(main())
