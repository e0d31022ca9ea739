"""The local backend: the shared contract, and what only local processes and files show."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from loadmaster.cluster.local import LocalBackend
from loadmaster.cluster.local_config import LocalAgentSpec, LocalBackendConfig, machine_resources
from loadmaster.cluster.local_taskdir import RunnerRecord, TaskDir, process_start_ticks
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources

from .contract import (
    Cluster,
    ClusterBackendContract,
    make_task,
    pid_alive,
    py,
    wait_for_file,
    wait_until,
)
from .local_harness import AGENT, OTHER, LocalHarness, make_harness


class TestLocalBackendContract(ClusterBackendContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> LocalHarness:
        return make_harness(tmp_path, [AGENT])


def local(cluster: Cluster) -> LocalBackend:
    assert isinstance(cluster.backend, LocalBackend)
    return cluster.backend


# -- configuration ----------------------------------------------------------------------------
def test_default_agent_is_this_machine_less_the_reserve(tmp_path: Path) -> None:
    config = LocalBackendConfig(work_dir=tmp_path / "work")
    [agent] = config.resolved_agents()
    assert agent.name == socket.gethostname()
    whole = machine_resources(tmp_path, Resources())
    expected_cpus = max(whole.cpus - 0.5, 0.0)
    assert agent.resources.cpus == pytest.approx(expected_cpus)
    assert agent.resources.mem == pytest.approx(max(whole.mem - 512.0, 0.0))
    assert 0 < agent.resources.disk <= whole.disk


def test_machine_resources_never_go_negative(tmp_path: Path) -> None:
    huge = Resources.of(cpus=10_000.0, mem=1e12, disk=1e12)
    assert machine_resources(tmp_path, huge).is_zero()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: LocalBackendConfig(d, agents=[]), "at least one agent"),
        (lambda d: LocalBackendConfig(d, agents=[AGENT, AGENT]), "unique"),
        (lambda d: LocalBackendConfig(d, kill_grace_seconds=-1), "kill_grace_seconds"),
        (lambda d: LocalBackendConfig(d, poll_interval_seconds=0), "poll_interval_seconds"),
        (lambda d: LocalAgentSpec("a/b", Resources()), "single path component"),
        (lambda d: LocalAgentSpec("..", Resources()), "single path component"),
    ],
    ids=["no-agents", "duplicate-names", "negative-grace", "zero-poll", "slash", "dotdot"],
)
def test_invalid_configuration_is_refused(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        make(tmp_path)


# -- the task directory -----------------------------------------------------------------------
def test_task_directory_holds_logs_and_runner_records(
    cluster: Cluster, harness: LocalHarness
) -> None:
    agent = cluster.agent(AGENT.name)
    assert cluster.run(make_task("files", py("print('hi')")), agent.agent_id).exit_code == 0
    task_dir = TaskDir.of(harness.work_dir / AGENT.name, "files")
    names = sorted(p.name for p in task_dir.path.iterdir())
    assert names == ["exit.json", "pid.json", "stderr.log", "stdout.log", "task.json"]
    runner = task_dir.read_runner()
    assert runner is not None and runner.command_pid is not None
    assert json.loads((task_dir.path / "exit.json").read_text())["exit_code"] == 0
    record = task_dir.read_task()
    assert record is not None and record["agent_id"] == agent.agent_id
    assert (task_dir.path / "stdout.log").read_text() == "hi\n"


def test_working_directory_is_the_task_directory(cluster: Cluster) -> None:
    code = "import os; print(os.getcwd() == os.environ['LOADMASTER_WORK_DIR'])"
    assert cluster.run(make_task("cwd", py(code))).exit_code == 0
    assert cluster.log("cwd").strip() == "True"


def test_a_task_without_command_succeeds(cluster: Cluster) -> None:
    update = cluster.run(make_task("nothing", ()))
    assert (update.status, update.exit_code) == (TaskStatus.FINISHED, 0)


def test_a_shell_task_takes_one_command_string(cluster: Cluster) -> None:
    cluster.launch(make_task("two", ("echo", "hi"), shell=True))
    assert cluster.wait_for("two", TaskStatus.FAILED).message


def test_a_reused_task_id_replaces_the_ended_directory(cluster: Cluster) -> None:
    agent = cluster.agent(AGENT.name)
    assert cluster.run(make_task("again", py("print(1)")), agent.agent_id).exit_code == 0
    cluster.launch(make_task("again", py("print(2)")), agent_id=agent.agent_id)
    cluster.wait_for("again", TaskStatus.FINISHED, since=3)
    assert cluster.log("again").strip() == "2"


def test_signal_ends_are_failed_with_shell_style_codes(cluster: Cluster) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    update = cluster.run(make_task("self-kill", py(code)))
    assert (update.status, update.exit_code) == (TaskStatus.FAILED, 128 + signal.SIGKILL)
    assert update.message and "SIGKILL" in update.message


def test_background_processes_end_with_their_task(cluster: Cluster) -> None:
    pid_file = cluster.harness.scratch / "background.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
    )
    assert cluster.run(make_task("leaver", py(code, str(pid_file)))).exit_code == 0
    wait_until(lambda: not pid_alive(int(pid_file.read_text())))


def test_task_for_another_agent_is_refused(cluster: Cluster) -> None:
    task = make_task("misplaced", py("pass"))
    task.agent_id = cluster.agent(OTHER.name).agent_id
    cluster.launch(task, agent_id=cluster.agent(AGENT.name).agent_id)
    assert cluster.wait_for("misplaced", TaskStatus.FAILED, TaskStatus.LOST).status is (
        TaskStatus.FAILED
    )


# -- agents -----------------------------------------------------------------------------------
def test_agent_ids_keep_counting_across_backends(cluster: Cluster) -> None:
    assert cluster.agent(AGENT.name).agent_id == "node-a-1"
    local(cluster).stop_agent(AGENT.name)
    local(cluster).start_agent(AGENT.name)
    assert cluster.agent(AGENT.name).agent_id == "node-a-2"
    cluster.restart()
    assert cluster.agent(AGENT.name).agent_id == "node-a-3"
    assert cluster.agent(OTHER.name).agent_id == "node-b-2"


def test_stopping_one_agent_leaves_the_other_alone(cluster: Cluster) -> None:
    a, b = cluster.agent(AGENT.name), cluster.agent(OTHER.name)
    release = cluster.harness.scratch / "release"
    cluster.launch(make_task("on-a", wait_for_file(release)), agent_id=a.agent_id)
    cluster.launch(make_task("on-b", wait_for_file(release)), agent_id=b.agent_id)
    cluster.wait_for("on-a", TaskStatus.RUNNING)
    cluster.wait_for("on-b", TaskStatus.RUNNING)
    local(cluster).stop_agent(AGENT.name)
    assert cluster.wait_for("on-a", TaskStatus.LOST).agent_id == a.agent_id
    assert [x.hostname for x in cluster.backend.agents()] == [OTHER.name]
    release.touch()
    assert cluster.wait_for("on-b", TaskStatus.FINISHED).agent_id == b.agent_id


def test_an_agent_with_nothing_free_offers_nothing(cluster: Cluster) -> None:
    b = cluster.agent(OTHER.name)
    release = cluster.harness.scratch / "release"
    cluster.launch(make_task("all-of-b", wait_for_file(release), b.total), agent_id=b.agent_id)
    cluster.wait_for("all-of-b", TaskStatus.RUNNING)
    assert b.agent_id not in {o.agent_id for o in cluster.collect()}
    release.touch()
    cluster.wait_for("all-of-b", TaskStatus.FINISHED)
    assert cluster.offer(b.agent_id).resources.is_equal(b.total)


def test_unknown_agent_names_raise(cluster: Cluster) -> None:
    with pytest.raises(KeyError):
        local(cluster).stop_agent("nowhere")
    with pytest.raises(KeyError):
        local(cluster).start_agent("nowhere")


# -- reconciliation details -------------------------------------------------------------------
def test_a_reused_pid_is_not_taken_for_the_runner(cluster: Cluster, harness: LocalHarness) -> None:
    """pid.json naming a live process that started at another time: that is not our task."""
    agent = cluster.agent(AGENT.name)
    task_dir = TaskDir.of(harness.work_dir / AGENT.name, "impostor")
    task_dir.path.mkdir(parents=True)
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    task_dir.write_runner(RunnerRecord(os.getpid(), ticks + 1, os.getpid()))
    cluster.backend.reconcile([("impostor", agent.agent_id)])
    assert cluster.wait_for("impostor", TaskStatus.LOST, TaskStatus.RUNNING).status is (
        TaskStatus.LOST
    )


def test_reconcile_with_another_hosts_id_answers_under_the_tasks_host(cluster: Cluster) -> None:
    a, b = cluster.agent(AGENT.name), cluster.agent(OTHER.name)
    release = cluster.harness.scratch / "release"
    cluster.launch(make_task("where", wait_for_file(release)), agent_id=a.agent_id)
    cluster.wait_for("where", TaskStatus.RUNNING)
    cluster.restart()
    new_a = cluster.agent(AGENT.name)
    cluster.backend.reconcile([("where", b.agent_id)])
    assert cluster.wait_for("where", TaskStatus.RUNNING, since=2).agent_id == new_a.agent_id
    cluster.backend.reconcile([("where", a.agent_id)])
    assert cluster.wait_for("where", TaskStatus.RUNNING, since=3).agent_id == a.agent_id
    release.touch()
    assert cluster.wait_for("where", TaskStatus.FINISHED).agent_id == a.agent_id


def test_reconcile_reports_a_kill_of_an_earlier_backend(cluster: Cluster) -> None:
    agent = cluster.agent(AGENT.name)
    cluster.launch(make_task("stopped", py("import time; time.sleep(60)")), agent_id=agent.agent_id)
    cluster.wait_for("stopped", TaskStatus.RUNNING)
    cluster.backend.kill_task("stopped", agent.agent_id)
    cluster.wait_for("stopped", TaskStatus.KILLED)
    cluster.restart().reconcile([("stopped", agent.agent_id)])
    assert cluster.wait_for("stopped", TaskStatus.KILLED, since=3).status is TaskStatus.KILLED


def test_logs_of_an_earlier_backend_stay_readable(cluster: Cluster) -> None:
    assert cluster.run(make_task("old-log", py("print('kept')"))).exit_code == 0
    cluster.restart()
    assert cluster.log("old-log").strip() == "kept"


# -- runner failures --------------------------------------------------------------------------
def test_a_runner_killed_from_outside_is_lost(cluster: Cluster, harness: LocalHarness) -> None:
    agent = cluster.agent(AGENT.name)
    cluster.launch(make_task("victim", py("import time; time.sleep(60)")), agent_id=agent.agent_id)
    cluster.wait_for("victim", TaskStatus.RUNNING)
    runner = TaskDir.of(harness.work_dir / AGENT.name, "victim").read_runner()
    assert runner is not None and runner.command_pid is not None
    os.kill(runner.pid, signal.SIGKILL)
    assert cluster.wait_for("victim", TaskStatus.LOST, TaskStatus.FAILED).status is (
        TaskStatus.LOST
    )
    wait_until(lambda: not pid_alive(runner.command_pid or 0))  # its group was cleared


@pytest.mark.parametrize("broken", ["missing", "exits"])
def test_a_runner_that_cannot_work_fails_the_task(
    harness: LocalHarness, tmp_path: Path, broken: str
) -> None:
    python = tmp_path / "python"
    if broken == "exits":
        python.write_text("#!/bin/sh\nexit 5\n")
        python.chmod(0o755)
    harness.python_executable = str(python)
    cluster = Cluster(harness)
    try:
        update = cluster.run(make_task("doomed", py("pass")))
        assert update.status is TaskStatus.FAILED
        assert update.message
    finally:
        cluster.close()
