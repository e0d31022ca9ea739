"""Node tasks of local agents: the factory, the commands, and both run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loadmaster.cluster.local_taskdir import ExitRecord, RunnerRecord, TaskDir, process_start_ticks
from loadmaster.cluster.node_tasks import (
    EXIT_FAILURE,
    EXIT_LOW_DISK,
    EXIT_OK,
    LAUNCH_GRACE_SECONDS,
    LocalNodeTaskFactory,
    main,
)
from loadmaster.model.node_conditions import NodeErrorName
from loadmaster.model.nodes import CLEANUP, HEALTH, IMAGE_PULL, Node, NodeTaskFactory
from loadmaster.model.tasks import Task, TaskStatus

from .contract import Cluster, make_task, wait_for_file
from .local_harness import AGENT, LocalHarness

CLUSTER_IDS = {5: "loadmaster_job_fw_3x1", 6: "loadmaster_job_fw_30x1"}


def make_factory(work_dir: Path) -> LocalNodeTaskFactory:
    return LocalNodeTaskFactory("fw", work_dir, CLUSTER_IDS.get)


def make_node(agent_id: str = "node-a-1", hostname: str = AGENT.name) -> Node:
    return Node(id=1, hostname=hostname, agent_id=agent_id)


def free_mib(path: Path) -> float:
    return shutil.disk_usage(path).free / (1024 * 1024)


def ended_dir(agent_dir: Path, task_id: str, exit_code: int = 0) -> TaskDir:
    task_dir = TaskDir.of(agent_dir, task_id)
    task_dir.path.mkdir(parents=True)
    task_dir.write_exit(ExitRecord(exit_code))
    return task_dir


@pytest.fixture
def sleeper() -> Iterator[RunnerRecord]:
    """A live process posing as a task's runner."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = process_start_ticks(process.pid)
        assert ticks is not None
        yield RunnerRecord(process.pid, ticks, process.pid)
    finally:
        process.kill()
        process.wait()


# -- the factory ------------------------------------------------------------------------------
def test_factory_is_a_node_task_factory(tmp_path: Path) -> None:
    factory: NodeTaskFactory = make_factory(tmp_path)
    assert isinstance(factory.health_task(make_node()), Task)


def test_ids_are_numbered_per_kind_and_per_factory(tmp_path: Path) -> None:
    factory, node = make_factory(tmp_path), make_node()
    ids = [
        factory.health_task(node).id,
        factory.health_task(node).id,
        factory.cleanup_task(node, (), initial=True).id,
        factory.image_pull_task(node).id,
    ]
    assert ids == [
        "loadmaster_health_fw_1",
        "loadmaster_health_fw_2",
        "loadmaster_cleanup_fw_1",
        "loadmaster_pull_fw_1",
    ]
    assert make_factory(tmp_path).health_task(node).id == "loadmaster_health_fw_1"


def test_node_tasks_are_small_and_bound_to_the_nodes_agent(tmp_path: Path) -> None:
    factory, node = make_factory(tmp_path), make_node("node-a-7")
    tasks = {
        HEALTH: factory.health_task(node),
        CLEANUP: factory.cleanup_task(node, (), initial=True),
        IMAGE_PULL: factory.image_pull_task(node),
    }
    for kind, task in tasks.items():
        assert task.kind == kind
        assert task.agent_id == "node-a-7"
        assert (task.resources.cpus, task.resources.mem) == (0.1, 32.0)
        assert not task.shell
        assert task.running_timeout is not None and task.staging_timeout is not None
    assert str(tmp_path / AGENT.name) in tasks[HEALTH].command


def test_regular_cleanup_names_the_task_dirs_of_known_executions(tmp_path: Path) -> None:
    task = make_factory(tmp_path).cleanup_task(make_node(), (5, 99), initial=False)
    assert "--initial" not in task.command
    patterns = [task.command[i + 1] for i, a in enumerate(task.command) if a == "--execution-dir"]
    assert patterns == ["tasks/loadmaster_job_fw_3x1_*", "executions/loadmaster_job_fw_3x1"]


