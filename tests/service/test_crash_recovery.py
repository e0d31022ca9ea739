"""SIGKILL the daemon in the middle of a few hundred jobs, restart it: every job ends exactly
once — none lost, no execution duplicated, no task run twice, the event log consistent."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

from tests.service.daemon_harness import make_deployment, running_daemon

from loadmaster.model.executions import ExecutionStatus
from loadmaster.store.records import EntityKind, JobStatus
from loadmaster.store.sql import SqlStore

JOBS = 240


def workload(runs: Path) -> str:
    main = (
        "import os, time; job = os.environ['LOADMASTER_JOB_ID']; "
        f"open(os.path.join('{runs}', job), 'a').write('ran '); "
        "time.sleep(0.05 + (int(job) % 7) * 0.05)"
    )
    return f"""
[[job_types]]
name = "short"
resources = {{ cpus = 0.25, mem = 32 }}
max_tries = 3
steps.main = ["{{python}}", "-c", "{main}"]

[[jobs]]
job_type = "short"
count = {JOBS}
"""


def test_sigkill_mid_run_then_restart_ends_every_job_exactly_once(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    deployment = make_deployment(tmp_path, cpus=4.0, on_shutdown="leave")
    with running_daemon(deployment) as first:
        ids = deployment.submit(workload(runs))
        assert len(ids) == JOBS
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sum(1 for j in deployment.jobs(ids).values() if j.status.has_ended)
            if done >= JOBS // 3:
                break
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    interrupted = {i: j.status for i, j in deployment.jobs(ids).items()}
    assert 0 < sum(1 for s in interrupted.values() if s.has_ended) < JOBS  # killed mid-run
    with running_daemon(deployment):
        ended = deployment.wait_all_ended(ids, timeout=120)

    assert {j.status for j in ended.values()} == {JobStatus.COMPLETED}
    ran = Counter({int(p.name): p.read_text().count("ran") for p in runs.iterdir()})
    assert set(ran) == set(ids)
    assert [i for i, n in ran.items() if n != 1] == []  # no task ran twice
    with SqlStore.open(deployment.db_url) as store:
        assert store.invariant_violations() == []
        for job_id in ids:
            executions = store.executions.for_job(job_id)
            statuses = [e.status for e in executions]
            assert statuses.count(ExecutionStatus.COMPLETED) == 1, (job_id, statuses)
            assert all(e.ended is not None for e in executions)
            assert [e.exe_num for e in executions] == list(range(1, len(executions) + 1))
            events = [e.what for e in store.events.list_for(EntityKind.JOB, job_id)]
            assert events[0] == "queued"
            assert events.count("scheduled") == len(executions), (job_id, events)
            assert events.count("retried") == len(executions) - 1, (job_id, events)
