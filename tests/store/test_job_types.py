"""Job types: round trip to the core's `JobType`, edits, pausing, and rejected input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.store.harness import T0

from loadmaster.model.job_types import StepSpec
from loadmaster.resources import Resources
from loadmaster.store.job_types import censored_environment
from loadmaster.store.records import EntityKind, JobTypeSpec
from loadmaster.store.sql import SqlStore

FULL = JobTypeSpec(
    name="render",
    version="2.1",
    resources=Resources.of(cpus=2.0, mem=1024.0, gpus=1.0, foo=3.0),
    max_scheduled=0,
    max_tries=5,
    timeout_seconds=90.0,
    steps=("pull", "main", "post"),
    commands={
        "main": StepSpec(("render", "--fast")),
        "post": StepSpec(("echo done && sync",), shell=True),
    },
    environment={"MODE": "fast", "TOKEN": "s3cret"},
    secret_keys=frozenset({"TOKEN"}),
    retry_main_failures=True,
    is_long_running=True,
)


def test_create_round_trips_to_the_core_job_type(store: SqlStore) -> None:
    created = store.job_types.create(FULL, when=T0)
    assert created.id > 0
    assert created.name == "render" and created.version == "2.1"
    assert created.resources == FULL.resources
    assert created.max_scheduled == 0  # zero means none may run, not unlimited
    assert created.max_tries == 5 and created.timeout_seconds == 90.0
    assert created.steps == ("pull", "main", "post")
    assert created.commands == dict(FULL.commands)
    assert created.environment == {"MODE": "fast", "TOKEN": "s3cret"}
    assert created.retry_main_failures and created.is_long_running and not created.is_paused
    assert store.job_types.get(created.id) == created
    assert store.job_types.find("render", "2.1") == created
    assert store.job_types.find("render", "9") is None
    assert store.job_types.all() == [created]
    spec = store.job_types.spec(created.id)
    assert spec == FULL


def test_defaults(store: SqlStore) -> None:
    created = store.job_types.create(JobTypeSpec("plain"), when=T0)
    assert created.max_scheduled is None  # unlimited
    assert created.max_tries == 3
    assert created.steps == ("pull", "pre", "main", "post")
    assert created.commands == {}


def test_update_merges_changes_and_keeps_identity(store: SqlStore) -> None:
    created = store.job_types.create(FULL, when=T0)
    updated = store.job_types.update(
        created.id,
        when=T0 + timedelta(minutes=1),
        max_scheduled=None,
        steps=("main",),
        commands={"main": StepSpec(("other",))},
        secret_keys=frozenset(),
    )
    assert updated.id == created.id and updated.name == "render"
    assert updated.max_scheduled is None
    assert updated.steps == ("main",)
    assert updated.commands == {"main": StepSpec(("other",))}
    assert updated.max_tries == 5  # untouched
    events = store.events.list_for(EntityKind.JOB_TYPE, created.id)
    assert [e.what for e in events] == ["created", "updated"]


def test_an_update_that_would_be_invalid_changes_nothing(store: SqlStore) -> None:
    created = store.job_types.create(FULL, when=T0)
    with pytest.raises(ValueError, match=r"^commands\.post: 'post' is not one of the steps"):
        store.job_types.update(created.id, when=T0, steps=("main",))
    assert store.job_types.get(created.id) == created


def test_pause_and_resume(store: SqlStore) -> None:
    created = store.job_types.create(JobTypeSpec("p"), when=T0)
    assert store.job_types.pause(created.id, when=T0).is_paused
    assert store.job_types.pause(created.id, when=T0).is_paused  # repeating is harmless
    assert not store.job_types.resume(created.id, when=T0).is_paused
    whats = [e.what for e in store.events.list_for(EntityKind.JOB_TYPE, created.id)]
    assert whats == ["created", "paused", "resumed"]


def test_duplicate_name_and_version_is_rejected(store: SqlStore) -> None:
    store.job_types.create(JobTypeSpec("dup", "1"), when=T0)
    store.job_types.create(JobTypeSpec("dup", "2"), when=T0)
    with pytest.raises(ValueError, match=r"^name, version: a job type 'dup' version '1'"):
        store.job_types.create(JobTypeSpec("dup", "1"), when=T0)
    assert len(store.job_types.all()) == 2


def test_unknown_job_type(store: SqlStore) -> None:
    assert store.job_types.get(999) is None
    with pytest.raises(ValueError, match=r"^job_type_id: no job type with id 999"):
        store.job_types.update(999, when=T0, max_tries=2)
    with pytest.raises(ValueError, match=r"^job_type_id:"):
        store.job_types.pause(999, when=T0)


@pytest.mark.parametrize(
    ("case", "fields", "message"),
    [
        (
            "negative cpus",
            {"resources": Resources.of(cpus=-1.0)},
            r"^resources\.cpus: must be zero",
        ),
        (
            "nan mem",
            {"resources": Resources.of(mem=float("nan"))},
            r"^resources\.mem: must be a finite number",
        ),
        ("empty name", {"name": " "}, r"^name: must be a non-empty string"),
        ("long version", {"version": "v" * 65}, r"^version: at most 64"),
        ("zero tries", {"max_tries": 0}, r"^max_tries: must be at least 1"),
        ("negative limit", {"max_scheduled": -1}, r"^max_scheduled: must be at least 0"),
        ("zero timeout", {"timeout_seconds": 0.0}, r"^timeout_seconds: must be a positive"),
        ("no main step", {"steps": ("pre", "post")}, r"^steps: a `main` step is required"),
        ("unknown step", {"steps": ("main", "deploy")}, r"^steps: unknown step kinds"),
        ("steps out of order", {"steps": ("main", "pre")}, r"^steps: must be in the order"),
        ("repeated step", {"steps": ("main", "main")}, r"^steps: each kind at most once"),
        (
            "command for a missing step",
            {"steps": ("main",), "commands": {"pre": StepSpec(("x",))}},
            r"^commands\.pre: 'pre' is not one of the steps",
        ),
        (
            "empty command",
            {"commands": {"main": StepSpec(())}},
            r"^commands\.main\.command: must not",
        ),
        (
            "shell with two words",
            {"commands": {"main": StepSpec(("a", "b"), shell=True)}},
            r"^commands\.main\.command: a shell step takes exactly one",
        ),
        (
            "secret not in the environment",
            {"secret_keys": frozenset({"TOKEN"})},
            r"^secret_keys: \['TOKEN'\] are not in the environment",
        ),
        (
            "bad variable name",
            {"environment": {"A=B": "x"}},
            r"^environment: invalid variable name",
        ),
    ],
)
def test_invalid_definitions_name_the_field(
    case: str, fields: dict[str, Any], message: str
) -> None:
    values: dict[str, Any] = {"name": "t"} | fields
    with pytest.raises(ValueError, match=message):
        JobTypeSpec(**values)


def test_secret_values_can_be_masked_for_display() -> None:
    shown = censored_environment(FULL.environment, FULL.secret_keys)
    assert shown == {"MODE": "fast", "TOKEN": "*****"}
