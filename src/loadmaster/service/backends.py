"""Build the configured cluster backend and its node-task factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadmaster.cluster.local import LocalBackend
from loadmaster.cluster.local_config import LocalAgentSpec, LocalBackendConfig
from loadmaster.cluster.mesos import MesosBackend
from loadmaster.cluster.mesos_config import FrameworkIdStore, MesosBackendConfig
from loadmaster.cluster.mesos_node_tasks import MesosNodeTaskFactory
from loadmaster.cluster.node_tasks import LocalNodeTaskFactory
from loadmaster.cluster.protocol import ClusterBackend
from loadmaster.model.nodes import NodeTaskFactory
from loadmaster.resources import Resources
from loadmaster.service.config import Config, ConfigError

# Where a Mesos framework id is kept when no store is passed in (see `build_backend`).
FRAMEWORK_ID_FILE = "mesos-framework-id"


@dataclass(slots=True)
class BackendParts:
    backend: ClusterBackend
    node_task_factory: NodeTaskFactory


def build_backend(
    config: Config,
    cluster_id_of: Callable[[int], str | None],
    framework_ids: FrameworkIdStore | None = None,
) -> BackendParts:
    """`framework_ids` keeps the Mesos framework id across restarts; the service passes its
    store's settings (`store.config`). Without one it is kept in a file in the data dir."""
    if config.backend.kind == "mesos":
        return _mesos(config, framework_ids or FileFrameworkIds(config.data_path()))
    if config.backend.kind == "dask":
        return _dask(config, cluster_id_of)
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


def _dask(config: Config, cluster_id_of: Callable[[int], str | None]) -> BackendParts:
    """`distributed` is an optional dependency: imported only when a Dask backend is asked
    for, and its absence is a configuration error that says what to install."""
    section = config.backend.dask
    if section is None:
        raise ConfigError(['backend.dask: kind = "dask" needs a [backend.dask] section'])
    try:
        from loadmaster.cluster.dask import DaskBackend
        from loadmaster.cluster.dask_config import DaskBackendConfig
        from loadmaster.cluster.dask_node_tasks import dask_node_task_factory
    except ImportError as exc:
        extra = "pip install 'loadmaster[dask]'"
        raise ConfigError([f"backend.kind: dask needs the dask extra ({extra}): {exc}"]) from None
    backend = DaskBackend(
        DaskBackendConfig(
            scheduler_address=section.scheduler_address,
            work_dir=section.work_dir,
            connect_timeout_seconds=section.connect_timeout_seconds,
            kill_grace_seconds=section.kill_grace_seconds,
            framework_id=config.scheduler.framework_id,
            forward_env=tuple(section.forward_env),
            log_limit_bytes=section.log_limit_bytes,
        )
    )
    factory = dask_node_task_factory(
        config.scheduler.framework_id, cluster_id_of, config.scheduler.health_min_free_mib
    )
    return BackendParts(backend, factory)


def _mesos(config: Config, framework_ids: FrameworkIdStore) -> BackendParts:
    section = config.backend.mesos
    if section is None:
        raise ConfigError(['backend.mesos: kind = "mesos" needs a [backend.mesos] section'])
    secret = section.secret
    if section.secret_file:
        try:
            secret = Path(section.secret_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError([f"backend.mesos.secret_file: {exc.strerror or exc}"]) from None
    backend = MesosBackend(
        MesosBackendConfig(
            master=section.master,
            role=section.role,
            principal=section.principal,
            secret=secret,
            failover_timeout_seconds=section.failover_timeout_seconds,
            framework_name=section.framework_name,
            docker_image=section.docker_image,
            refuse_seconds=section.refuse_seconds,
        ),
        framework_ids,
    )
    factory = MesosNodeTaskFactory(
        framework_id=config.scheduler.framework_id,
        min_free_mib=config.scheduler.health_min_free_mib,
        docker_image=section.docker_image,
    )
    return BackendParts(backend, factory)


@dataclass(slots=True)
class FileFrameworkIds:
    """A `FrameworkIdStore` in `<data_dir>/mesos-framework-id`, for callers without a store."""

    data_dir: Path

    def framework_id(self) -> str | None:
        try:
            return (self.data_dir / FRAMEWORK_ID_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def set_framework_id(self, framework_id: str | None, *, when: object) -> None:
        path = self.data_dir / FRAMEWORK_ID_FILE
        if framework_id is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(framework_id + "\n")
        temporary.replace(path)
