"""The service's behaviour around the core: dead agents, a store that goes away, system
tasks, node tasks, and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from tests.service.inprocess import config_for, job_type, service_in_process

from loadmaster.cluster.local import LocalBackend
from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.nodes import NodeState
from loadmaster.model.tasks import Task
from loadmaster.scheduling.ports import StoreUnavailable
from loadmaster.service.config import parse_config
from loadmaster.store.executions import ExecutionRepository
from loadmaster.store.records import JobStatus, TaskLaunch
from loadmaster.store.sql import SqlStore

TWO_AGENTS = [
    {"name": "alpha", "resources": {"cpus": 1.0, "mem": 1024, "disk": 10000}},
    {"name": "beta", "resources": {"cpus": 1.0, "mem": 1024, "disk": 10000}},
]


def test_a_dead_agent_makes_its_node_offline_and_its_executions_are_retried_elsewhere(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path, TWO_AGENTS)
    with service_in_process(config) as h:
        sleepy = job_type(
            "sleepy", "import time; time.sleep(2)", max_tries=3, resources={"cpus": 0.75, "mem": 64}
        )
        ids = h.submit({"job_types": [sleepy], "jobs": [{"job_type": "sleepy", "count": 2}]})
        h.step_until(lambda: all(j.status is JobStatus.RUNNING for j in h.jobs(ids)))
        victims = [e for e in h.service.runtime.executions.running()]
        assert {h.service.runtime.nodes.get(e.node_id).hostname for e in victims} == {
            "alpha",
            "beta",
        }  # type: ignore[union-attr]
        h.backend.stop_agent("alpha")
        alpha = h.service.runtime.nodes.by_hostname("alpha")
        assert alpha is not None
        h.step_until(lambda: alpha.state is NodeState.OFFLINE)
        h.step_until(lambda: h.all_ended(ids), timeout=40)
        jobs = h.jobs(ids)
        assert {j.status for j in jobs} == {JobStatus.COMPLETED}
        retried = [j for j in jobs if j.num_exes == 2]
        assert len(retried) == 1
        first, second = h.store.executions.for_job(retried[0].id)
        assert first.status is ExecutionStatus.FAILED and first.error == "node-lost"
        assert second.status is ExecutionStatus.COMPLETED
        assert h.service.runtime.nodes.get(second.node_id).hostname == "beta"  # type: ignore[union-attr]


def test_an_agent_that_returns_is_the_same_node_with_a_new_agent_id(tmp_path: Path) -> None:
    with service_in_process(config_for(tmp_path, TWO_AGENTS[:1])) as h:
        h.step_until(lambda: h.service.runtime.nodes.by_hostname("alpha") is not None)
        node = h.service.runtime.nodes.by_hostname("alpha")
        assert node is not None
        old_agent = node.agent_id
        h.backend.stop_agent("alpha")
        h.step_until(lambda: not node.is_online)
        h.backend.start_agent("alpha")
        h.step_until(lambda: node.is_online)
        assert node.agent_id != old_agent and h.service.runtime.nodes.get_nodes() == [node]


class FlakyQueue:
    """The cycle's view of the store, unreadable while `down` is set."""

    def __init__(self, store: SqlStore) -> None:
        self.down = True
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    def fetch_queue(self, query: object) -> object:
        if self.down:
            raise StoreUnavailable("connection refused")
        return self._store.fetch_queue(query)  # type: ignore[arg-type]


def test_a_store_outage_turns_the_service_unhealthy_and_loses_no_job(tmp_path: Path) -> None:
    with service_in_process(config_for(tmp_path, TWO_AGENTS)) as h:
        ids = h.submit(
            {"job_types": [job_type("quick", "pass")], "jobs": [{"job_type": "quick", "count": 3}]}
        )
        outage = FlakyQueue(h.store)
        h.service.runtime.manager.store = outage  # type: ignore[assignment]
        h.step_until(lambda: not h.service.status.healthy)
        assert "connection refused" in (h.service.status.last_error or "")
        assert {j.status for j in h.jobs(ids)} == {JobStatus.QUEUED}
        outage.down = False
        h.step_until(lambda: h.all_ended(ids))
        assert h.service.status.healthy
        assert {j.status for j in h.jobs(ids)} == {JobStatus.COMPLETED}


