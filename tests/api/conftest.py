"""A real scheduler service (in-process, local backend) behind its FastAPI app.

Each test gets its own service and store: SQLite in the test's directory, and the same tests
again on PostgreSQL in a schema of their own (`LOADMASTER_TEST_DATABASE_URL`; skipped when
unreachable unless `LOADMASTER_REQUIRE_POSTGRES=1`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from tests.service.inprocess import Harness, config_for, service_in_process

from loadmaster.api.app import create_app
from loadmaster.api.context import ApiContext
from loadmaster.api.monitor import ServiceMonitor
from loadmaster.service.config import Config, parse_config
from loadmaster.store.sql import SqlStore

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AGENTS = [{"name": "alpha", "resources": {"cpus": 2, "mem": 2048, "disk": 4000}}]
TOKEN = "s3cret-token"


@dataclass
class Api:
    """The client, the service behind it, and a way to run the loop."""

    client: TestClient
    harness: Harness
    monitor: ServiceMonitor
    context: ApiContext

    @property
    def store(self) -> SqlStore:
        return self.harness.store

    def step(self, turns: int = 1) -> None:
        for _ in range(turns):
            self.monitor.step()

    def step_until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            self.monitor.step()
            time.sleep(0.03)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    url = os.environ.get("LOADMASTER_TEST_DATABASE_URL", DEFAULT_PG_URL)
    engine = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        reason = f"PostgreSQL is unreachable: {error}"
        if os.environ.get("LOADMASTER_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_section(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path / 'store.db'}"}
        return
    admin: Engine = request.getfixturevalue("pg_admin")
    schema = f"lm_api_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {"url": admin.url.render_as_string(hide_password=False), "pg_schema": schema}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def make_config(root: Path, store: dict[str, Any], **api: Any) -> Config:
    data = config_for(root, AGENTS).model_dump()
    data["store"] = store
    data["api"] = {"token": TOKEN, "status_seconds": 0.2, **api}
    return parse_config(data)


@contextmanager
def serving(config: Config) -> Iterator[Api]:
    with service_in_process(config) as harness:
        monitor = ServiceMonitor(harness.service, config.api.status_seconds)
        context = ApiContext(harness.service, monitor, config.api)
        with TestClient(create_app(context)) as client:
            yield Api(client, harness, monitor, context)


@pytest.fixture
def api(tmp_path: Path, store_section: dict[str, Any]) -> Iterator[Api]:
    with serving(make_config(tmp_path, store_section)) as served:
        yield served


@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[Api]:
    """For tests whose point is not the database (limits, fuzzing, the CLI)."""
    with serving(make_config(tmp_path, {"url": f"sqlite:///{tmp_path / 'store.db'}"})) as served:
        yield served
