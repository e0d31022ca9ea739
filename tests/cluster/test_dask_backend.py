"""The Dask backend against a real loopback Dask cluster: the shared contract, then what only
Dask shows (agents from worker declarations, restarted workers)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from tests.service.daemon_harness import Deployment, running_daemon

from loadmaster.cluster.dask import DaskBackend
from loadmaster.cluster.dask_config import DaskBackendConfig, worker_resources
from loadmaster.cluster.dask_tasks import end_from_result, end_without_result
from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.offers import ResourceOffer
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources
from loadmaster.service.backends import build_backend
from loadmaster.service.config import ConfigError, parse_config
from loadmaster.store.records import JobStatus
from loadmaster.store.sql import SqlStore

from .contract import Cluster, ClusterBackendContract, make_task, py, wait_until
from .dask_harness import DaskHarness, DaskTestCluster, WorkerSpec


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskTestCluster]:
    cluster = DaskTestCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()


class TestDaskBackendContract(ClusterBackendContract):
    """RESTART is not declared: a Dask future belongs to the client that submitted it, so a
    new backend cannot find an earlier one's tasks."""

    @pytest.fixture
    def harness(self, dask_cluster: DaskTestCluster, tmp_path: Path) -> DaskHarness:
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        return DaskHarness(dask_cluster, scratch)


# -- what only Dask shows ---------------------------------------------------------------------
def test_agents_are_the_workers_with_their_declared_resources(
    dask_cluster: DaskTestCluster, tmp_path: Path
) -> None:
    backend = DaskHarness(dask_cluster, tmp_path).create()
    backend.start()
    try:
        agents = {a.hostname: a for a in backend.agents()}
        assert set(agents) == {"dask-a", "dask-b", "dask-gpu"}
        assert agents["dask-a"].total == Resources.of(cpus=4.0, mem=2048.0, disk=4096.0)
        assert agents["dask-gpu"].total.gpus == 1.0
        assert all(a.agent_id.startswith("tcp://127.0.0.1:") for a in agents.values())
    finally:
        backend.shutdown(kill_tasks=True)


def test_a_kill_right_after_the_launch_is_killed(
    dask_cluster: DaskTestCluster, tmp_path: Path
) -> None:
    """Whether the kill reaches the worker before or after the command started, the task
    ends KILLED and the worker's resources come back."""
    cluster = Cluster(DaskHarness(dask_cluster, tmp_path))
    try:
        agent = cluster.agent()
        for n in range(3):
            cluster.launch(make_task(f"hasty-{n}", py("import time; time.sleep(60)")))
            cluster.backend.kill_task(f"hasty-{n}", agent.agent_id)
            ended = cluster.wait_for(f"hasty-{n}", *ENDS)
            assert ended.status is TaskStatus.KILLED
        assert cluster.offer(agent.agent_id).resources.is_equal(agent.total)
    finally:
        cluster.close()


def test_unreachable_scheduler_is_unhealthy_and_keeps_trying(tmp_path: Path) -> None:
    config = DaskBackendConfig(
        scheduler_address=f"tcp://127.0.0.1:{_free_port()}",
        connect_timeout_seconds=0.5,
        reconnect_min_seconds=0.1,
    )
    backend = DaskBackend(config)
    started = time.monotonic()
    backend.start()
    try:
        assert time.monotonic() - started < 10
        assert not backend.is_healthy()
        assert backend.framework_id() == config.framework_id
        assert backend.agents() == []
        assert backend.collect_offers(datetime.now(UTC)) == []
        offer = ResourceOffer("o-1", "a-1", Resources.of(cpus=1.0), datetime.now(UTC))
        backend.combine_offers([offer], [make_task("early", py("pass"))])
        assert [u.status for u in backend.collect_updates()] == [TaskStatus.LOST]
    finally:
        backend.shutdown(kill_tasks=True)
    assert not backend.is_healthy()