def test_system_services_are_kept_running_and_restarted(tmp_path: Path) -> None:
    config = config_for(tmp_path, TWO_AGENTS[:1])
    data = config.model_dump()
    data["services"] = [
        {
            "name": "ticker",
            "command": ["sleep", "60"],
            "count": 1,
            "resources": {"cpus": 0.25, "mem": 32},
        }
    ]
    with service_in_process(parse_config(data)) as h:
        manager = h.service.runtime.system_tasks
        service = manager.services["ticker"]
        h.step_until(lambda: any(t.has_started for t in service.tasks.values()))
        (task,) = service.tasks.values()
        h.backend.kill_task(task.id, task.agent_id or "")  # it dies: a new instance replaces it
        h.step_until(lambda: task.id not in service.tasks)
        h.step_until(lambda: any(t.has_started for t in service.tasks.values()))
        service.spec = type(service.spec)(**{**_fields(service.spec), "desired_count": 0})
        h.step_until(lambda: not service.tasks)  # a surplus instance is killed


def _fields(spec: object) -> dict[str, object]:
    return {name: getattr(spec, name) for name in spec.__slots__}  # type: ignore[attr-defined]


def test_node_tasks_run_health_checks_and_clean_up_finished_executions(tmp_path: Path) -> None:
    with service_in_process(config_for(tmp_path, TWO_AGENTS[:1])) as h:
        ids = h.submit(
            {
                "job_types": [job_type("writer", "open('out.txt', 'w').write('x')")],
                "jobs": [{"job_type": "writer"}],
            }
        )
        h.step_until(lambda: h.all_ended(ids))
        node = h.service.runtime.nodes.by_hostname("alpha")
        assert node is not None and node.state is NodeState.READY
        assert node.last_health_task is not None and node.is_health_normal
        shared = tmp_path / "data" / "agents" / "alpha" / "executions"
        h.step_until(lambda: not node.awaiting_cleanup, timeout=20)
        assert shared.is_dir() and not any(
            shared.iterdir()
        )  # the job ran there; cleanup removed it


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    url = os.environ.get(
        "LOADMASTER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        if os.environ.get("LOADMASTER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    schema = f"lm_service_{uuid.uuid4().hex[:10]}"
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url, schema
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def test_the_same_service_runs_on_postgresql(tmp_path: Path, pg_schema: tuple[str, str]) -> None:
    url, schema = pg_schema
    config = config_for(tmp_path, TWO_AGENTS)
    data = config.model_dump()
    data["store"] = {"url": url, "pg_schema": schema}
    with service_in_process(parse_config(data)) as h:
        assert h.store.dialect == "postgresql"
        ids = h.submit(
            {"job_types": [job_type("pg", "print('hi')")], "jobs": [{"job_type": "pg", "count": 4}]}
        )
        h.step_until(lambda: h.all_ended(ids))
        assert {j.status for j in h.jobs(ids)} == {JobStatus.COMPLETED}
        assert h.store.invariant_violations() == []


def test_queue_settings_in_the_configuration_are_applied_at_start(tmp_path: Path) -> None:
    config = config_for(tmp_path, TWO_AGENTS[:1], queue_mode="lifo", queue_limit=7)
    with service_in_process(config) as h:
        stored = h.store.config.scheduler()
        assert (str(stored.queue_mode), stored.queue_limit) == ("LIFO", 7)
        assert h.service.runtime.settings.queue_limit == 7


@pytest.mark.parametrize("policy", ["reference", "backfill"])
def test_backfill_policy_lets_short_work_use_a_draining_node(tmp_path: Path, policy: str) -> None:
    agent = [{"name": "alpha", "resources": {"cpus": 2.0, "mem": 1024, "disk": 10000}}]
    with service_in_process(config_for(tmp_path, agent, policy=policy)) as h:

        def typ(name: str, cpus: float, seconds: float, timeout: float) -> dict[str, object]:
            return job_type(
                name,
                f"import time; time.sleep({seconds})",
                resources={"cpus": cpus, "mem": 64},
                timeout_seconds=timeout,
            )

        types = [typ("long", 1.0, 2.0, 6.0), typ("big", 2.0, 0.1, 5.0), typ("short", 0.5, 0.1, 1.0)]
        (long_id,) = h.submit({"job_types": types, "jobs": [{"job_type": "long", "priority": 200}]})
        h.step_until(lambda: h.jobs([long_id])[0].status is JobStatus.RUNNING)
        big_id, short_id = h.submit(
            {
                "jobs": [
                    {"job_type": "big:1.0", "priority": 10},
                    {"job_type": "short:1.0", "priority": 300},
                ]
            }
            | {"job_types": types}
        )
        h.step_until(lambda: h.all_ended([long_id, big_id, short_id]), timeout=40)
        big, short = h.jobs([big_id, short_id])
        assert big.status is short.status is JobStatus.COMPLETED
        assert big.started is not None and short.started is not None
        if policy == "backfill":
            assert short.started < big.started  # it ran in the hole before the big one
        else:
            assert short.started >= big.started  # the reserved node took nothing new


class _LaunchSpy:
    """Every journal write of launches, and every task the backend was asked to run, with
    which job tasks had been journaled by then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_batches: int = 0) -> None:
        self.writes: list[set[str | None]] = []  # the agents of each write's launches
        self.journaled: set[str] = set()
        self.unjournaled_sent: list[str] = []
        self.fail_batches = fail_batches
        record = ExecutionRepository.record_task_launches
        send = LocalBackend.combine_offers
        spy = self

        def recording(repo: ExecutionRepository, launches: Sequence[TaskLaunch]) -> None:
            if len(launches) > 1 and spy.fail_batches:
                spy.fail_batches -= 1
                raise StoreUnavailable("the journal is down")
            record(repo, launches)
            if launches:
                spy.writes.append({launch.agent_id for launch in launches})
                spy.journaled.update(launch.task_id for launch in launches)

        def sending(backend: LocalBackend, offers: Sequence[Any], tasks: Sequence[Task]) -> None:
            spy.unjournaled_sent += [
                t.id for t in tasks if t.is_job_task and t.id not in spy.journaled
            ]
            send(backend, offers, tasks)

        monkeypatch.setattr(ExecutionRepository, "record_task_launches", recording)
        monkeypatch.setattr(LocalBackend, "combine_offers", sending)


def test_a_cycle_journals_all_its_launches_in_one_write_before_sending_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _LaunchSpy(monkeypatch)
    with service_in_process(config_for(tmp_path, TWO_AGENTS)) as h:
        nodes = h.service.runtime.nodes
        h.step_until(
            lambda: all(
                (n := nodes.by_hostname(name)) is not None and n.state is NodeState.READY
                for name in ("alpha", "beta")
            )
        )
        # all eight fit at once (four per node), so one cycle launches on both nodes
        quick = job_type("quick", "pass", resources={"cpus": 0.25, "mem": 64})
        ids = h.submit({"job_types": [quick], "jobs": [{"job_type": "quick", "count": 8}]})
        h.step_until(lambda: h.all_ended(ids), timeout=40)
        assert {j.status for j in h.jobs(ids)} == {JobStatus.COMPLETED}
    assert any(len(agents) == 2 for agents in spy.writes)  # both nodes' launches, one write
    assert spy.unjournaled_sent == []


def test_when_the_batch_cannot_be_journaled_each_node_journals_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _LaunchSpy(monkeypatch, fail_batches=1)
    with service_in_process(config_for(tmp_path, TWO_AGENTS)) as h:
        quick = job_type("quick", "pass", resources={"cpus": 0.25, "mem": 64})
        ids = h.submit({"job_types": [quick], "jobs": [{"job_type": "quick", "count": 8}]})
        h.step_until(lambda: h.all_ended(ids), timeout=40)
        assert {j.status for j in h.jobs(ids)} == {JobStatus.COMPLETED}
        assert spy.fail_batches == 0  # the failure happened
    assert spy.unjournaled_sent == []
