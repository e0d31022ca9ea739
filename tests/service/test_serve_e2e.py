"""`loadmaster serve` as a real process with local agents: real processes run to completion,
time out, fail and are retried, and are canceled."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from tests.service.daemon_harness import Deployment, make_deployment, running_daemon

from loadmaster.model.executions import ExecutionStatus
from loadmaster.store.records import JobStatus
from loadmaster.store.sql import SqlStore


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return make_deployment(tmp_path)


def job_type(name: str, main: str, **extra: str) -> str:
    lines = [f'[[job_types]]\nname = "{name}"\nresources = {{ cpus = 0.5, mem = 64 }}']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    lines.append(f"steps.main = [\"{{python}}\", \"-c\", '''{main}''']")
    return "\n".join(lines) + "\n"


def jobs(name: str, count: int = 1, priority: int = 100, env: str = "") -> str:
    text = f'[[jobs]]\njob_type = "{name}"\ncount = {count}\npriority = {priority}\n'
    return text + (f"env = {{ {env} }}\n" if env else "")


def test_jobs_run_real_processes_to_completion(deployment: Deployment, tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    workload = """
[[job_types]]
name = "steps"
resources = { cpus = 0.5, mem = 64 }
steps.pre = ["{python}", "-c", "open('input.txt', 'w').write('3 4 5')"]
steps.main = ["{python}", "-c", "import os; n = sum(map(int, open('input.txt').read().split())); open(os.environ['OUT'] + '/' + os.environ['LOADMASTER_JOB_ID'], 'w').write(str(n)); print(n)"]
steps.post = ["{python}", "-c", "import os; assert os.path.exists('input.txt')"]
""" + jobs("steps", 4, env=f'OUT = "{out}"')
    with running_daemon(deployment):
        ids = deployment.submit(workload)
        ended = deployment.wait_all_ended(ids)
    assert {j.status for j in ended.values()} == {JobStatus.COMPLETED}
    assert sorted(p.read_text() for p in out.iterdir()) == ["12"] * 4
    log = "".join(p.read_text() for p in deployment.root.glob("serve-*.log"))
    assert re.search(r"INFO +loadmaster: scheduled [1-4] new job\(s\) with \[[0-9.]+ cpus", log)
    assert "execution ended" in log and "status=COMPLETED" in log
    with SqlStore.open(deployment.db_url) as store:
        (exe,) = store.executions.for_job(ids[0])
        assert exe.status is ExecutionStatus.COMPLETED and exe.exit_code == 0
        assert [t.kind for t in sorted(exe.tasks, key=lambda t: t.launched)] == [
            "pre",
            "main",
            "post",
        ]
        assert all(t.started and t.ended for t in exe.tasks)


def test_a_task_over_its_timeout_is_killed_and_the_job_fails(deployment: Deployment) -> None:
    workload = job_type(
        "slow", "import time; time.sleep(60)", timeout_seconds="1", max_tries="3"
    ) + jobs("slow")
    with running_daemon(deployment):
        ids = deployment.submit(workload)
        started = time.monotonic()
        (job,) = deployment.wait_all_ended(ids, timeout=40).values()
    assert time.monotonic() - started < 30
    assert job.status is JobStatus.FAILED and job.error == "timeout"
    assert job.num_exes == 1  # a job's own timeout is not retried


def test_a_failing_main_is_retried_only_when_its_type_says_so(
    deployment: Deployment, tmp_path: Path
) -> None:
    marker = tmp_path / "tried-once"
    flaky = f"import os, sys; p = '{marker}'; exists = os.path.exists(p); open(p, 'w').close(); sys.exit(0 if exists else 3)"
    workload = (
        job_type("flaky", flaky, retry_main_failures="true", max_tries="3")
        + job_type("broken", "import sys; sys.exit(5)")
        + jobs("flaky")
        + jobs("broken")
    )
    with running_daemon(deployment):
        ids = deployment.submit(workload)
        ended = deployment.wait_all_ended(ids)
    flaky_job, broken_job = ended[ids[0]], ended[ids[1]]
    assert flaky_job.status is JobStatus.COMPLETED and flaky_job.num_exes == 2
    assert broken_job.status is JobStatus.FAILED and broken_job.num_exes == 1
    assert broken_job.error == "algorithm-unknown"
    with SqlStore.open(deployment.db_url) as store:
        first, second = store.executions.for_job(ids[0])
        assert (first.status, first.exit_code) == (ExecutionStatus.FAILED, 3)
        assert (second.status, second.exit_code) == (ExecutionStatus.COMPLETED, 0)
        (broken_exe,) = store.executions.for_job(ids[1])
        assert broken_exe.exit_code == 5


def test_cancel_kills_a_running_job_and_removes_a_queued_one(
    deployment: Deployment, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    sleeper = f"import os, time; open('{pid_file}', 'w').write(str(os.getpid())); time.sleep(60)"
    workload = (
        job_type("sleeper", sleeper)
        + job_type("never", "pass", max_scheduled="0")
        + jobs("sleeper")
        + jobs("never")
    )
    with running_daemon(deployment):
        running_id, queued_id = deployment.submit(workload)
        deployment.wait_for([running_id], lambda j: j.status is JobStatus.RUNNING)
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = int(pid_file.read_text())
        assert "kill requested" in deployment.cli("cancel", str(running_id)).stdout
        assert "canceled" in deployment.cli("cancel", str(queued_id)).stdout
        ended = deployment.wait_all_ended([running_id, queued_id], timeout=30)
    assert ended[running_id].status is JobStatus.CANCELED
    assert ended[queued_id].status is JobStatus.CANCELED
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert deployment.cli("cancel", str(running_id), check=False).returncode == 1


def test_sigterm_stops_the_daemon_cleanly(deployment: Deployment) -> None:
    with running_daemon(deployment) as process:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def test_bad_configuration_exits_2_naming_the_key(tmp_path: Path) -> None:
    deployment = make_deployment(tmp_path)
    deployment.config_path.write_text("[scheduler]\ncycle_seconds = -1\n")
    result = deployment.cli("serve", check=False)
    assert result.returncode == 2
    assert "scheduler.cycle_seconds" in result.stderr


def test_bad_workload_exits_2_and_submits_nothing(deployment: Deployment) -> None:
    path = deployment.root / "bad.toml"
    path.write_text(job_type("ok", "pass") + jobs("ok", 3) + jobs("missing"))
    result = deployment.cli("submit", str(path), check=False)
    assert result.returncode == 2
    assert "jobs[1].job_type: unknown job type 'missing'" in result.stderr
    with SqlStore.open(deployment.db_url) as store:
        assert store.jobs.search().jobs == ()
