"""The compiled bag arithmetic (`_bags.c`) gives exactly what the Python form gives: the same
names in the same order and the same amounts bit for bit, for any amounts (-0.0, NaN, ±inf,
values rounding moves, ints where a caller passes them)."""

from __future__ import annotations

import math
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmaster.resources import Arithmetic, Values

COMPILED = Arithmetic.compiled()
PYTHON = Arithmetic.python()
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="built without a C compiler")

NAMES = ["cpus", "mem", "disk", "gpus", "licenses", "scratch"]
amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.005, 0.015, 1.005, 2.675, 0.0151, 1 / 3, math.nan, -math.inf]),
    st.integers(-3, 3),
)
bags = st.lists(st.tuples(st.sampled_from(NAMES), amounts), max_size=7).map(dict)


def test_the_build_has_the_compiled_arithmetic_where_it_is_required() -> None:
    if os.environ.get("LOADMASTER_REQUIRE_COMPILED") == "1":
        assert COMPILED is not None
    else:
        pytest.skip("LOADMASTER_REQUIRE_COMPILED is not set")


def _bits(v: float) -> bytes | str:
    # every NaN alike: which operand's payload a NaN result carries is up to the compiler and
    # the CPU, and nothing in Python can tell NaNs apart (they print, compare and serialize
    # the same)
    return "nan" if math.isnan(v) else struct.pack("<d", v)


def _exact(values: Values | bool) -> object:
    """A bag as (name, type, bits) in order: -0.0 differs from 0.0, NaN equals NaN."""
    if isinstance(values, bool):
        return values
    return [
        (name, type(v).__name__, _bits(v) if isinstance(v, float) else v)
        for name, v in values.items()
    ]


@needs_compiled
@settings(max_examples=500, deadline=None)
@given(bags, bags, st.lists(bags, max_size=12))
def test_every_operation_matches_the_python_form(a: Values, b: Values, more: list[Values]) -> None:
    assert COMPILED is not None
    for name in ("add", "subtract", "is_sufficient", "increase_up_to"):
        got = getattr(COMPILED, name)(a, b)
        assert _exact(got) == _exact(getattr(PYTHON, name)(a, b)), name
    assert _exact(COMPILED.subtract_all(a, more)) == _exact(PYTHON.subtract_all(a, more))
    assert _exact(COMPILED.total(a, more)) == _exact(PYTHON.total(a, more))
    assert _exact(COMPILED.round_values(a)) == _exact(PYTHON.round_values(a))


@needs_compiled
@given(bags, bags)
def test_the_inputs_are_left_unchanged(a: Values, b: Values) -> None:
    assert COMPILED is not None
    before = (_exact(a), _exact(b))
    COMPILED.add(a, b)
    COMPILED.subtract(a, b)
    COMPILED.increase_up_to(a, b)
    COMPILED.subtract_all(a, [b, b])
    COMPILED.total(a, [b])
    COMPILED.round_values(a)
    assert (_exact(a), _exact(b)) == before


@needs_compiled
def test_what_is_not_a_bag_is_refused() -> None:
    assert COMPILED is not None
    with pytest.raises(TypeError, match="other must be a dict"):
        COMPILED.add({"cpus": 1.0}, [("cpus", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="values must be a dict"):
        COMPILED.round_values(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="others"):
        COMPILED.subtract_all({"cpus": 1.0}, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        COMPILED.add({"cpus": "x"}, {"cpus": 1.0})  # type: ignore[dict-item]
