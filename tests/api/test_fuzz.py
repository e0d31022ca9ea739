"""Property-based fuzzing of the API from its own OpenAPI document: whatever the generated
request, the server answers without a 5xx. Bounded to a few examples per operation so the
whole run stays well under a minute."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from tests.api.conftest import TOKEN, Api, make_config, serving
from tests.api.helpers import create_job_type, submit


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = Path(tmp_path_factory.mktemp("fuzz"))
    # Small batches: generated bodies would otherwise queue thousands of jobs per example.
    config = make_config(root, {"url": f"sqlite:///{root / 'store.db'}"}, max_batch=20)
    with serving(config) as api:
        api.client.post("/api/v1/scheduler/pause", headers=api.auth())  # launch nothing
        job_type = create_job_type(api, "fuzz")
        submit(api, job_type)
        api.step()
        api.monitor.refresh_status(force=True)
        yield api


@pytest.fixture(scope="module")
def api_schema(served: Api) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", served.client.app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report fast, stay bounded
)
def test_no_server_errors(case: schemathesis.Case[Any]) -> None:
    response = case.call(headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error])
