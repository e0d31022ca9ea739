"""The compiled re-reader computes exactly the keys the Python re-read computes.

Whole plans are compared in test_fast_equivalence.py; here the re-reader is driven directly,
over more nodes than a plan test uses (its best key is kept per block of 64 nodes, so several
blocks must be in play) and over amounts no snapshot may carry: -0.0, NaN, ±inf, negative
amounts, names missing from a node or from a request.
"""

from __future__ import annotations

import math
import os
import struct
from array import array
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmaster.resources import Resources
from loadmaster.scheduling import fast_rows as fast_rows_module
from loadmaster.scheduling.fast_index import JobTypeIndex
from loadmaster.scheduling.fast_rows import NO_NODE, Liveness, NodeRows, Ranking, compiled_rereads

COMPILED = compiled_rereads()
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="built without a C compiler")

NAMES = ["cpus", "mem", "gpus", "licenses"]
REQUEST = [0.0, -0.0, 0.5, 1.0, 2.0, 1 / 3, 0.1, math.nan, math.inf]
FIT = [0.0, -0.0, 0.5, 1.0, 2.0, 3.0, 1 / 3, 0.3, math.nan, math.inf]
BASIS = [*FIT, -1.0, -math.inf, -0.5]
TYPE_AMOUNTS = [0.0, -0.0, 0.5, 1.0, 2.0, 1 / 3, math.nan, -1.0, math.inf, -math.inf]


def test_the_build_has_the_compiled_re_reader_where_it_is_required() -> None:
    """CI builds the package with a C compiler and sets LOADMASTER_REQUIRE_COMPILED=1: a build
    that silently fell back to Python re-reads would not be measured as the compiled one."""
    if os.environ.get("LOADMASTER_REQUIRE_COMPILED") == "1":
        assert COMPILED is not None
    else:
        pytest.skip("LOADMASTER_REQUIRE_COMPILED is not set")


def _bag(draw: st.DrawFn, amounts: list[float]) -> Resources:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    return Resources({name: draw(st.sampled_from(amounts)) for name in names})


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    job_types = [_bag(draw, TYPE_AMOUNTS) for _ in range(draw(st.integers(0, 70)))]
    # one type names every resource, so that every request name is a column the re-reader
    # checks (a name outside the index keeps a ranking on the Python path)
    job_types.append(Resources({name: draw(st.sampled_from(TYPE_AMOUNTS)) for name in NAMES}))
    size = draw(st.integers(1, 300))
    # with negative fit amounts the fit test must check every requested name (reservation
    # rows may go negative); without, only the names asked more than 0 (or NaN)
    nonnegative = draw(st.booleans())
    fits = [_bag(draw, FIT if nonnegative else BASIS) for _ in range(draw(st.integers(1, 6)))]
    bases = [_bag(draw, BASIS) for _ in range(draw(st.integers(1, 6)))]
    rows = [(draw(st.sampled_from(fits)), draw(st.sampled_from(bases))) for _ in range(size)]
    request = _bag(draw, REQUEST)
    changes = draw(
        st.lists(
            st.tuples(st.integers(0, size - 1), st.sampled_from(fits), st.sampled_from(bases)),
            max_size=40,
        )
    )
    leaving = draw(st.lists(st.integers(0, size - 1), max_size=5))
    return {
        "job_types": job_types,
        "rows": rows,
        "request": request,
        "changes": changes,
        "leaving": leaving,
        "nonnegative": nonnegative,
    }


def _rankings(case: dict[str, Any]) -> tuple[NodeRows, Ranking, NodeRows, Ranking]:
    """The same rows and request twice: once compiled, once read in Python."""
    assert COMPILED is not None
    out: list[Any] = []
    for compiled in (True, False):
        index = JobTypeIndex(case["job_types"])
        live = Liveness(len(case["rows"]))
        fit = [f for f, _ in case["rows"]]
        basis = [b for _, b in case["rows"]]
        rows = NodeRows(index, list(fit), basis, live, COMPILED if compiled else None)
        rows.nonnegative = case["nonnegative"]
        out += [rows, Ranking(rows, case["request"])]
    return out[0], out[1], out[2], out[3]


@needs_compiled
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.sampled_from([0, 2, 512]))
def test_same_keys_best_and_fitting_as_the_python_re_read(
    case: dict[str, Any], scan_limit: int
) -> None:
    """`scan_limit` below the number of changes since a read makes both re-read the nodes
    whose stamps are newer instead of walking the log."""
    saved = fast_rows_module._SCAN_LIMIT
    fast_rows_module._SCAN_LIMIT = scan_limit
    try:
        _compare_with_python(case)
    finally:
        fast_rows_module._SCAN_LIMIT = saved


def _compare_with_python(case: dict[str, Any]) -> None:
    fast_rows, fast, py_rows, py = _rankings(case)
    assert fast.compiled and not py.compiled
    # the first pass: compiled `fill` against NumPy's `_compute`
    assert list(fast.keys) == list(py.keys)
    assert (fast.best, fast.fitting) == (py.best, py.fitting)
    for i in range(fast_rows.size):
        assert fast._reader.key(i) == py._key(i)
    changes: list[tuple[int, Resources, Resources]] = case["changes"]
    for step, (i, fit, basis) in enumerate(changes):
        for rows in (fast_rows, py_rows):
            rows.update(i, fit, basis)
        if step % 3 == 2 and step < len(case["leaving"]):  # a reservation takes a node out
            gone = case["leaving"][step]
            for rows in (fast_rows, py_rows):
                rows.alive.leave(gone)
                rows.touch(gone)
        if step % 2:  # reads between changes, so patches see one or several changed rows
            fast.sync()
            py.sync()
            assert (fast.best, fast.fitting) == (py.best, py.fitting)
    fast.sync()
    py.sync()
    assert list(fast.keys) == list(py.keys)
    assert (fast.best, fast.fitting) == (py.best, py.fitting)
    assert fast.best == min(fast.keys, default=NO_NODE)
    assert fast.fitting == sum(1 for k in fast.keys if k != NO_NODE)


