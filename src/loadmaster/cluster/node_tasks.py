"""Node tasks for local agents: health check, cleanup and image pull (spec §3.5).

The reference's node tasks ask Docker about itself and remove containers and volumes. A local
agent has no containers; what it has is its directory under the backend's work dir, so the
same three tasks look after that. They run as ordinary tasks through the backend (and so
through the runner), with the command `python -m loadmaster.cluster.node_tasks`:

    health  --work-dir D --min-free-mib N
        exit 0 when D is a writable directory with more than N MiB free on its file system;
        exit 3 when it has N MiB or less (the node's LOW_DOCKER_SPACE error, by exit code);
        exit 1 for any other problem (missing, not a directory, not writable).
    cleanup --work-dir D --initial
        initial cleanup: remove the directories of every ended task (leftovers of earlier
        runs); the directories of live tasks are kept.
    cleanup --work-dir D [--execution-dir PATTERN ...]
        regular cleanup: remove the task directories matching the patterns (relative to D,
        e.g. `tasks/<execution's cluster id>_*`), again of ended tasks only. Exit 1 when a
        directory could not be removed.

Image pull: tasks of a local agent run from this machine's file system and there is no image
to pull, so the pull task is a trivial command that succeeds; the node still passes through
IMAGE_PULL, as its state machine expects.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from loadmaster.cluster.local_taskdir import EXECUTIONS_DIR, TASKS_DIR, TaskDir, task_dirs
from loadmaster.model.nodes import CLEANUP, HEALTH, IMAGE_PULL, Node
from loadmaster.model.tasks import Task
from loadmaster.resources import Resources

MODULE = "loadmaster.cluster.node_tasks"
NODE_TASK_RESOURCES = Resources.of(cpus=0.1, mem=32.0)
HEALTH_TIMEOUT = timedelta(minutes=15)
PULL_TIMEOUT = timedelta(minutes=15)
CLEANUP_TIMEOUT = timedelta(minutes=10)
NODE_TASK_STAGING_TIMEOUT = timedelta(minutes=2)
DEFAULT_MIN_FREE_MIB = 1024.0
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_LOW_DISK = 3
# A task directory without pid.json may belong to a task being launched right now.
LAUNCH_GRACE_SECONDS = 60.0
MIB = 1024 * 1024

_ID_WORDS = {HEALTH: "health", CLEANUP: "cleanup", IMAGE_PULL: "pull"}


@dataclass(slots=True)
class LocalNodeTaskFactory:
    """Creates the node tasks of local agents (a `NodeTaskFactory`).

    `work_dir` is the local backend's; a node's directory is `<work_dir>/<hostname>`.
    `cluster_id_of` maps a job execution id to its cluster id (the prefix of its task ids);
    executions it does not know are skipped (the next initial cleanup removes them). Task ids
    are `loadmaster_<health|cleanup|pull>_<framework>_<n>`, numbered per kind from 1.
    """

    framework_id: str
    work_dir: Path
    cluster_id_of: Callable[[int], str | None]
    min_free_mib: float = DEFAULT_MIN_FREE_MIB
    python: str = field(default_factory=lambda: sys.executable)
    _counters: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def health_task(self, node: Node) -> Task:
        args = (
            "health",
            "--work-dir",
            self._node_dir(node),
            "--min-free-mib",
            f"{self.min_free_mib:g}",
        )
        return self._task(HEALTH, node, "health check", self._module(*args), HEALTH_TIMEOUT)

    def image_pull_task(self, node: Node) -> Task:
        return self._task(IMAGE_PULL, node, "image pull", (self.python, "-c", "pass"), PULL_TIMEOUT)

    def cleanup_task(self, node: Node, execution_ids: Sequence[int], initial: bool) -> Task:
        args = ["cleanup", "--work-dir", self._node_dir(node)]
        if initial:
            args.append("--initial")
        else:
            for execution_id in execution_ids:
                cluster_id = self.cluster_id_of(execution_id)
                if cluster_id is not None:
                    args += ["--execution-dir", f"{TASKS_DIR}/{cluster_id}_*"]
                    args += ["--execution-dir", f"{EXECUTIONS_DIR}/{cluster_id}"]
        name = "initial cleanup" if initial else f"cleanup of executions {list(execution_ids)}"
        return self._task(CLEANUP, node, name, self._module(*args), CLEANUP_TIMEOUT)

    def _node_dir(self, node: Node) -> str:
        return str(self.work_dir / node.hostname)

    def _module(self, *args: str) -> tuple[str, ...]:
        return (self.python, "-m", MODULE, *args)

    def _task(
        self,
        kind: str,
        node: Node,
        name: str,
        command: tuple[str, ...],
        running_timeout: timedelta,
    ) -> Task:
        number = self._counters.get(kind, 0) + 1
        self._counters[kind] = number
        return Task(
            id=f"loadmaster_{_ID_WORDS[kind]}_{self.framework_id}_{number}",
            kind=kind,
            resources=NODE_TASK_RESOURCES,
            agent_id=node.agent_id,
            name=f"{name} on {node.hostname}",
            command=command,
            running_timeout=running_timeout,
            staging_timeout=NODE_TASK_STAGING_TIMEOUT,
        )


# -- the commands -----------------------------------------------------------------------------
def check_health(work_dir: Path, min_free_mib: float) -> int:
    if not work_dir.is_dir():
        print(f"unhealthy: {work_dir} is not a directory", file=sys.stderr)
        return EXIT_FAILURE
    try:
        free_mib = shutil.disk_usage(work_dir).free / MIB
    except OSError as exc:
        print(f"unhealthy: cannot read the free space of {work_dir}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if free_mib <= min_free_mib:
        print(
            f"low disk space: {free_mib:.0f} MiB free in {work_dir}, "
            f"more than {min_free_mib:g} MiB needed",
            file=sys.stderr,
        )
        return EXIT_LOW_DISK
    try:
        with tempfile.NamedTemporaryFile(dir=work_dir, prefix=".health-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        print(f"unhealthy: {work_dir} is not writable: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"healthy: {work_dir} is writable, {free_mib:.0f} MiB free")
    return EXIT_OK


def is_ended(task_dir: TaskDir, now: float) -> bool:
    """The task has ended (or is a leftover that never started) and its directory may go."""
    if task_dir.read_exit() is not None:
        return True
    runner = task_dir.read_runner()
    if runner is not None:
        return not runner.is_alive()
    try:
        return now - task_dir.path.stat().st_mtime > LAUNCH_GRACE_SECONDS
    except OSError:
        return False


def _matching_dirs(work_dir: Path, patterns: Sequence[str]) -> list[TaskDir] | str:
    """Task directories the patterns match, or the reason a pattern is refused."""
    tasks_dir = work_dir / TASKS_DIR
    found: dict[Path, TaskDir] = {}
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            return f"pattern {pattern!r} must be relative to the work dir, without '..'"
        for match in work_dir.glob(pattern):
            if match.parent == tasks_dir and match.is_dir() and not match.is_symlink():
                found.setdefault(match, TaskDir(match))
    return [found[path] for path in sorted(found)]


def _shared_dirs(work_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """Shared working directories of finished executions (`executions/<cluster id>`)."""
    shared = work_dir / EXECUTIONS_DIR
    out: list[Path] = []
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            continue
        out.extend(
            match
            for match in work_dir.glob(pattern)
            if match.parent == shared and match.is_dir() and not match.is_symlink()
        )
    return sorted(set(out))


def cleanup(work_dir: Path, patterns: Sequence[str], initial: bool) -> int:
    if not work_dir.is_dir():
        print(f"cleanup failed: {work_dir} is not a directory", file=sys.stderr)
        return EXIT_FAILURE
    candidates = task_dirs(work_dir) if initial else _matching_dirs(work_dir, patterns)
    if isinstance(candidates, str):
        print(f"cleanup failed: {candidates}", file=sys.stderr)
        return EXIT_FAILURE
    now = time.time()
    failures = 0
    for task_dir in candidates:
        if not is_ended(task_dir, now):
            print(f"kept {task_dir.task_id}: the task is still running")
            continue
        try:
            shutil.rmtree(task_dir.path)
        except OSError as exc:
            failures += 1
            print(f"cannot remove {task_dir.path}: {exc}", file=sys.stderr)
        else:
            print(f"removed {task_dir.task_id}")
    for shared in [] if initial else _shared_dirs(work_dir, patterns):
        try:
            shutil.rmtree(shared)
        except OSError as exc:
            failures += 1
            print(f"cannot remove {shared}: {exc}", file=sys.stderr)
        else:
            print(f"removed {shared.name}")
    return EXIT_FAILURE if failures else EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}", description="Node tasks of local agents."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    health = commands.add_parser("health", help="check a local agent's directory")
    health.add_argument("--work-dir", type=Path, required=True)
    health.add_argument("--min-free-mib", type=float, default=DEFAULT_MIN_FREE_MIB)
    clean = commands.add_parser("cleanup", help="remove directories of ended tasks")
    clean.add_argument("--work-dir", type=Path, required=True)
    clean.add_argument("--initial", action="store_true", help="every ended task's directory")
    clean.add_argument("--execution-dir", action="append", default=[], metavar="PATTERN")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "health":
        return check_health(args.work_dir, args.min_free_mib)
    if args.initial and args.execution_dir:
        print("cleanup: --initial takes no --execution-dir", file=sys.stderr)
        return EXIT_FAILURE
    return cleanup(args.work_dir, args.execution_dir, args.initial)


if __name__ == "__main__":
    sys.exit(main())
