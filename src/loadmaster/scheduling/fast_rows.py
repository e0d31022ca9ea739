"""Per-node score inputs and per-shape rankings that are kept current by change logs.

A placement changes at most one node (the one that accepted the entry, or the one reserved and
taken out of the session), so a ranking of all nodes for one resource shape stays valid except
at the nodes changed since it was last read. `NodeRows` holds what one kind of score reads for
every node (what must meet the request, and what the request is subtracted from) and logs which
rows changed; a `Ranking` holds, for one shape, every node's composite key
`score × size + order` (or `NO_NODE`) and its minimum, and on each read recomputes only the
logged rows. Keys are unique per node, so "lowest score, then earliest node" is the minimum key.

Why a stale key cannot simply be left in place: accepting work only shrinks a node, and a
smaller node meets fewer job types, so its score — and key — goes *down* (it becomes more
attractive) until it stops fitting (`NO_NODE`). A changed node may therefore overtake the
current minimum, and every changed node that still fitted must be re-read before the minimum
is trusted; the work saved is at the unchanged nodes. Two cheap exits follow from the same
monotonicity: a node that no longer fits a shape is never re-read for it, and a shape that fits
no node is not re-read at all (both only while every accepted request is non-negative, see
`NodeRows.monotone`).

Where the package was built with its C extension (`_rereads.c`), changed rows are re-read by
compiled code: the same fit test and count as `Ranking._key`, with the same float operations,
at about 1/20 of the cost, and the best key is kept per block of 64 nodes so that a best node
that got worse costs a scan of the block minimums rather than of every key. Otherwise a few
changed rows are re-read one at a time in Python (`Ranking._key`: the fit test on the aligned
fit row, then the count, where names the shape asks nothing of share one cached bit set per
node); many at once with NumPy (`Ranking._compute`), which tests fit first and counts only the
nodes that still fit. Either way a ranking's first pass is NumPy's. A ranking's first pass scores each group of nodes that were
identical at the start once (`Twins`). Keys live in an `array('q')` with a NumPy view on the
same memory: single keys are read and written from Python at list speed, and the minimum over
all nodes is one NumPy call.
"""

from __future__ import annotations

import importlib
import math
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from loadmaster.resources import Resources
from loadmaster.scheduling.fast_index import BoolArray, FloatArray, IntArray, JobTypeIndex

if TYPE_CHECKING:
    from loadmaster.scheduling._rereads import Reader, Rows

NO_NODE = int(np.iinfo(np.int64).max)
# Up to this many changed rows a ranking is patched one row at a time; beyond, vectorized
# (one vectorized pass costs about as much as patching 60-100 rows one at a time).
_PATCH_LIMIT = 80
# Up to this many log entries since the last read the changed rows are collected from the log;
# beyond, from the per-node stamps (one pass over all nodes).
_SCAN_LIMIT = 512
_NEG_INF = -math.inf


def compiled_rereads() -> ModuleType | None:
    """The compiled re-reader (`_rereads.c`), or None where the package was built without a C
    compiler; rankings then re-read keys in Python (the same keys, more slowly)."""
    try:
        return importlib.import_module("loadmaster.scheduling._rereads")
    except ImportError:
        return None


class Liveness:
    """Which session nodes are still in the session (a reserved node leaves), as a list for
    single reads and as a NumPy array for vectorized ones; shared by every row set."""

    __slots__ = ("array", "flags")

    def __init__(self, size: int) -> None:
        self.flags = [True] * size
        self.array: BoolArray = np.ones(size, dtype=np.bool_)

    def leave(self, i: int) -> None:
        self.flags[i] = False
        self.array[i] = False


class Twins:
    """The nodes whose rows were identical when the session started (nodes of one model with
    the same work under way), as groups: a ranking's first pass over all nodes scores each
    group once and copies the score to its members that have not changed since (the others
    are scored from their current rows), which gives every node exactly its own key."""

    __slots__ = ("bags", "basis", "count", "fit", "of", "present")

    def __init__(self, fit: Sequence[Resources], basis_rows: Sequence[tuple[float | None, ...]]):
        groups: dict[tuple[object, ...], int] = {}
        members: list[int] = []
        first: list[int] = []
        for i, (bag, row) in enumerate(zip(fit, basis_rows, strict=True)):
            key = (bag.ordered_key(), row)
            group = groups.get(key)
            if group is None:
                group = groups[key] = len(first)
                first.append(i)
            members.append(group)
        self.count = len(first)
        self.of: IntArray = np.array(members, dtype=np.intp)
        self.bags = [fit[i] for i in first]
        rows = [basis_rows[i] for i in first]
        width = len(rows[0]) if rows else 0
        self.basis: FloatArray = np.array(
            [[0.0 if x is None else x for x in row] for row in rows], dtype=np.float64
        ).reshape(self.count, width)
        present = np.array([[x is not None for x in row] for row in rows], dtype=np.bool_)
        self.present: BoolArray | None = None if present.all() else present.reshape(-1, width)
        self.fit: FloatArray = np.zeros((self.count, 0), dtype=np.float64)

    def add_fit_column(self, name: str) -> None:
        column = np.fromiter((b.get(name) for b in self.bags), np.float64, self.count)
        self.fit = np.column_stack((self.fit, column))


