"""Node tasks for Dask workers: the local agents' health check and cleanup, run on the worker.

A Dask worker's task directories have the local layout (`<work dir>/<worker name>/tasks/…`,
see `dask_remote`), so the local node tasks fit as they are. Only two things are unknown on
the service's side, the work dir of the worker and the Python it runs; the commands name them
with tokens that `run_task` replaces on the worker. The worker needs loadmaster installed,
which it does anyway to run `run_task`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from loadmaster.cluster.dask_remote import PYTHON_TOKEN, WORK_DIR_TOKEN
from loadmaster.cluster.node_tasks import DEFAULT_MIN_FREE_MIB, LocalNodeTaskFactory


def dask_node_task_factory(
    framework_id: str,
    cluster_id_of: Callable[[int], str | None],
    min_free_mib: float = DEFAULT_MIN_FREE_MIB,
) -> LocalNodeTaskFactory:
    return LocalNodeTaskFactory(
        framework_id=framework_id,
        work_dir=Path(WORK_DIR_TOKEN),
        cluster_id_of=cluster_id_of,
        min_free_mib=min_free_mib,
        python=PYTHON_TOKEN,
    )
