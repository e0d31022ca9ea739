"""The Resources value type (scheduling spec §1.2): arithmetic, sufficiency, rounding, forms."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmaster.resources import (
    EMPTY,
    STANDARD_NAMES,
    Resources,
    count_satisfiable,
    from_json,
    total,
)


def res(**values: float) -> Resources:
    return Resources.of(**values)


# -- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_values", "expected"),
    [
        ({}, {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}),
        ({"cpus": 2.0}, {"cpus": 2.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}),
        (
            {"foo": 3.0, "mem": 512.0},
            {"cpus": 0.0, "mem": 512.0, "disk": 0.0, "gpus": 0.0, "foo": 3.0},
        ),
        ({"gpus": 1}, {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 1.0}),
    ],
    ids=[
        "empty-bag-has-the-four-standard-names-at-zero",
        "missing-standard-names-default-to-zero",
        "custom-scalar-is-kept-next-to-standard-names",
        "integer-amounts-become-floats",
    ],
)
def test_construction_always_holds_the_standard_names(
    given_values: dict[str, float], expected: dict[str, float]
) -> None:
    built = Resources(given_values)
    assert built.as_dict() == expected
    assert all(isinstance(value, float) for _, value in built.items())


def test_construction_later_duplicate_replaces_earlier() -> None:
    built = Resources([("cpus", 1.0), ("foo", 2.0), ("cpus", 4.0)])
    assert built.cpus == 4.0
    assert built.get("foo") == 2.0


def test_names_are_case_sensitive() -> None:
    built = res(Foo=1.0, foo=2.0)
    assert built.get("Foo") == 1.0
    assert built.get("foo") == 2.0
    assert "FOO" not in built


def test_accessors_and_missing_names() -> None:
    built = res(cpus=1.5, mem=256.0, disk=10.0, gpus=2.0, foo=7.0)
    assert (built.cpus, built.mem, built.disk, built.gpus) == (1.5, 256.0, 10.0, 2.0)
    assert built.get("bar") == 0.0
    assert built.get("bar", -1.0) == -1.0
    assert "foo" in built
    assert "bar" not in built
    assert list(built.names()) == [*STANDARD_NAMES, "foo"]


def test_operations_never_mutate_their_operands() -> None:
    left = res(cpus=2.0, foo=1.0)
    right = res(cpus=1.0, bar=3.0)
    before_left, before_right = left.as_dict(), right.as_dict()
    left.add(right)
    left.subtract(right)
    left.increase_up_to(right)
    left.limit_to(right)
    left.remove_resource("foo")
    left.round_values()
    left.with_value("cpus", 9.0)
    left.as_dict()["cpus"] = 100.0
    assert left.as_dict() == before_left
    assert right.as_dict() == before_right


# -- add / subtract -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (res(cpus=1.0, mem=100.0), res(cpus=0.5, mem=28.0), res(cpus=1.5, mem=128.0)),
        (res(cpus=1.0), res(foo=2.0), res(cpus=1.0, foo=2.0)),
        (res(foo=1.0), res(foo=2.5), res(foo=3.5)),
        (res(cpus=1.0), EMPTY, res(cpus=1.0)),
    ],
    ids=[
        "shared-names-are-summed",
        "name-only-in-other-is-inserted",
        "custom-names-are-summed",
        "adding-empty-changes-nothing",
    ],
)
def test_add(left: Resources, right: Resources, expected: Resources) -> None:
    assert left.add(right) == expected
    assert left + right == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (res(cpus=2.0, mem=512.0), res(cpus=0.5, mem=128.0), res(cpus=1.5, mem=384.0)),
        (res(cpus=1.0), res(foo=2.0), res(cpus=1.0)),
        (res(cpus=1.0), res(cpus=3.0), res(cpus=-2.0)),
        (
            res(cpus=1.0).remove_resource("gpus"),
            res(gpus=1.0),
            res(cpus=1.0).remove_resource("gpus"),
        ),
        (res(foo=5.0), res(foo=2.0), res(foo=3.0)),
    ],
    ids=[
        "shared-names-are-subtracted",
        "name-absent-from-self-is-ignored-no-negative-entry",
        "present-value-may-go-negative",
        "removed-gpus-stay-absent",
        "custom-names-are-subtracted",
    ],
)
def test_subtract(left: Resources, right: Resources, expected: Resources) -> None:
    result = left.subtract(right)
    assert result == expected
    assert set(result.names()) == set(left.names())
    assert left - right == expected


def test_total_sums_every_bag_and_is_empty_for_none() -> None:
    assert total([]) == Resources()
    assert total([res(cpus=1.0), res(cpus=2.0, foo=1.0), res(foo=0.5)]) == res(cpus=3.0, foo=1.5)


# -- sufficiency --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("have", "wanted", "expected"),
    [
        (res(cpus=1.0, mem=128.0), res(cpus=1.0, mem=128.0), True),
        (res(cpus=1.0), res(cpus=1.0000001), False),
        (res(cpus=0.9999999), res(cpus=1.0), False),
        (res(cpus=2.0, mem=1024.0, foo=9.0), res(cpus=1.0), True),
        (res(cpus=4.0), res(foo=0.0), True),
        (res(cpus=4.0), res(foo=0.1), False),
        (res(cpus=4.0), res(foo=-1.0), True),
        (Resources(), Resources(), True),
        (res(cpus=4.0, mem=64.0), res(cpus=1.0, mem=65.0), False),
        (res(cpus=4.0).remove_resource("gpus"), res(gpus=1.0), False),
        (res(cpus=4.0).remove_resource("gpus"), res(cpus=1.0), True),
        (res(foo=2.0), res(foo=2.0), True),
        (res(foo=1.0), res(foo=2.0), False),
        (res(cpus=-1.0), Resources(), False),
    ],
    ids=[
        "equality-passes",
        "strictly-less-fails-no-epsilon",
        "strictly-less-by-float-drift-fails",
        "extra-resources-in-self-are-irrelevant",
        "missing-name-meets-zero-request",
        "missing-name-fails-positive-request",
        "missing-name-meets-negative-request",
        "empty-meets-empty",
        "one-short-resource-fails-the-whole-request",
        "removed-gpus-fail-positive-gpus-request",
        "removed-gpus-meet-request-without-gpus-because-zero",
        "custom-name-equal-passes",
        "custom-name-short-fails",
        "negative-value-fails-zero-request",
    ],
)
def test_is_sufficient_to_meet(have: Resources, wanted: Resources, expected: bool) -> None:
    assert have.is_sufficient_to_meet(wanted) is expected


def test_count_satisfiable_counts_requirements_available_can_meet() -> None:
    requirements = [res(cpus=1.0), res(cpus=2.0), res(cpus=0.5, foo=1.0), res(mem=10.0)]
    assert count_satisfiable(res(cpus=2.0, mem=10.0), requirements) == 3
    assert count_satisfiable(res(cpus=2.0, mem=10.0, foo=1.0), requirements) == 4
    assert count_satisfiable(Resources(), requirements) == 0


# -- increase_up_to / limit_to / remove_resource ------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (res(cpus=1.0, mem=512.0), res(cpus=2.0, mem=256.0), res(cpus=2.0, mem=512.0)),
        (res(cpus=1.0), res(foo=3.0), res(cpus=1.0, foo=3.0)),
        (res(foo=5.0), res(foo=3.0), res(foo=5.0)),
        (res(cpus=-1.0), Resources(), Resources()),
        (res(cpus=1.0).remove_resource("gpus"), res(gpus=2.0), res(cpus=1.0, gpus=2.0)),
    ],
    ids=[
        "each-name-takes-the-larger-value",
        "name-missing-in-self-is-copied-in",
        "larger-self-value-is-kept",
        "negative-is-raised-to-zero-of-other",
        "removed-gpus-are-copied-back-in",
    ],
)
def test_increase_up_to(left: Resources, right: Resources, expected: Resources) -> None:
    assert left.increase_up_to(right) == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (res(cpus=4.0, mem=512.0), res(cpus=2.0, mem=1024.0), res(cpus=2.0, mem=512.0)),
        (res(cpus=1.0, foo=3.0), res(cpus=8.0), res(cpus=1.0).remove_resource("foo")),
        (
            res(cpus=1.0, gpus=2.0),
            res(cpus=8.0).remove_resource("gpus"),
            res(cpus=1.0).remove_resource("gpus"),
        ),
        (res(cpus=1.0), res(cpus=8.0, foo=3.0), res(cpus=1.0)),
        (res(foo=5.0), res(foo=2.0), res(foo=2.0)),
    ],
    ids=[
        "higher-values-are-lowered-to-other",
        "custom-name-missing-in-other-is-removed",
        "gpus-missing-in-other-are-deleted",
        "name-only-in-other-is-not-added",
        "custom-name-is-lowered",
    ],
)
def test_limit_to(left: Resources, right: Resources, expected: Resources) -> None:
    assert left.limit_to(right) == expected


@pytest.mark.parametrize(
    ("name", "expected_names", "expected_value"),
    [
        ("cpus", {"cpus", "mem", "disk", "gpus", "foo"}, 0.0),
        ("mem", {"cpus", "mem", "disk", "gpus", "foo"}, 0.0),
        ("disk", {"cpus", "mem", "disk", "gpus", "foo"}, 0.0),
        ("gpus", {"cpus", "mem", "disk", "foo"}, None),
        ("foo", {"cpus", "mem", "disk", "gpus"}, None),
        ("absent", {"cpus", "mem", "disk", "gpus", "foo"}, None),
    ],
    ids=[
        "cpus-is-zeroed-never-deleted",
        "mem-is-zeroed-never-deleted",
        "disk-is-zeroed-never-deleted",
        "gpus-is-deleted",
        "custom-name-is-deleted",
        "absent-name-is-a-no-op",
    ],
)
def test_remove_resource(name: str, expected_names: set[str], expected_value: float | None) -> None:
    start = res(cpus=1.0, mem=2.0, disk=3.0, gpus=4.0, foo=5.0)
    removed = start.remove_resource(name)
    assert set(removed.names()) == expected_names
    if expected_value is not None:
        assert removed.get(name) == expected_value
    if name == "gpus":
        assert removed.gpus == 0.0


# -- rounding and equality ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.1 + 0.2, 0.3), (1.23456, 1.23), (2.999, 3.0), (-1.234, -1.23), (128.0, 128.0)],
    ids=[
        "float-drift-is-removed",
        "rounds-down-to-two-decimals",
        "rounds-up-to-two-decimals",
        "negative-values-round-too",
        "whole-values-unchanged",
    ],
)
def test_round_values_rounds_every_value_to_two_decimals(value: float, expected: float) -> None:
    rounded = res(cpus=value, foo=value).round_values()
    assert rounded.cpus == expected
    assert rounded.get("foo") == expected


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (res(cpus=1.0), res(cpus=1.0), True),
        (res(cpus=1.000001), res(cpus=1.000004), True),
        (res(cpus=1.00001), res(cpus=1.00002), False),
        (res(cpus=1.0, foo=0.0), res(cpus=1.0), False),
        (res(cpus=1.0).remove_resource("gpus"), res(cpus=1.0), False),
        (res(foo=2.0), res(bar=2.0), False),
    ],
    ids=[
        "identical-bags-are-equal",
        "difference-below-five-decimals-is-equal",
        "difference-at-five-decimals-is-not-equal",
        "extra-zero-custom-name-is-not-equal",
        "missing-gpus-is-not-equal",
        "different-custom-names-are-not-equal",
    ],
)
def test_is_equal(left: Resources, right: Resources, expected: bool) -> None:
    assert left.is_equal(right) is expected
    assert right.is_equal(left) is expected


# -- string and JSON forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bag", "expected"),
    [
        (Resources(), "[0.00 cpus, 0.00 mem, 0.00 disk, 0.00 gpus]"),
        (
            res(cpus=1.0, mem=512.0, foo=2.5),
            "[1.00 cpus, 512.00 mem, 0.00 disk, 0.00 gpus, 2.50 foo]",
        ),
        (res(cpus=1.0 / 3.0), "[0.33 cpus, 0.00 mem, 0.00 disk, 0.00 gpus]"),
    ],
    ids=["empty-bag", "custom-names-after-standard-ones", "two-decimals-each"],
)
def test_string_form(bag: Resources, expected: str) -> None:
    assert str(bag) == expected


def test_json_form() -> None:
    assert res(cpus=1.0, foo=2.0).to_json() == {
        "version": "1.0",
        "resources": {"cpus": 1.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0, "foo": 2.0},
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"version": "1.0", "resources": {"cpus": 2, "foo": 1.5}}, res(cpus=2.0, foo=1.5)),
        ({"resources": {"mem": 512.0}}, res(mem=512.0)),
        ({"version": "1.0", "resources": {}}, Resources()),
    ],
    ids=["numbers-become-floats", "missing-version-defaults-to-1.0", "empty-resources"],
)
def test_from_json_accepts(data: dict[str, object], expected: Resources) -> None:
    parsed = from_json(data)
    assert parsed == expected
    assert all(isinstance(value, float) for _, value in parsed.items())


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"version": "2.0", "resources": {}}, "version"),
        ({"version": "1.0", "resources": {}, "extra": 1}, "unexpected keys"),
        ({"version": "1.0", "resources": {"cpus": "two"}}, "cpus"),
        ({"version": "1.0", "resources": {"cpus": True}}, "cpus"),
        ({"version": "1.0", "resources": {"cpus": None}}, "cpus"),
        ({"version": "1.0", "resources": [1, 2]}, "resources"),
    ],
    ids=[
        "other-version-is-rejected",
        "other-top-level-key-is-rejected",
        "string-value-is-rejected",
        "boolean-value-is-rejected",
        "null-value-is-rejected",
        "resources-must-be-an-object",
    ],
)
def test_from_json_rejects(data: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        from_json(data)


# -- properties ---------------------------------------------------------------------------------

NAMES = st.sampled_from(["cpus", "mem", "disk", "gpus", "foo", "bar"])
AMOUNTS = st.integers(min_value=0, max_value=10_000_000).map(lambda cents: cents / 100)
BAGS = st.dictionaries(NAMES, AMOUNTS, max_size=6).map(Resources)


@given(BAGS, BAGS)
def test_property_subtract_undoes_add_on_shared_names(left: Resources, right: Resources) -> None:
    back = left.add(right).subtract(right)
    assert set(back.names()) == set(left.names()) | set(right.names())
    for name, value in left.items():
        assert math.isclose(back.get(name), value, rel_tol=1e-9, abs_tol=1e-9)


@given(BAGS, BAGS)
def test_property_subtract_never_adds_names(left: Resources, right: Resources) -> None:
    assert set(left.subtract(right).names()) == set(left.names())


@given(BAGS, BAGS)
def test_property_add_names_are_the_union(left: Resources, right: Resources) -> None:
    assert set(left.add(right).names()) == set(left.names()) | set(right.names())


@given(BAGS)
def test_property_a_bag_meets_itself(bag: Resources) -> None:
    assert bag.is_sufficient_to_meet(bag)


@given(BAGS, BAGS, BAGS)
def test_property_sufficiency_is_monotone_in_what_is_available(
    have: Resources, extra: Resources, request: Resources
) -> None:
    """Adding non-negative resources never turns a fit into a misfit."""
    if have.is_sufficient_to_meet(request):
        assert have.add(extra).is_sufficient_to_meet(request)


@given(BAGS, BAGS, BAGS)
def test_property_sufficiency_is_antitone_in_the_request(
    have: Resources, request: Resources, cut: Resources
) -> None:
    """A smaller request (per name) fits wherever the bigger one fits."""
    smaller = request.subtract(cut)
    if have.is_sufficient_to_meet(request):
        assert have.is_sufficient_to_meet(smaller)


@given(BAGS, BAGS)
def test_property_whatever_is_added_can_be_met(base: Resources, request: Resources) -> None:
    assert base.add(request).is_sufficient_to_meet(request)


@given(BAGS, BAGS)
def test_property_remaining_after_fit_is_never_negative(
    have: Resources, request: Resources
) -> None:
    """Subtracting a request that fits leaves no negative amount: a node is never over-committed."""
    if have.is_sufficient_to_meet(request):
        assert all(value >= 0.0 for _, value in have.subtract(request).items())


@given(BAGS, BAGS)
def test_property_increase_up_to_meets_both(left: Resources, right: Resources) -> None:
    raised = left.increase_up_to(right)
    assert raised.is_sufficient_to_meet(left)
    assert raised.is_sufficient_to_meet(right)


@given(BAGS, BAGS)
def test_property_limit_to_stays_within_the_limit(bag: Resources, limit: Resources) -> None:
    limited = bag.limit_to(limit)
    assert limit.is_sufficient_to_meet(limited)
    assert set(limited.names()) <= set(bag.names())
    assert bag.is_sufficient_to_meet(limited)


@given(BAGS)
def test_property_round_values_is_idempotent(bag: Resources) -> None:
    once = bag.round_values()
    assert once.round_values() == once
    assert once.is_equal(bag)


@given(BAGS)
def test_property_json_round_trip(bag: Resources) -> None:
    assert from_json(bag.to_json()) == bag


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**6), 10**6).map(float))
def test_property_round_values_is_round_to_two_decimals(value: float) -> None:
    """The whole-number shortcut gives exactly `round(value, 2)`: same float, same sign of zero,
    NaN stays NaN."""
    got = res(cpus=value).round_values().cpus
    want = round(value, 2)
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == want
        assert math.copysign(1.0, got) == math.copysign(1.0, want)


@given(BAGS, st.lists(BAGS, max_size=6))
def test_property_subtract_all_is_chained_subtract(bag: Resources, others: list[Resources]) -> None:
    """The same floats as subtracting one bag after the other (names, order, values)."""
    chained = bag
    for other in others:
        chained = chained.subtract(other)
    got = bag.subtract_all(others)
    assert list(got.names()) == list(chained.names())
    for (name, value), (_, want) in zip(got.items(), chained.items(), strict=True):
        assert value == want or (math.isnan(value) and math.isnan(want)), name
        assert math.copysign(1.0, value) == math.copysign(1.0, want), name