class NodeRows:
    """For every session node: the bag that must meet a request (`fit`) and the bag the request
    is subtracted from before counting job types (`basis_rows`, aligned with the index's names,
    None where the bag lacks a name), plus NumPy matrices of both. The matrices are brought up
    to date only when a vectorized read needs them (`matrices`), so that a change costs no NumPy
    call. A missing name is stored as 0.0 in the fit matrix: `not (0.0 < r)` is exactly the
    reference's "a lacking name only meets a request ≤ 0"; the basis matrix keeps a presence
    mask instead.

    `nonnegative` (set by the owner) promises that no fit amount is negative for the whole
    session; then a request name asking for ≤ 0 is met by every node and need not be checked.
    For the remaining resources this holds whenever it holds at the start: an accept subtracts
    r from an amount that is ≥ r, which leaves it ≥ 0 (or NaN, which meets every request)."""

    __slots__ = (
        "_basis",
        "_dirty",
        "_fit_matrix",
        "_fit_names",
        "_present",
        "alive",
        "basis_rows",
        "compiled",
        "fit",
        "fit_rows",
        "index",
        "kernel",
        "log",
        "monotone",
        "nonnegative",
        "passive",
        "pos",
        "size",
        "sources",
        "stamps",
        "stamps_view",
        "twins",
    )

    def __init__(
        self,
        index: JobTypeIndex,
        fit: list[Resources],
        basis: Iterable[Resources],
        alive: Liveness,
        compiled: ModuleType | None = None,
    ) -> None:
        self.index = index
        self.size = len(fit)
        self.alive = alive
        self.fit = fit
        names = index.names
        self.basis_rows: list[tuple[float | None, ...]] = [b.aligned(names) for b in basis]
        # the fit bags aligned with the same names, -inf where a bag lacks one (fails every
        # positive request, meets a NaN one: the reference's rule for a lacking name); only
        # read by `Ranking._key` where `_checks` is set, which compiled rows never are
        self.fit_rows: list[tuple[float, ...]] = (
            [f.aligned_or(names, _NEG_INF) for f in fit] if compiled is None else []
        )
        # per node, `passive_mask` results of its current basis by set of passive names (as
        # a bit set of name positions)
        self.passive: list[dict[int, int]] = [{} for _ in range(self.size)]
        self.nonnegative = False
        self._fit_names: dict[str, int] = {}
        self._fit_matrix: FloatArray = np.zeros((self.size, 0), dtype=np.float64)
        self._basis: FloatArray | None = None
        self._present: BoolArray | None = None
        self._dirty: list[int] = []
        self.log = array("q")  # node indices in order of change (read in place by C)
        # per node, len(log) just after its latest change: "changed since p" is stamps > p
        self.stamps = array("q", bytes(8 * self.size))
        self.stamps_view: IntArray = np.frombuffer(self.stamps, dtype=np.int64)
        # True while every change only took resources away: a node that does not fit a shape
        # then never fits it again this session, so rankings may skip it
        self.monotone = True
        self.pos = 0  # how far a following row set has applied its source's change log
        self.sources: list[object] = [None] * self.size  # what each row was computed from
        self.twins: Twins | None = None
        self.compiled: ModuleType | None = None
        self.kernel: Rows | None = None
        if compiled is not None:
            self._compile(compiled)

    def _compile(self, compiled: ModuleType) -> None:
        """Keep the rows also in the compiled re-reader's matrices (see `Ranking.sync`)."""
        width = len(self.index.names)
        basis = np.zeros((self.size, width), dtype=np.float64)
        present = np.zeros((self.size, width), dtype=np.uint8)
        fit = np.zeros((self.size, width), dtype=np.float64)
        names = self.index.names
        kernel: Rows = compiled.Rows(self.size, width, basis, present, fit, self.alive.array, names)
        for i, (basis_row, bag) in enumerate(zip(self.basis_rows, self.fit, strict=True)):
            kernel.write(i, basis_row, bag.aligned(names))
        self.compiled = compiled
        self.kernel = kernel

    def group_twins(self) -> None:
        """Group the nodes whose rows are identical now, before any change, if that saves
        enough of the first pass of every ranking (`Twins`)."""
        twins = Twins(self.fit, self.basis_rows)
        if 2 * twins.count <= self.size:
            for name in self._fit_names:
                twins.add_fit_column(name)
            self.twins = twins

    def update(self, i: int, fit: Resources, basis: Resources) -> None:
        """Node i now reads `fit` and `basis`; rankings re-read it."""
        self.update_row(i, fit, basis.aligned(self.index.names))

    def update_row(self, i: int, fit: Resources, basis_row: tuple[float | None, ...]) -> None:
        """`update` with the basis already aligned with the index's names."""
        if self.kernel is None:
            self.fit_rows[i] = fit.aligned_or(self.index.names, _NEG_INF)
        else:  # compiled: `fit_rows` (read by `_key` where `_checks` is set) is not kept
            self.kernel.write(i, basis_row, fit.aligned(self.index.names))
        self.record_row(i, fit, basis_row)

    def record_row(self, i: int, fit: Resources, basis_row: tuple[float | None, ...]) -> None:
        """`update_row` once the compiled matrices (if any) already hold the new rows."""
        self.fit[i] = fit
        self.basis_rows[i] = basis_row
        self.passive[i] = {}
        self._dirty.append(i)
        self.touch(i)

    def touch(self, i: int) -> None:
        """Node i must be re-read (it left the session, or its row changed)."""
        log = self.log
        log.append(i)
        self.stamps[i] = len(log)

    def fit_column(self, name: str) -> int:
        """The fit matrix column of `name`, added on first use (from the current rows)."""
        col = self._fit_names.get(name)
        if col is None:
            column = np.fromiter((f.get(name) for f in self.fit), np.float64, self.size)
            self._fit_matrix = np.column_stack((self._fit_matrix, column))
            col = self._fit_names[name] = len(self._fit_names)
            if self.twins is not None:
                self.twins.add_fit_column(name)
        return col

    def matrices(self) -> tuple[FloatArray, FloatArray, BoolArray | None]:
        """(fit matrix, basis matrix, presence mask or None when every name is present), with
        every changed row written in."""
        if self._basis is None:
            width = len(self.index.names)
            values = np.zeros((self.size, width), dtype=np.float64)
            present = np.ones((self.size, width), dtype=np.bool_)
            for i, row in enumerate(self.basis_rows):
                if None in row:
                    values[i] = [0.0 if x is None else x for x in row]
                    present[i] = [x is not None for x in row]
                else:
                    values[i] = row
            self._basis = values
            self._present = None if present.all() else present
        if self._dirty:  # the fit matrix's rows (its columns were built when first needed)
            self._flush(sorted(set(self._dirty)))
        return self._fit_matrix, self._basis, self._present

    def _flush(self, changed: list[int]) -> None:
        assert self._basis is not None
        self._dirty = []
        rows = [self.basis_rows[i] for i in changed]
        self._basis[changed] = [[0.0 if x is None else x for x in row] for row in rows]
        missing = [[x is not None for x in row] for row in rows]
        if self._present is not None:
            self._present[changed] = missing
        elif not all(all(m) for m in missing):
            present = np.ones(self._basis.shape, dtype=np.bool_)
            present[changed] = missing
            self._present = present
        if self._fit_names:
            names = list(self._fit_names)
            fits = [self.fit[i] for i in changed]
            self._fit_matrix[changed] = [[f.get(name) for name in names] for f in fits]


