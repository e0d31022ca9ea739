"""Job types, their minimums and the job-type resource list (spec §1.3, §4)."""

from __future__ import annotations

import pytest

from loadmaster.model.job_types import (
    MIN_CPUS,
    MIN_MEM,
    REGULAR_STEPS,
    JobType,
    JobTypeRegistry,
    with_minimums,
)
from loadmaster.resources import Resources


def test_minimums_match_the_spec() -> None:
    assert MIN_CPUS == 0.25
    assert MIN_MEM == 128.0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Resources(), Resources.of(cpus=0.25, mem=128.0)),
        (Resources.of(cpus=0.1, mem=64.0), Resources.of(cpus=0.25, mem=128.0)),
        (Resources.of(cpus=0.25, mem=128.0), Resources.of(cpus=0.25, mem=128.0)),
        (Resources.of(cpus=4.0, mem=2048.0), Resources.of(cpus=4.0, mem=2048.0)),
        (
            Resources.of(cpus=1.0, mem=256.0, disk=10.0, gpus=2.0, foo=3.0),
            Resources.of(cpus=1.0, mem=256.0, disk=10.0, gpus=2.0, foo=3.0),
        ),
        (Resources.of(cpus=0.5, mem=1.0), Resources.of(cpus=0.5, mem=128.0)),
    ],
    ids=[
        "nothing-requested-gets-both-minimums",
        "below-minimums-is-raised",
        "exactly-the-minimums-is-kept",
        "above-minimums-is-kept",
        "disk-gpus-and-custom-names-are-untouched",
        "each-minimum-applies-on-its-own",
    ],
)
def test_with_minimums(given: Resources, expected: Resources) -> None:
    assert with_minimums(given) == expected


def test_job_type_defaults() -> None:
    made = JobType(id=1, name="ingest")
    assert made.version == "1.0"
    assert made.max_tries == 3
    assert made.steps == REGULAR_STEPS == ("pull", "pre", "main", "post")
    assert made.max_scheduled is None
    assert not made.is_paused
    assert made.title == "ingest"


@pytest.mark.parametrize(
    ("max_scheduled", "limited"),
    [(None, False), (0, True), (1, True), (10, True)],
    ids=["none-is-unlimited", "zero-is-a-limit-of-none", "one-is-a-limit", "ten-is-a-limit"],
)
def test_has_limit(max_scheduled: int | None, limited: bool) -> None:
    assert JobType(id=1, name="t", max_scheduled=max_scheduled).has_limit() is limited


def test_resource_list_has_one_entry_per_type_in_registration_order() -> None:
    small = Resources.of(cpus=1.0)
    big = Resources.of(cpus=8.0)
    registry = JobTypeRegistry.of(
        [
            JobType(id=3, name="c", resources=big),
            JobType(id=1, name="a", resources=small, is_paused=True),
            JobType(id=2, name="b", resources=small, is_system=True),
            JobType(id=4, name="d", resources=big, max_scheduled=0),
        ]
    )
    assert registry.resource_list() == [big, small, small, big]
    assert [t.id for t in registry.all()] == [3, 1, 2, 4]


def test_registry_lookup_and_replacement() -> None:
    registry = JobTypeRegistry()
    registry.add(JobType(id=1, name="a", resources=Resources.of(cpus=1.0)))
    registry.add(JobType(id=2, name="b"))
    registry.add(JobType(id=1, name="a2", resources=Resources.of(cpus=2.0)))
    found = registry.get(1)
    assert found is not None
    assert found.name == "a2"
    assert registry.get(9) is None
    assert [t.id for t in registry.all()] == [1, 2]
    assert registry.resource_list()[0] == Resources.of(cpus=2.0)
