"""Access control and limits: bearer tokens on mutations, 413 for big bodies and batches,
`serve` refusing an open API beyond loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.api.conftest import Api, make_config, serving
from tests.api.helpers import V1, create_job_type, job_type_body

from loadmaster.api.server import ApiRefused, check_settings, is_loopback
from loadmaster.service.config import ApiConfig


def test_mutations_need_the_token_and_reads_do_not(sqlite_api: Api) -> None:
    api = sqlite_api
    body = job_type_body("guarded")
    missing = api.client.post(f"{V1}/job-types", json=body)
    assert missing.status_code == 401
    assert missing.json()["detail"][0]["field"] == "Authorization"
    wrong = api.client.post(f"{V1}/job-types", json=body, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    assert api.store.job_types.all() == []
    assert api.client.get(f"{V1}/job-types").status_code == 200
    assert api.client.post(f"{V1}/job-types", json=body, headers=api.auth()).status_code == 201


def test_without_a_token_configured_mutations_are_open(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"url": f"sqlite:///{tmp_path / 's.db'}"}, token=None)
    with serving(config) as api:
        assert api.client.post(f"{V1}/scheduler/pause").status_code == 200


def test_big_bodies_and_batches_are_413(tmp_path: Path) -> None:
    store = {"url": f"sqlite:///{tmp_path / 's.db'}"}
    with serving(make_config(tmp_path, store, max_body_bytes=4096, max_batch=3)) as api:
        type_id = create_job_type(api)
        big = {"job_type_id": type_id, "env": {"X": "y" * 5000}}
        response = api.client.post(f"{V1}/jobs", json=big, headers=api.auth())
        assert response.status_code == 413
        assert response.json()["detail"][0]["field"] == "body"
        batch = {"jobs": [{"job_type_id": type_id}] * 4}
        response = api.client.post(f"{V1}/jobs/batch", json=batch, headers=api.auth())
        assert response.status_code == 413 and response.json()["detail"][0]["field"] == "jobs"
        assert api.store.jobs.search().jobs == ()


def test_secrets_never_echoed(sqlite_api: Api) -> None:
    api = sqlite_api
    body = job_type_body("s", env={"TOKEN": "abc123"}) | {"secret_keys": ["TOKEN"]}
    type_id = api.client.post(f"{V1}/job-types", json=body, headers=api.auth()).json()["id"]
    job = api.client.post(
        f"{V1}/jobs", json={"job_type_id": type_id, "env": {"TOKEN": "zzz999"}}, headers=api.auth()
    ).json()["job"]
    assert job["env"] == {"TOKEN": "*****"}
    api.monitor.refresh_status(force=True)
    for path in ("/job-types", f"/job-types/{type_id}", "/jobs", f"/jobs/{job['id']}", "/status"):
        text = api.client.get(f"{V1}{path}").text
        assert "abc123" not in text and "zzz999" not in text, path


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    if loopback:
        check_settings(ApiConfig(host=host))
    else:
        with pytest.raises(ApiRefused, match=r"api\.token"):
            check_settings(ApiConfig(host=host))
        check_settings(ApiConfig(host=host, token="t"))


def test_serve_refuses_an_open_api_beyond_loopback(tmp_path: Path) -> None:
    config = tmp_path / "lm.toml"
    config.write_text(f'[scheduler]\ndata_dir = "{tmp_path.as_posix()}"\n[api]\nhost = "0.0.0.0"\n')
    result = subprocess.run(
        [sys.executable, "-m", "loadmaster", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LOADMASTER_API_TOKEN": ""},
        check=False,
    )
    assert result.returncode == 2
    assert "without api.token" in result.stderr
