"""Workload files: validated whole before anything is submitted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from loadmaster.service.workload import WorkloadError, load_workload, parse_workload

REPO = Path(__file__).resolve().parents[2]


def job_type(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "steps": {"main": ["{python}", "-c", "pass"]}, **extra}


def test_quickstart_parses() -> None:
    workload = load_workload(REPO / "examples" / "quickstart.toml")
    names = {jt.name for jt in workload.job_types}
    assert names == {"primes", "wordcount", "matrix", "checksum"}
    assert len(workload.jobs) == 24
    assert len({job.priority for job in workload.jobs}) >= 3
    wordcount = next(jt for jt in workload.job_types if jt.name == "wordcount")
    assert wordcount.steps == ("pre", "main", "post") and wordcount.max_scheduled == 3


def test_python_placeholder_and_minimum_resources() -> None:
    workload = parse_workload({"job_types": [job_type(resources={"cpus": 0.1})]}, "w")
    (jt,) = workload.job_types
    assert jt.commands["main"].command[0] == sys.executable
    assert jt.resources.cpus == 0.25 and jt.resources.mem == 128.0  # raised to the minimums


def test_jobs_resolve_by_name_or_name_and_version() -> None:
    data = {
        "job_types": [job_type(version="1"), job_type(version="2"), {**job_type(), "name": "u"}],
        "jobs": [
            {"job_type": "t:2", "count": 2, "priority": 5},
            {"job_type": "u", "env": {"A": "1"}},
        ],
    }
    workload = parse_workload(data, "w")
    assert [(j.job_type, j.priority) for j in workload.jobs] == [
        (("t", "2"), 5),
        (("t", "2"), 5),
        (("u", "1.0"), 100),
    ]
    assert workload.jobs[2].environment == {"A": "1"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"job_types": [{"name": "t", "steps": {}}]},
            "job_types[0].steps: main: a job type needs a main step",
        ),
        (
            {"job_types": [job_type(resources={"cpus": -1})]},
            "job_types[0].resources: cpus: must not be negative",
        ),
        ({"job_types": [job_type(max_scheduled=-1)]}, "job_types[0].max_scheduled"),
        (
            {"job_types": [job_type(colour="red")]},
            "job_types[0].colour: Extra inputs are not permitted",
        ),
        (
            {"job_types": [job_type(shell=True)]},
            "steps.main: with shell = true a step is one shell line",
        ),
        ({"job_types": [job_type(), job_type()]}, "job_types[1]: t:1.0 is declared twice"),
        (
            {"job_types": [job_type()], "jobs": [{"job_type": "nope"}]},
            "jobs[0].job_type: unknown job type 'nope'",
        ),
        (
            {
                "job_types": [job_type(version="1"), job_type(version="2")],
                "jobs": [{"job_type": "t"}],
            },
            "jobs[0].job_type: unknown job type 't'",
        ),
        ({"jobs": [{"job_type": "t", "count": 0}]}, "jobs[0].count"),
        ({"jobs": [{"job_type": "t", "priority": "high"}]}, "jobs[0].priority"),
    ],
    ids=[
        "no-main",
        "negative-resource",
        "negative-limit",
        "unknown-key",
        "shell-needs-one-line",
        "duplicate-type",
        "unknown-type",
        "ambiguous-name",
        "zero-count",
        "bad-priority",
    ],
)
def test_bad_workload_names_the_key(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(WorkloadError) as info:
        parse_workload(data, "w.toml")
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_known_types_from_the_store_can_be_referenced() -> None:
    workload = parse_workload({"jobs": [{"job_type": "old:3"}]}, "w", known_types={("old", "3")})
    assert workload.jobs[0].job_type == ("old", "3")
