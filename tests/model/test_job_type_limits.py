"""Job type scheduling limits (spec §8.5; §12.2 defect 12 fixed: 0 means none, None unlimited)."""

from __future__ import annotations

import pytest

from loadmaster.model.job_types import JobType
from loadmaster.scheduling.checks import job_type_limits


def types(**max_scheduled: int | None) -> dict[int, JobType]:
    """Job types keyed by id; keyword `t7=3` is type 7 with max_scheduled 3."""
    return {
        int(name[1:]): JobType(id=int(name[1:]), name=name, max_scheduled=limit)
        for name, limit in max_scheduled.items()
    }


@pytest.mark.parametrize(
    ("job_types", "running", "expected"),
    [
        (types(t1=None), {1: 5}, {}),
        (types(t1=0), {}, {1: 0}),
        (types(t1=0), {1: 2}, {1: -2}),
        (types(t1=3), {}, {1: 3}),
        (types(t1=3), {1: 1}, {1: 2}),
        (types(t1=3), {1: 3}, {1: 0}),
        (types(t1=2), {1: 5}, {1: -3}),
        (types(t1=2, t2=None, t3=4), {1: 1, 2: 9, 3: 4}, {1: 1, 3: 0}),
        (types(t1=2), {7: 5}, {1: 2}),
        ({}, {1: 1}, {}),
    ],
    ids=[
        "none-is-unlimited-and-absent",
        "zero-means-none-may-run",
        "zero-with-running-executions-goes-negative",
        "nothing-running-leaves-the-whole-limit",
        "running-executions-use-up-the-limit",
        "limit-reached-leaves-zero",
        "over-the-limit-goes-negative",
        "only-limited-types-are-present",
        "running-counts-of-unknown-types-are-ignored",
        "no-job-types",
    ],
)
def test_job_type_limits(
    job_types: dict[int, JobType], running: dict[int, int], expected: dict[int, int]
) -> None:
    assert job_type_limits(job_types, running) == expected


@pytest.mark.parametrize(
    ("max_scheduled", "running", "may_start"),
    [(None, 100, True), (0, 0, False), (1, 0, True), (1, 1, False)],
    ids=[
        "unlimited-type-may-always-start",
        "zero-limit-type-never-starts",
        "room-left-may-start",
        "limit-reached-may-not-start",
    ],
)
def test_a_type_may_start_another_execution_while_its_limit_is_at_least_one(
    max_scheduled: int | None, running: int, may_start: bool
) -> None:
    limits = job_type_limits(types(t1=max_scheduled), {1: running})
    assert (1 not in limits or limits[1] >= 1) is may_start