# -- the commands, run in this process --------------------------------------------------------
def test_health_is_ok_for_a_writable_directory(tmp_path: Path) -> None:
    assert main(["health", "--work-dir", str(tmp_path), "--min-free-mib", "1"]) == EXIT_OK
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_health_reports_low_disk_with_exit_3(tmp_path: Path) -> None:
    threshold = f"{free_mib(tmp_path) + 1_000_000:.0f}"
    assert main(["health", "--work-dir", str(tmp_path), "--min-free-mib", threshold]) == (
        EXIT_LOW_DISK
    )


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_health_fails_with_exit_1_without_a_directory(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("not a directory")
    assert main(["health", "--work-dir", str(target), "--min-free-mib", "1"]) == EXIT_FAILURE


def test_initial_cleanup_removes_ended_task_dirs_only(
    tmp_path: Path, sleeper: RunnerRecord
) -> None:
    agent_dir = tmp_path / AGENT.name
    finished = ended_dir(agent_dir, "finished")
    failed = ended_dir(agent_dir, "failed", 3)
    live = TaskDir.of(agent_dir, "live")
    live.path.mkdir()
    live.write_runner(sleeper)
    dead = TaskDir.of(agent_dir, "dead-runner")
    dead.path.mkdir()
    dead.write_runner(RunnerRecord(sleeper.pid, sleeper.start_ticks + 1))
    launching = TaskDir.of(agent_dir, "launching")
    launching.path.mkdir()
    abandoned = TaskDir.of(agent_dir, "abandoned")
    abandoned.path.mkdir()
    old = time.time() - LAUNCH_GRACE_SECONDS - 10
    os.utime(abandoned.path, (old, old))
    assert main(["cleanup", "--work-dir", str(agent_dir), "--initial"]) == EXIT_OK
    remaining = sorted(p.name for p in (agent_dir / "tasks").iterdir())
    assert remaining == ["launching", "live"]
    assert not finished.path.exists() and not failed.path.exists()


def test_regular_cleanup_removes_only_the_given_executions(
    tmp_path: Path, sleeper: RunnerRecord
) -> None:
    agent_dir = tmp_path / AGENT.name
    for kind in ("pull", "pre", "main", "main_lost-1", "post"):
        ended_dir(agent_dir, f"loadmaster_job_fw_3x1_{kind}")
    ended_dir(agent_dir, "loadmaster_job_fw_30x1_main")
    ended_dir(agent_dir, "loadmaster_health_fw_1")
    still = TaskDir.of(agent_dir, "loadmaster_job_fw_4x1_main")
    still.path.mkdir()
    still.write_runner(sleeper)
    args = ["cleanup", "--work-dir", str(agent_dir)]
    args += ["--execution-dir", "tasks/loadmaster_job_fw_3x1_*"]
    args += ["--execution-dir", "tasks/loadmaster_job_fw_4x1_*"]
    assert main(args) == EXIT_OK
    remaining = sorted(p.name for p in (agent_dir / "tasks").iterdir())
    assert remaining == [
        "loadmaster_health_fw_1",
        "loadmaster_job_fw_30x1_main",
        "loadmaster_job_fw_4x1_main",
    ]


@pytest.mark.parametrize("pattern", ["../elsewhere/*", "/elsewhere/*"])
def test_cleanup_refuses_patterns_outside_the_work_dir(tmp_path: Path, pattern: str) -> None:
    agent_dir = tmp_path / AGENT.name
    (agent_dir / "tasks").mkdir(parents=True)
    args = ["cleanup", "--work-dir", str(agent_dir), "--execution-dir", pattern]
    assert main(args) == EXIT_FAILURE


# -- through the backend ----------------------------------------------------------------------
def run_on_node(cluster: Cluster, node: Node, task: Task) -> None:
    """Launch a node task and feed its updates to the node, as the service does."""
    cluster.run(task, node.agent_id)
    for update in cluster.of(task.id):
        assert node.handle_task_update(update, datetime.now(UTC)) or update.status.is_terminal


def node_of(cluster: Cluster) -> Node:
    agent = cluster.agent(AGENT.name)
    return Node(id=1, hostname=agent.hostname, agent_id=agent.agent_id)


def test_health_task_runs_and_keeps_the_node_healthy(
    cluster: Cluster, harness: LocalHarness
) -> None:
    node = node_of(cluster)
    task = make_factory(harness.work_dir).health_task(node)
    node.tasks[HEALTH] = task
    run_on_node(cluster, node, task)
    assert cluster.statuses(task.id)[-1] is TaskStatus.FINISHED
    assert node.is_health_normal and not node.conditions.has_errors()


def test_low_disk_health_task_degrades_the_node(cluster: Cluster, harness: LocalHarness) -> None:
    node = node_of(cluster)
    factory = make_factory(harness.work_dir)
    factory.min_free_mib = free_mib(harness.work_dir) + 1_000_000
    task = factory.health_task(node)
    node.tasks[HEALTH] = task
    run_on_node(cluster, node, task)
    last = cluster.of(task.id)[-1]
    assert (last.status, last.exit_code) == (TaskStatus.FAILED, EXIT_LOW_DISK)
    assert node.conditions.error_updated(NodeErrorName.LOW_DOCKER_SPACE) is not None
    assert not node.is_health_normal


def test_initial_cleanup_task_keeps_itself_and_running_tasks(
    cluster: Cluster, harness: LocalHarness
) -> None:
    node = node_of(cluster)
    agent_dir = harness.work_dir / AGENT.name
    ended_dir(agent_dir, "leftover")
    release = harness.scratch / "release"
    cluster.launch(make_task("busy", wait_for_file(release)), agent_id=node.agent_id)
    cluster.wait_for("busy", TaskStatus.RUNNING)
    task = make_factory(harness.work_dir).cleanup_task(node, (), initial=True)
    node.tasks[CLEANUP] = task
    run_on_node(cluster, node, task)
    assert cluster.statuses(task.id)[-1] is TaskStatus.FINISHED
    assert node.is_initial_cleanup_completed
    assert not (agent_dir / "tasks" / "leftover").exists()
    assert (agent_dir / "tasks" / "busy").exists()
    assert "removed leftover" in cluster.log(task.id)
    release.touch()
    cluster.wait_for("busy", TaskStatus.FINISHED)


def test_image_pull_task_succeeds_and_marks_the_image_pulled(
    cluster: Cluster, harness: LocalHarness
) -> None:
    node = node_of(cluster)
    task = make_factory(harness.work_dir).image_pull_task(node)
    node.tasks[IMAGE_PULL] = task
    run_on_node(cluster, node, task)
    assert cluster.statuses(task.id)[-1] is TaskStatus.FINISHED
    assert node.is_image_pulled


def test_regular_cleanup_removes_the_shared_working_directory_of_an_execution(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "executions" / "loadmaster_job_fw_3x1"
    shared.mkdir(parents=True)
    (shared / "result.txt").write_text("done")
    other = tmp_path / "executions" / "loadmaster_job_fw_4x1"
    other.mkdir(parents=True)
    code = main(
        [
            "cleanup",
            "--work-dir",
            str(tmp_path),
            "--execution-dir",
            "executions/loadmaster_job_fw_3x1",
        ]
    )
    assert code == EXIT_OK
    assert not shared.exists() and other.exists()


@pytest.mark.parametrize(
    "spec", [b"", b'{"argv": ["tr', b"{}"], ids=["nothing", "truncated", "empty-object"]
)
def test_runner_without_a_whole_spec_runs_nothing_and_records_no_exit(
    tmp_path: Path, spec: bytes
) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "loadmaster.cluster.runner"],
        input=spec,
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 2
    assert not (tmp_path / "exit.json").exists() and not (tmp_path / "pid.json").exists()