def _plain_rows(size: int, width: int) -> Any:
    assert COMPILED is not None
    basis = np.zeros((size, width))
    present = np.zeros((size, width), dtype=np.uint8)
    names = tuple(NAMES[:width])
    fit = np.zeros((size, width))
    return COMPILED.Rows(size, width, basis, present, fit, np.ones(size, bool), names)


@needs_compiled
def test_a_buffer_of_the_wrong_size_is_refused_by_name() -> None:
    assert COMPILED is not None
    with pytest.raises(ValueError, match="fit: expected 6 items"):
        COMPILED.Rows(
            3, 2, np.zeros((3, 2)), np.zeros((3, 2), np.uint8), np.zeros(5), np.ones(3, bool),
            ("cpus", "mem"),
        )  # fmt: skip
    rows = _plain_rows(3, 2)
    index = np.zeros((2, 4))
    with pytest.raises(ValueError, match="prefix: expected"):
        COMPILED.Reader(
            rows, 4, 1, array("q", [0] * 3), index, np.zeros(3, np.uint64), np.zeros(2),
            np.zeros(0, np.int64), np.zeros(0),
        )  # fmt: skip


@needs_compiled
def test_rows_and_nodes_out_of_range_are_refused() -> None:
    assert COMPILED is not None
    rows = _plain_rows(3, 1)
    with pytest.raises(IndexError):
        rows.write(3, (1.0,), (1.0,))
    with pytest.raises(ValueError, match="as wide as the index"):
        rows.write(0, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError):
        rows.write(0, ("x",), (1.0,))
    reader = COMPILED.Reader(
        rows, 1, 1, array("q", [NO_NODE] * 3), np.zeros((1, 1)),
        np.array([[[0]], [[1]]], np.uint64), np.zeros(1), np.zeros(0, np.int64), np.zeros(0),
    )  # fmt: skip
    stamps = array("q", [0] * 3)
    with pytest.raises(IndexError):
        reader.patch_log(array("q", [5]), stamps, 0, 1, 512, True, NO_NODE, 0)
    log = array("q", [0, 1])  # one type met: keys 1·3 + 0, 1·3 + 1
    assert reader.patch_log(log, stamps, 0, 2, 512, False, NO_NODE, 0) == (3, 2)


def _bits(row: tuple[float | None, ...]) -> list[bytes | str | None]:
    """A row compared bit for bit (-0.0 is not 0.0 here), every NaN alike (which operand's
    payload a NaN result carries is up to the compiler; nothing in Python tells them apart)."""
    return [None if x is None else "nan" if math.isnan(x) else struct.pack("<d", x) for x in row]


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_accept_writes_the_rows_the_python_form_computes(data: st.DataObject) -> None:
    """`Rows.accept` is `_accepted`'s Python basis (w − allocated, None where w lacks the name)
    and the remaining bag aligned (0.0 where it lacks a name), bit for bit."""
    assert COMPILED is not None
    names = tuple(NAMES)
    without_row = tuple(
        data.draw(st.one_of(st.none(), st.sampled_from(BASIS)), f"w_{n}") for n in names
    )
    allocated = data.draw(
        st.builds(dict, st.dictionaries(st.sampled_from(NAMES), st.sampled_from(BASIS)))
    )
    remaining = data.draw(
        st.builds(dict, st.dictionaries(st.sampled_from(NAMES), st.sampled_from(BASIS)))
    )
    size, i = 3, data.draw(st.integers(0, 2))
    basis = np.zeros((size, len(names)))
    present = np.zeros((size, len(names)), dtype=np.uint8)
    fit = np.zeros((size, len(names)))
    rows = COMPILED.Rows(size, len(names), basis, present, fit, np.ones(size, bool), names)
    got = rows.accept(i, without_row, allocated, remaining)
    expected = tuple(
        None if w is None else w - allocated.get(name, 0.0)
        for w, name in zip(without_row, names, strict=True)
    )
    assert _bits(got) == _bits(expected)
    assert _bits(tuple(basis[i].tolist())) == _bits(
        tuple(0.0 if x is None else x for x in expected)
    )
    assert present[i].tolist() == [0 if x is None else 1 for x in expected]
    aligned = tuple(remaining.get(name, 0.0) for name in names)
    assert _bits(tuple(fit[i].tolist())) == _bits(aligned)


@needs_compiled
def test_an_index_wider_than_the_compiled_bit_sets_stays_on_the_python_path() -> None:
    assert COMPILED is not None
    from loadmaster.scheduling.fast import _usable

    narrow = JobTypeIndex([Resources({"cpus": float(k)}) for k in range(COMPILED.MAX_TYPES)])
    wide = JobTypeIndex([Resources({"cpus": float(k)}) for k in range(COMPILED.MAX_TYPES + 1)])
    assert _usable(COMPILED, narrow) is COMPILED
    assert _usable(COMPILED, wide) is None
