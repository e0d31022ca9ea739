"""Node tasks for Mesos agents: simple shell commands in the task's sandbox (spec §3.5).

A Mesos agent's sandbox is created per task and removed by the agent's own garbage
collection, so there is nothing of ours to clean on the host; what a node task can usefully
check is that the agent runs a command at all and has disk to spare:

* health: `df` of the sandbox (`$MESOS_SANDBOX`, else the working directory) and a probe
  file; exit 3 when `min_free_mib` or less is free (the node's low-disk error), 1 when the
  sandbox is not writable, 0 otherwise;
* cleanup: a no-op that succeeds (the agent's GC removes sandboxes; Docker containers are
  removed by the agent's containerizer);
* image pull: `docker pull <image>` when job tasks run in Docker, else a no-op.

They are command tasks (never Docker), so they also run on agents without Docker.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from loadmaster.model.nodes import CLEANUP, HEALTH, IMAGE_PULL, Node
from loadmaster.model.tasks import Task
from loadmaster.resources import Resources

NODE_TASK_RESOURCES = Resources.of(cpus=0.1, mem=32.0)
HEALTH_TIMEOUT = timedelta(minutes=15)
PULL_TIMEOUT = timedelta(minutes=30)
CLEANUP_TIMEOUT = timedelta(minutes=10)
STAGING_TIMEOUT = timedelta(minutes=2)
_ID_WORDS = {HEALTH: "health", CLEANUP: "cleanup", IMAGE_PULL: "pull"}


def health_command(min_free_mib: float) -> str:
    limit = int(min_free_mib)
    return (
        'dir="${MESOS_SANDBOX:-.}"; '
        'touch "$dir/.health" && rm -f "$dir/.health" || exit 1; '
        "free=$(df -Pm \"$dir\" | awk 'NR==2 {print $4}'); "
        f'[ -n "$free" ] || exit 1; [ "$free" -gt {limit} ] || exit 3'
    )


@dataclass(slots=True)
class MesosNodeTaskFactory:
    """A `NodeTaskFactory`; task ids are `loadmaster_<health|cleanup|pull>_<framework>_<n>`."""

    framework_id: str
    min_free_mib: float = 1024.0
    docker_image: str | None = None
    _counters: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def health_task(self, node: Node) -> Task:
        command = health_command(self.min_free_mib)
        return self._task(HEALTH, node, "health check", command, HEALTH_TIMEOUT)

    def image_pull_task(self, node: Node) -> Task:
        command = f"docker pull {shlex.quote(self.docker_image)}" if self.docker_image else "true"
        return self._task(IMAGE_PULL, node, "image pull", command, PULL_TIMEOUT)

    def cleanup_task(self, node: Node, execution_ids: Sequence[int], initial: bool) -> Task:
        name = "initial cleanup" if initial else f"cleanup of executions {list(execution_ids)}"
        return self._task(CLEANUP, node, name, "true", CLEANUP_TIMEOUT)

    def _task(
        self, kind: str, node: Node, name: str, command: str, running_timeout: timedelta
    ) -> Task:
        number = self._counters.get(kind, 0) + 1
        self._counters[kind] = number
        return Task(
            id=f"loadmaster_{_ID_WORDS[kind]}_{self.framework_id}_{number}",
            kind=kind,
            resources=NODE_TASK_RESOURCES,
            agent_id=node.agent_id,
            name=f"{name} on {node.hostname}",
            command=(command,),
            shell=True,
            running_timeout=running_timeout,
            staging_timeout=STAGING_TIMEOUT,
        )