def test_a_scheduler_that_comes_up_later_is_connected_to(tmp_path: Path) -> None:
    port = _free_port()
    config = DaskBackendConfig(
        scheduler_address=f"tcp://127.0.0.1:{port}",
        connect_timeout_seconds=0.5,
        reconnect_min_seconds=0.1,
        reconnect_max_seconds=0.5,
    )
    backend = DaskBackend(config)
    late = DaskTestCluster(tmp_path / "late", workers=(WorkerSpec("late-a", "cpus=1,mem=64"),))
    late.port = port
    try:
        backend.start()
        assert not backend.is_healthy()
        late.start()
        wait_until(backend.is_healthy, timeout=20)
        wait_until(lambda: [a.hostname for a in backend.agents()] == ["late-a"], timeout=10)
    finally:
        backend.shutdown(kill_tasks=True)
        late.close()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"scheduler_address": "127.0.0.1:8786"}, "tcp://host:port"),
        ({"connect_timeout_seconds": 0}, "connect_timeout_seconds"),
        ({"kill_grace_seconds": -1}, "kill_grace_seconds"),
        ({"reconnect_max_seconds": 0.5}, "reconnect_max_seconds"),
    ],
    ids=["no-scheme", "zero-timeout", "negative-grace", "max-below-min"],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, Any], problem: str) -> None:
    values: dict[str, Any] = {"scheduler_address": "tcp://127.0.0.1:8786"} | kwargs
    with pytest.raises(ValueError, match=problem):
        DaskBackendConfig(**values)


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"resources": {"cpus": 8, "mem": 32768, "gpus": 2}}, {"cpus": 8, "mem": 32768, "gpus": 2}),
        ({"resources": {}, "nthreads": 3, "memory_limit": 2 * 1024**3}, {"cpus": 3, "mem": 2048}),
        ({"resources": {"cpus": 1, "licences": 4}}, {"cpus": 1, "mem": 0, "licences": 4}),
    ],
    ids=["declared", "from-threads-and-memory", "custom"],
)
def test_worker_resources(info: dict[str, Any], expected: dict[str, float]) -> None:
    assert worker_resources(info).is_equal(Resources(expected))


@pytest.mark.parametrize(
    ("result", "status", "exit_code"),
    [
        ({"exit_code": 0, "command_started": True}, TaskStatus.FINISHED, 0),
        ({"exit_code": 3, "command_started": True}, TaskStatus.FAILED, 3),
        ({"exit_code": 143, "killed": True, "command_started": True}, TaskStatus.KILLED, 143),
        ({"exit_code": 0, "killed": True}, TaskStatus.KILLED, 0),
        ({"exit_code": 127, "message": "command not found: x"}, TaskStatus.FAILED, 127),
        ({"exit_code": None, "killed": True}, TaskStatus.KILLED, None),
    ],
    ids=["exit-0", "exit-3", "killed", "killed-wins-over-0", "not-found", "killed-before-start"],
)
def test_results_read_as_statuses(
    result: dict[str, Any], status: TaskStatus, exit_code: int | None
) -> None:
    end = end_from_result(result)
    assert (end.status, end.exit_code) == (status, exit_code)
    if exit_code is not None:
        assert end.message and f"exited with status {exit_code}" in end.message


@pytest.mark.parametrize(
    ("future_status", "kill_requested", "status"),
    [
        ("cancelled", True, TaskStatus.KILLED),
        ("error", True, TaskStatus.KILLED),
        ("error", False, TaskStatus.FAILED),
        ("cancelled", False, None),
        ("lost", False, None),
    ],
    ids=["cancelled-by-kill", "error-after-kill", "wrapper-error", "cancelled-by-dask", "lost"],
)
def test_futures_without_result(
    future_status: str, kill_requested: bool, status: TaskStatus | None
) -> None:
    end = end_without_result(future_status, "why", kill_requested)
    assert (end.status if end else None) == status


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the daemon on Dask -----------------------------------------------------------------------
E2E_WORKERS = (
    WorkerSpec("e2e-a", "cpus=2,mem=1024,disk=10000"),
    WorkerSpec("e2e-b", "cpus=2,mem=1024,disk=10000"),
    WorkerSpec("e2e-gpu", "cpus=2,mem=1024,disk=10000,gpus=1"),
)
E2E_JOBS = 20
ENDS = (TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus.KILLED, TaskStatus.LOST)


def dask_deployment(root: Path, address: str) -> Deployment:
    url = f"sqlite:///{root / 'loadmaster.db'}"
    config = root / "loadmaster.toml"
    config.write_text(f"""
[store]
url = "{url}"
[scheduler]
data_dir = "{root / "data"}"
cycle_seconds = 0.2
sync_seconds = 0.5
on_shutdown = "kill"
[backend]
kind = "dask"
[backend.dask]
scheduler_address = "{address}"
work_dir = "{root / "worker-dirs"}"
kill_grace_seconds = 1.0
[logging]
level = "INFO"
""")
    return Deployment(root, config, url)


