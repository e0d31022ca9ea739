"""`/metrics` after a known workload: the counters agree with what the store recorded."""

from __future__ import annotations

import re

from tests.api.conftest import Api
from tests.api.helpers import V1, create_job_type, ended, submit


def _value(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match is not None, series
    return float(match.group(1))


def test_metrics_match_the_store(api: Api) -> None:
    ok = create_job_type(api, "ok")
    bad = create_job_type(api, "bad", main="raise SystemExit(3)")
    held = create_job_type(api, "held")
    api.client.post(f"{V1}/job-types/{held}/pause", headers=api.auth())
    jobs = [submit(api, ok) for _ in range(3)] + [submit(api, bad)]
    waiting = [submit(api, held) for _ in range(2)]
    api.step_until(lambda: ended(api, jobs))
    api.step()
    text = api.client.get("/metrics").text
    assert api.client.get("/metrics").headers["content-type"].startswith("text/plain")
    executions = [e for j in jobs for e in api.store.executions.for_job(j)]
    tasks = [t for e in executions for t in e.tasks]
    assert _value(text, "loadmaster_placements_total") == len(executions) == 4
    assert _value(text, 'loadmaster_tasks_launched_total{class="job"}') == len(tasks)
    assert _value(text, "loadmaster_executions_finished_total") == 4
    assert _value(text, 'loadmaster_queue_depth{job_type="held:1.0"}') == len(waiting)
    assert _value(text, 'loadmaster_pending_executions{reason="JOB_TYPE_PAUSED"}') == 2
    assert _value(text, 'loadmaster_nodes{state="READY"}') == 1
    assert _value(text, 'loadmaster_cluster_resources{kind="total",resource="cpus"}') == 2.0
    cycles = sum(
        _value(text, f'loadmaster_cycles_total{{result="{r}"}}')
        for r in ("active", "idle", "error", "stopped")
    )
    assert cycles == _value(text, "loadmaster_cycle_duration_seconds_count")
    assert cycles == api.harness.service.status.cycles
    assert _value(text, 'loadmaster_cycle_duration_seconds_bucket{le="+Inf"}') == cycles
    assert (
        _value(text, "loadmaster_offers_received_total")
        >= _value(text, "loadmaster_offers_accepted_total")
        > 0
    )
