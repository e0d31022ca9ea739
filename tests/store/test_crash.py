"""The crash invariant: kill a busy writer with SIGKILL at a random instant, reopen, check
that every job is queued, running or ended — exactly one of them, whole."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.store.conftest import Target

from loadmaster.store.records import JobFilter

REPO = Path(__file__).resolve().parents[2]
KILLS = 3


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_writer_leaves_every_job_whole(target: Target) -> None:
    args = [sys.executable, "-m", "tests.store.crash_worker", target.url]
    if target.schema is not None:
        args.append(target.schema)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    )
    rng = random.Random()
    for _ in range(KILLS):
        worker = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert worker.stdout is not None
            first = worker.stdout.readline()  # it has finished at least one round
            assert first.strip(), "the worker died before its first round"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        assert worker.returncode == -signal.SIGKILL
        store = target.open()
        try:
            assert store.invariant_violations() == []
            assert store.jobs.search(JobFilter(), limit=1).jobs
        finally:
            store.close()