class Ranking:
    """Every node's key for one request shape over one `NodeRows`, and the minimum key."""

    __slots__ = (
        "_active",
        "_checks",
        "_fit_cols",
        "_fit_wanted",
        "_needs_present",
        "_passive",
        "_passive_bits",
        "_r",
        "_r_vector",
        "_reader",
        "_rows",
        "best",
        "fitting",
        "keys",
        "keys_view",
        "pos",
    )

    def __init__(self, rows: NodeRows, r: Resources) -> None:
        self._rows = rows
        self._r = r
        index = rows.index
        r_row = index.shape_row(r)
        self._r_vector: FloatArray = np.array(r_row, dtype=np.float64)
        position = {name: k for k, name in enumerate(index.names)}
        # With non-negative rows only names asking for more than 0 (or NaN) can fail, and if
        # all of them are job-type names the aligned fit rows answer; otherwise the bag does.
        items = list(r.items())
        checked = [(n, v) for n, v in items if not v <= 0.0] if rows.nonnegative else items
        in_index = all(n in position for n, _ in checked)
        self._checks: tuple[tuple[int, float], ...] | None = None
        # the compiled fit test reads 0.0 for a lacking name, which is exact for any amounts
        compiled_checks = tuple((position[n], v) for n, v in checked) if in_index else None
        self.keys = array("q", [NO_NODE]) * rows.size
        self._reader = self._compiled_reader(compiled_checks)
        if self._reader is not None:
            self.best, self.fitting = self._reader.fill()
        else:
            if rows.nonnegative and in_index and rows.kernel is None:
                self._checks = compiled_checks
            self._prepare_python(r_row, checked)
            first = self._compute(None)
            self.keys = array("q", first.tobytes())
            self.best = int(first.min()) if rows.size else NO_NODE
            self.fitting = int(np.count_nonzero(first != NO_NODE))
        self.keys_view: IntArray = np.frombuffer(self.keys, dtype=np.int64)
        self.pos = len(rows.log)

    @property
    def compiled(self) -> bool:
        """True if the compiled reader computes and re-reads this ranking's keys."""
        return self._reader is not None

    def _prepare_python(self, r_row: tuple[float, ...], checked: list[tuple[str, float]]) -> None:
        """What the Python re-reads (`_key`) and NumPy passes (`_compute`) read; a ranking read
        by the compiled reader never uses them."""
        rows = self._rows
        self._passive, self._active = rows.index.split(r_row)
        # the set of passive names as one int: the key of the per-node `passive` caches
        self._passive_bits = sum(1 << k for k in self._passive)
        # a name the basis lacks counts as 0.0 whatever is requested: only a request with a
        # non-zero amount of some name needs the presence mask
        self._needs_present = any(v != 0.0 for v in r_row)
        self._fit_cols = np.array([rows.fit_column(n) for n, _ in checked], dtype=np.intp)
        self._fit_wanted = np.array([v for _, v in checked], dtype=np.float64)

    def _compiled_reader(self, checks: tuple[tuple[int, float], ...] | None) -> Reader | None:
        """The compiled form of `_key` over `keys`, where the rows are compiled and every name
        the fit test checks is a column (`checks`); otherwise keys are computed with NumPy and
        re-read in Python."""
        rows = self._rows
        index = rows.index
        compiled = rows.compiled
        if compiled is None or rows.kernel is None or checks is None:
            return None
        thresholds, prefix = index.matrices()
        reader: Reader = compiled.Reader(
            rows.kernel,
            index.count,
            prefix.shape[2],
            self.keys,
            thresholds,
            prefix,
            self._r_vector,
            np.array([k for k, _ in checks], dtype=np.int64),
            np.array([v for _, v in checks], dtype=np.float64),
        )
        return reader

    def _compute(self, idx: IntArray | None) -> IntArray:
        """Keys of the nodes `idx` (all when None), vectorized. Only the nodes that fit are
        scored: after a few placements most re-read nodes no longer fit the shape."""
        rows = self._rows
        if idx is None and rows.twins is not None:
            return self._compute_twins(rows.twins)
        fits, basis, present = rows.matrices()
        live = rows.alive.array
        if idx is None:
            fit = ~(fits[:, self._fit_cols] < self._fit_wanted).any(axis=1) & live
            out = np.full(rows.size, NO_NODE, dtype=np.int64)
        else:
            fit = ~(fits[idx[:, None], self._fit_cols] < self._fit_wanted).any(axis=1) & live[idx]
            out = np.full(len(idx), NO_NODE, dtype=np.int64)
        where = np.flatnonzero(fit)
        if not len(where):
            return out
        nodes = where if idx is None else idx[where]
        a = basis[nodes] - self._r_vector
        if present is not None and self._needs_present:
            a = np.where(present[nodes], a, 0.0)
        out[where] = rows.index.scores(a) * rows.size + nodes
        return out

    def _compute_twins(self, twins: Twins) -> IntArray:
        """All keys, each group of twins scored once; nodes changed since the start (or gone)
        are computed from their own rows."""
        rows = self._rows
        fit = ~(twins.fit[:, self._fit_cols] < self._fit_wanted).any(axis=1)
        group_scores = np.full(twins.count, -1, dtype=np.int64)
        where = np.flatnonzero(fit)
        if len(where):
            a = twins.basis[where] - self._r_vector
            if twins.present is not None and self._needs_present:
                a = np.where(twins.present[where], a, 0.0)
            group_scores[where] = rows.index.scores(a)
        scores = group_scores[twins.of]
        out = np.full(rows.size, NO_NODE, dtype=np.int64)
        nodes = np.flatnonzero(scores >= 0)
        out[nodes] = scores[nodes] * rows.size + nodes
        changed = np.flatnonzero(rows.stamps_view > 0)
        if len(changed):
            out[changed] = self._compute(changed)
        return out

    def _key(self, i: int) -> int:
        """Node i's key from its rows: the single-node form of `_compute`."""
        rows = self._rows
        if not rows.alive.flags[i]:
            return NO_NODE
        checks = self._checks
        if checks is None:
            if not rows.fit[i].is_sufficient_to_meet(self._r):
                return NO_NODE
        else:
            have = rows.fit_rows[i]
            for k, wanted in checks:
                if have[k] < wanted:
                    return NO_NODE
        x_row = rows.basis_rows[i]
        cache = rows.passive[i]
        mask = cache.get(self._passive_bits)
        if mask is None:
            mask = cache[self._passive_bits] = rows.index.passive_mask(x_row, self._passive)
        for k, r, thresholds, prefix in self._active:
            x = x_row[k]
            mask &= prefix[bisect_right(thresholds, 0.0 if x is None else x - r)]
        return mask.bit_count() * rows.size + i

    def sync(self) -> None:
        """Bring the keys of rows changed since the last read up to date."""
        rows = self._rows
        log = rows.log
        since = self.pos
        end = len(log)
        if since == end:
            return
        self.pos = end
        if rows.monotone and self.best == NO_NODE:
            return  # fits no node, and no node can start fitting
        count = end - since
        if self._reader is not None:  # the same reads as below, from the log or the stamps
            self.best, self.fitting = self._reader.patch_log(
                log, rows.stamps, since, end, _SCAN_LIMIT, rows.monotone, self.best, self.fitting
            )
            return
        if count == 1 and _PATCH_LIMIT:
            self._patch((log[since],))
            return
        if count <= _SCAN_LIMIT:
            changed = set(log[since:])
            if len(changed) > _PATCH_LIMIT and rows.monotone:  # `_patch` skips them itself
                keys = self.keys
                changed = {i for i in changed if keys[i] != NO_NODE}
            if len(changed) <= _PATCH_LIMIT:
                self._patch(changed)
                return
            idx = np.fromiter(changed, np.int64, len(changed))
        else:
            idx = np.flatnonzero(rows.stamps_view > since)
            if rows.monotone:
                idx = idx[self.keys_view[idx] != NO_NODE]
            if len(idx) <= _PATCH_LIMIT:
                self._patch(idx.tolist())
                return
        self._apply(idx)

    def _apply(self, idx: IntArray) -> None:
        """Recompute the keys of `idx` in one vectorized pass."""
        keys = self.keys_view
        old = keys[idx]
        new = self._compute(idx)
        keys[idx] = new
        self.fitting += int(np.count_nonzero(new != NO_NODE)) - int(
            np.count_nonzero(old != NO_NODE)
        )
        low = int(new.min())
        if low > self.best and bool((old == self.best).any()):
            self.best = int(keys.min())
        else:
            self.best = min(self.best, low)

    def _patch(self, changed: Iterable[int]) -> None:
        keys = self.keys
        best = self.best
        fitting = self.fitting
        skip_unfit = self._rows.monotone
        stale = False
        for i in changed:
            old = keys[i]
            if skip_unfit and old == NO_NODE:
                continue
            new = self._key(i)
            if new == old:
                continue
            keys[i] = new
            if old == NO_NODE:
                fitting += 1
            elif new == NO_NODE:
                fitting -= 1
            if new < best:
                best = new  # also when the best node itself improved
            elif old == best:
                stale = True  # the best node got worse: some other node may now lead
        self.fitting = fitting
        self.best = int(self.keys_view.min()) if stale else best

    def next_best(self, tried: Sequence[int]) -> int:
        """The minimum key once the nodes in `tried` are left out (accept failed on them)."""
        keys = self.keys_view.copy()
        keys[list(tried)] = NO_NODE
        return int(keys.min())