def test_serve_on_dask_retries_the_work_of_a_killed_worker(tmp_path: Path) -> None:
    """20 jobs on three workers; one worker is SIGKILLed while jobs run on it. Every job
    completes exactly once: the executions of the lost worker end `node-lost` and their jobs
    complete elsewhere, and the lost commands died with their worker (no output of theirs)."""
    cluster = DaskTestCluster(tmp_path / "dask", E2E_WORKERS)
    out = tmp_path / "outputs"
    out.mkdir()
    main = (
        "import os, time; time.sleep(1.5); "
        "open(os.path.join(os.environ['OUT'], os.environ['LOADMASTER_JOB_ID'] + '-' + "
        "os.environ['LOADMASTER_EXECUTION_ID']), 'w').close()"
    )
    workload = (
        '[[job_types]]\nname = "nap"\nresources = { cpus = 1, mem = 128 }\nmax_tries = 3\n'
        f"steps.main = [\"{{python}}\", \"-c\", '''{main}''']\n"
        f'[[jobs]]\njob_type = "nap"\ncount = {E2E_JOBS}\nenv = {{ OUT = "{out}" }}\n'
    )
    try:
        cluster.start()
        victim = cluster.address_of("e2e-b")
        deployment = dask_deployment(tmp_path, cluster.address)
        with running_daemon(deployment):
            ids = deployment.submit(workload)
            # generous: on a loaded machine the daemon, three workers and their runners share
            # the cores, and the first main step on the victim can take a while to start
            wait_until(lambda: _running_main_on(deployment, victim) >= 1, timeout=90)
            cluster.kill_worker("e2e-b")
            ended = deployment.wait_all_ended(ids, timeout=120)
        with SqlStore.open(deployment.db_url) as store:
            executions = {i: store.executions.for_job(i) for i in ids}
    finally:
        cluster.close()
    assert {job.status for job in ended.values()} == {JobStatus.COMPLETED}
    retried = 0
    for job_id, exes in executions.items():
        completed = [e for e in exes if e.status is ExecutionStatus.COMPLETED]
        assert len(completed) == 1, f"job {job_id}: {[(e.status, e.error) for e in exes]}"
        others = [e for e in exes if e is not completed[0]]
        assert all(e.error == "node-lost" for e in others), [e.error for e in others]
        assert not (completed[0].agent_id or "").startswith(victim + "#")
        retried += bool(others)
    assert retried >= 1
    markers = sorted(p.name for p in out.iterdir())
    assert markers == sorted(
        f"{job_id}-{e.id}"
        for job_id, exes in executions.items()
        for e in exes
        if e.status is ExecutionStatus.COMPLETED
    )


def _running_main_on(deployment: Deployment, address: str) -> int:
    with SqlStore.open(deployment.db_url) as store:
        return sum(
            1
            for exe in store.executions.running()
            if (exe.agent_id or "").startswith(address + "#")
            and any(t.kind == "main" and t.started is not None for t in exe.tasks)
        )


# -- service configuration --------------------------------------------------------------------
def test_service_config_builds_a_dask_backend(tmp_path: Path) -> None:
    config = parse_config(
        {
            "scheduler": {"data_dir": str(tmp_path)},
            "backend": {
                "kind": "dask",
                "dask": {"scheduler_address": "tcp://10.0.0.5:8786", "forward_env": ["AWS_*"]},
            },
        }
    )
    parts = build_backend(config, lambda execution_id: None)
    assert isinstance(parts.backend, DaskBackend)
    assert parts.backend.name == "dask"
    assert not parts.backend.is_healthy()  # not started: nothing was contacted


@pytest.mark.parametrize(
    ("backend", "problem"),
    [
        ({"kind": "dask"}, "needs a [backend.dask] section"),
        ({"kind": "dask", "dask": {"scheduler_address": "10.0.0.5:8786"}}, "scheduler_address"),
        (
            {"kind": "dask", "dask": {"scheduler_address": "tcp://h:1", "kill_grace_seconds": -1}},
            "kill_grace_seconds",
        ),
    ],
    ids=["no-section", "no-scheme", "negative-grace"],
)
def test_service_config_refuses_bad_dask_sections(backend: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        parse_config({"backend": backend})
