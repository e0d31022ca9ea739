"""Configuration: TOML file, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadmaster.service.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loadmaster.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None, environ={})
    assert config.scheduler.cycle_seconds == 1.0
    assert config.backend.kind == "local"
    assert config.store_url().startswith("sqlite:///") and config.store_url().endswith(
        "loadmaster.db"
    )


def test_file_values_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[store]
url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
[scheduler]
cycle_seconds = 0.5
queue_mode = "lifo"
[[backend.local.agents]]
name = "a1"
resources = { cpus = 2, mem = 1024 }
[[services]]
name = "ticker"
command = ["sleep", "100"]
count = 2
""",
    )
    config = load_config(path, environ={})
    assert config.store_url().startswith("postgresql+psycopg://")
    assert config.scheduler.cycle_seconds == 0.5
    assert config.scheduler.queue_mode == "LIFO"
    assert config.backend.local.agents[0].resources == {"cpus": 2.0, "mem": 1024.0}
    assert config.services[0].count == 2


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    path = write(tmp_path, "[scheduler]\ncycle_seconds = 0.5\n")
    config = load_config(
        path,
        environ={
            "LOADMASTER_SCHEDULER_CYCLE_SECONDS": "2",
            "LOADMASTER_STORE_URL": "sqlite:///x.db",
            "LOADMASTER_LOGGING_LEVEL": "debug",
        },
    )
    assert config.scheduler.cycle_seconds == 2.0
    assert config.store_url() == "sqlite:///x.db"
    assert config.logging.level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (
            "[scheduler]\ncycle_seconds = 0\n",
            {},
            "scheduler.cycle_seconds: Input should be greater than 0",
        ),
        ("[scheduler]\nqueue_mode = 'RANDOM'\n", {}, "scheduler.queue_mode"),
        ("[scheduler]\ncolour = 'red'\n", {}, "scheduler.colour: Extra inputs are not permitted"),
        ("[backend]\nkind = 'kubernetes'\n", {}, "backend.kind"),
        ("[[services]]\nname = 'x'\ncommand = []\n", {}, "services[0].command"),
        (
            "[[services]]\nname = 'x'\ncommand = ['a']\nresources = { cpus = -1 }\n",
            {},
            "services[0].resources: cpus: must not be negative",
        ),
        (
            "[[backend.local.agents]]\nname = 'a'\nresources = { mem = -5 }\n",
            {},
            "backend.local.agents[0].resources: mem",
        ),
        (
            "",
            {"LOADMASTER_SCHEDULER_QUEUE_LIMIT": "0"},
            "scheduler.queue_limit: Input should be greater than or equal to 1",
        ),
        ("not toml at all [", {}, "not valid TOML"),
    ],
    ids=[
        "zero-cycle",
        "bad-queue-mode",
        "unknown-key",
        "unknown-backend",
        "empty-command",
        "negative-service-resource",
        "negative-agent-resource",
        "bad-env-override",
        "broken-toml",
    ],
)
def test_bad_configuration_names_the_key(
    tmp_path: Path, text: str, environ: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=environ)
    assert any(expected in problem for problem in info.value.problems), info.value.problems


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", environ={})
    assert "nope.toml" in str(info.value)
