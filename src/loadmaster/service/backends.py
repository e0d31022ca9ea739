"""Build the configured cluster backend and its node-task factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from loadmaster.cluster.local import LocalBackend
from loadmaster.cluster.local_config import LocalAgentSpec, LocalBackendConfig
from loadmaster.cluster.node_tasks import LocalNodeTaskFactory
from loadmaster.cluster.protocol import ClusterBackend
from loadmaster.model.nodes import NodeTaskFactory
from loadmaster.resources import Resources
from loadmaster.service.config import Config


@dataclass(slots=True)
class BackendParts:
    backend: ClusterBackend
    node_task_factory: NodeTaskFactory


def build_backend(config: Config, cluster_id_of: Callable[[int], str | None]) -> BackendParts:
    local = config.backend.local
    work_dir = config.work_dir()
    agents = [LocalAgentSpec(a.name, Resources(a.resources)) for a in local.agents] or None
    backend = LocalBackend(
        LocalBackendConfig(
            work_dir=work_dir,
            agents=agents,
            reserve=Resources(local.reserve),
            kill_grace_seconds=local.kill_grace_seconds,
            framework_id=config.scheduler.framework_id,
        )
    )
    factory = LocalNodeTaskFactory(
        framework_id=config.scheduler.framework_id,
        work_dir=work_dir,
        cluster_id_of=cluster_id_of,
        min_free_mib=config.scheduler.health_min_free_mib,
    )
    return BackendParts(backend, factory)
