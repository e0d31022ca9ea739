"""The real `loadmaster` command against a real server (uvicorn on a loopback port, the
service looping in a thread), asserting on `--output json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.api.conftest import TOKEN, Api, make_config, serving
from tests.api.helpers import ended

from loadmaster.api.server import ApiServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, str]]:
    root = Path(tmp_path_factory.mktemp("cli"))
    config = make_config(root, {"url": f"sqlite:///{root / 'store.db'}"}, port=0)
    with serving(config) as api:
        server = ApiServer(api.harness.service, api.monitor, config.api)
        url = server.start()
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                api.monitor.step()
                stop.wait(0.05)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield api, url
        finally:
            stop.set()
            thread.join(5)
            server.stop()


def cli(url: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMASTER_")}
    env["LOADMASTER_SERVER"] = url
    if token is not None:
        env["LOADMASTER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "loadmaster", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


WORKLOAD = """
[[job_types]]
name = "cli"
resources = { cpus = 0.5, mem = 64 }
steps.main = ["{python}", "-c", "print('from the cli')"]

[[job_types]]
name = "talker"
resources = { cpus = 0.25, mem = 64 }
steps.main = ["{python}", "-u", "-c", "print('from the cli'); import time; time.sleep(60)"]

[[jobs]]
job_type = "cli"
count = 2
"""


def test_submit_run_and_inspect(live: tuple[Api, str], tmp_path: Path) -> None:
    api, url = live
    workload = tmp_path / "w.toml"
    workload.write_text(WORKLOAD)
    result = cli(url, "submit", str(workload), "--parsable")
    assert result.returncode == 0, result.stderr
    ids = [int(line) for line in result.stdout.split()]
    assert len(ids) == 2
    one = as_json(cli(url, "submit", "--job-type", "cli", "--priority", "5", "-o", "json"))
    ids += one["job_ids"]
    _wait(api, ids)
    jobs = as_json(cli(url, "jobs", "-o", "json"))
    assert {j["id"]: j["status"] for j in jobs} == dict.fromkeys(ids, "COMPLETED")
    described = as_json(cli(url, "job", str(ids[0]), "-o", "json"))
    assert described["job"]["id"] == ids[0] and described["executions"][0]["tasks"]
    assert described["events"][0]["what"] == "queued"
    # Logs are read while the task runs: node cleanup removes ended executions' directories.
    talker = as_json(cli(url, "submit", "--job-type", "talker", "-o", "json"))["job_ids"][0]
    _wait_for(lambda: _started_main(api, talker))
    exe_id = api.store.executions.for_job(talker)[0].id
    _wait_for(lambda: cli(url, "logs", str(exe_id)).stdout == "from the cli\n", timeout=30)
    assert as_json(cli(url, "cancel", str(talker), "-o", "json"))["outcome"] == "KILL_REQUESTED"
    job_types = as_json(cli(url, "job-types", "-o", "json"))
    assert [t["name"] for t in job_types] == ["cli", "talker"]


def _wait(api: Api, ids: list[int]) -> None:
    import time

    deadline = time.monotonic() + 60
    while not ended(api, ids):
        assert time.monotonic() < deadline, "jobs did not end"
        time.sleep(0.1)


def test_queue_nodes_status_plan_and_controls(live: tuple[Api, str]) -> None:
    api, url = live
    paused = as_json(cli(url, "scheduler", "pause"))
    assert paused["is_paused"] is True
    held = as_json(cli(url, "submit", "--job-type", "cli", "-o", "json"))["job_ids"][0]
    canceled = as_json(cli(url, "submit", "--job-type", "cli", "-o", "json"))["job_ids"][0]
    _wait_for(lambda: api.harness.service.runtime.manager.last_report is not None)
    queue = as_json(cli(url, "queue", "-o", "json"))
    assert held in [j["id"] for j in queue["jobs"]]
    nodes = as_json(cli(url, "nodes", "-o", "json"))
    node_id = nodes[0]["id"]
    node = as_json(cli(url, "node", "pause", str(node_id), "--reason", "maint", "-o", "json"))
    assert node["pause_reason"] == "maint"
    assert as_json(cli(url, "node", "resume", str(node_id), "-o", "json"))["is_paused"] is False
    assert as_json(cli(url, "job-type", "pause", "1", "-o", "json"))["is_paused"] is True
    assert as_json(cli(url, "job-type", "resume", "1", "-o", "json"))["is_paused"] is False
    status = as_json(cli(url, "status", "-o", "json"))
    assert status["scheduler"]["state"]["name"] in ("PAUSED", "READY")
    plan = as_json(cli(url, "plan", "-o", "json"))
    assert plan["version"] == 1
    result = as_json(cli(url, "cancel", str(canceled), "-o", "json"))
    assert result["outcome"] == "CANCELED"
    requeued = as_json(cli(url, "requeue", str(canceled), "--priority", "1", "-o", "json"))
    assert (requeued["status"], requeued["priority"]) == ("QUEUED", 1)
    as_json(cli(url, "scheduler", "resume"))


def test_exit_codes(live: tuple[Api, str]) -> None:
    _api, url = live
    missing = cli(url, "job", "99999")
    assert missing.returncode == 1 and "no job with id 99999" in missing.stderr
    unauthorized = cli(url, "scheduler", "pause", token=None)
    assert unauthorized.returncode == 1 and "Authorization" in unauthorized.stderr
    assert cli(url, "submit").returncode == 2
    assert cli(url, "submit", "--job-type", "cli", "--env", "novalue").returncode == 2
    unreachable = cli("http://127.0.0.1:9", "jobs")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def _wait_for(condition: Any, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _started_main(api: Api, job_id: int) -> bool:
    exes = api.store.executions.for_job(job_id)
    return bool(exes) and any(t.kind == "main" and t.started for t in exes[0].tasks)
