"""Per-node score inputs and per-shape rankings that are kept current by change logs.

A placement changes at most one node (the one that accepted the entry, or the one reserved and
taken out of the session), so a ranking of all nodes for one resource shape stays valid except
at the nodes changed since it was last read. `NodeRows` holds what one kind of score reads for
every node (what must meet the request, and what the request is subtracted from) and logs which
rows changed; a `Ranking` holds, for one shape, every node's composite key
`score × size + order` (or `NO_NODE`) and its minimum, and on each read recomputes only the
logged rows. Keys are unique per node, so "lowest score, then earliest node" is the minimum key.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from loadmaster.resources import Resources
from loadmaster.scheduling.fast_index import BoolArray, FloatArray, IntArray, JobTypeIndex

NO_NODE = int(np.iinfo(np.int64).max)
# Up to this many changed rows a ranking is patched one row at a time; beyond, vectorized.
_PATCH_LIMIT = 12

RowSource = Callable[[int], tuple[Resources, Resources]]


class NodeRows:
    """For every session node: the bag that must meet a request (`fit`) and the bag the request
    is subtracted from before counting job types (`basis`), plus NumPy matrices of both (built
    on first use, fit columns added per name as shapes need them). A missing name is stored as
    0.0 in the fit matrix: `not (0.0 < r)` is exactly the reference's "a lacking name only
    meets a request ≤ 0"; the basis matrix keeps a presence mask instead."""

    __slots__ = (
        "_basis_matrix",
        "_basis_present",
        "_fit_matrix",
        "_fit_names",
        "_source",
        "basis",
        "basis_rows",
        "fit",
        "index",
        "log",
        "monotone",
        "pos",
        "size",
        "stamps",
    )

    def __init__(self, index: JobTypeIndex, size: int, source: RowSource) -> None:
        self.index = index
        self.size = size
        self._source = source
        self.fit: list[Resources] = []
        self.basis: list[Resources] = []
        for i in range(size):
            fit, basis = source(i)
            self.fit.append(fit)
            self.basis.append(basis)
        self.basis_rows = [index.row(b) for b in self.basis]
        self._fit_names: dict[str, int] = {}
        self._fit_matrix: FloatArray = np.zeros((size, 0), dtype=np.float64)
        self._basis_matrix: FloatArray | None = None
        self._basis_present: BoolArray | None = None
        self.log: list[int] = []
        # per node, len(log) just after its latest change: "changed since p" is stamps > p
        self.stamps: IntArray = np.zeros(size, dtype=np.int64)
        self.pos = 0  # how far the session's change log has been applied
        # True while every change only took resources away: a node that does not fit a shape
        # then never fits it again this session, so rankings may skip it
        self.monotone = True

    def refresh(self, changes: list[int], alive: BoolArray) -> None:
        """Apply the session's changes since the last refresh (re-reading live nodes)."""
        if self.pos == len(changes):
            return
        log = self.log
        stamps = self.stamps
        for i in set(changes[self.pos :]):
            if alive[i]:
                self._set(i, *self._source(i))
            log.append(i)
            stamps[i] = len(log)
        self.pos = len(changes)

    def _set(self, i: int, fit: Resources, basis: Resources) -> None:
        self.fit[i] = fit
        self.basis[i] = basis
        row = self.index.row(basis)
        self.basis_rows[i] = row
        if self._fit_names:
            self._fit_matrix[i] = [fit.get(name) for name in self._fit_names]
        if self._basis_matrix is not None:
            self._basis_matrix[i] = [0.0 if x is None else x for x in row]
            missing = [x is not None for x in row]
            if self._basis_present is not None:
                self._basis_present[i] = missing
            elif not all(missing):
                present = np.ones(self._basis_matrix.shape, dtype=np.bool_)
                present[i] = missing
                self._basis_present = present

    def fit_column(self, name: str) -> int:
        """The fit matrix column of `name`, added on first use."""
        col = self._fit_names.get(name)
        if col is None:
            column = np.fromiter((f.get(name) for f in self.fit), np.float64, self.size)
            self._fit_matrix = np.column_stack((self._fit_matrix, column))
            col = self._fit_names[name] = len(self._fit_names)
        return col

    @property
    def fit_matrix(self) -> FloatArray:
        return self._fit_matrix

    def basis_matrix(self) -> tuple[FloatArray, BoolArray | None]:
        if self._basis_matrix is None:
            width = len(self.index.names)
            values = np.zeros((self.size, width), dtype=np.float64)
            present = np.ones((self.size, width), dtype=np.bool_)
            for i, row in enumerate(self.basis_rows):
                values[i] = [0.0 if x is None else x for x in row]
                present[i] = [x is not None for x in row]
            self._basis_matrix = values
            self._basis_present = None if present.all() else present
        return self._basis_matrix, self._basis_present


class Ranking:
    """Every node's key for one request shape over one `NodeRows`, and the minimum key."""

    __slots__ = (
        "_fit_cols",
        "_fit_wanted",
        "_r",
        "_r_row",
        "_r_vector",
        "_rows",
        "best",
        "fitting",
        "keys",
        "pos",
    )

    def __init__(self, rows: NodeRows, r: Resources, alive: BoolArray) -> None:
        self._rows = rows
        self._r = r
        self._r_row = rows.index.shape_row(r)
        self._r_vector: FloatArray = np.array(self._r_row, dtype=np.float64)
        items = list(r.items())
        self._fit_cols = np.array([rows.fit_column(n) for n, _ in items], dtype=np.int64)
        self._fit_wanted: FloatArray = np.array([v for _, v in items], dtype=np.float64)
        self.keys: IntArray = self._compute(None, alive)
        self.best = int(self.keys.min()) if rows.size else NO_NODE
        self.fitting = int(np.count_nonzero(self.keys != NO_NODE))
        self.pos = len(rows.log)

    def _compute(self, idx: IntArray | None, alive: BoolArray) -> IntArray:
        """Keys of the nodes `idx` (all when None), vectorized."""
        rows = self._rows
        basis, present = rows.basis_matrix()
        fits = rows.fit_matrix
        if idx is None:
            order: IntArray = np.arange(rows.size, dtype=np.int64)
            live = alive
        else:
            order = idx
            basis = basis[idx]
            fits = fits[idx]
            live = alive[idx]
            if present is not None:
                present = present[idx]
        fit = ~(fits[:, self._fit_cols] < self._fit_wanted).any(axis=1) & live
        a = basis - self._r_vector
        if present is not None:
            a = np.where(present, a, 0.0)
        scores = rows.index.scores(a)
        return np.where(fit, scores * rows.size + order, NO_NODE)

    def _key(self, i: int, alive: BoolArray) -> int:
        rows = self._rows
        if not alive[i] or not rows.fit[i].is_sufficient_to_meet(self._r):
            return NO_NODE
        return rows.index.score(rows.basis_rows[i], self._r_row) * rows.size + i

    def sync(self, alive: BoolArray) -> None:
        """Bring the keys of rows changed since the last read up to date."""
        rows = self._rows
        since = self.pos
        count = len(rows.log) - since
        if count == 0:
            return
        self.pos = len(rows.log)
        if count <= _PATCH_LIMIT:
            changed: list[int] = list(set(rows.log[since:]))
            if rows.monotone:
                keys = self.keys
                changed = [i for i in changed if keys[i] != NO_NODE]
            self._patch(changed, alive)
            return
        idx = np.flatnonzero(rows.stamps > since)
        if rows.monotone:
            idx = idx[self.keys[idx] != NO_NODE]
        if len(idx) <= _PATCH_LIMIT:
            self._patch(idx.tolist(), alive)
            return
        old = self.keys[idx]
        new = self._compute(idx, alive)
        self.keys[idx] = new
        self.fitting += int(np.count_nonzero(new != NO_NODE)) - int(
            np.count_nonzero(old != NO_NODE)
        )
        low = int(new.min())
        if low > self.best and bool((old == self.best).any()):
            self.best = int(self.keys.min())
        else:
            self.best = min(self.best, low)

    def _patch(self, changed: list[int], alive: BoolArray) -> None:
        keys = self.keys
        best = self.best
        stale = False
        for i in changed:
            old = int(keys[i])
            new = self._key(i, alive)
            if new == old:
                continue
            keys[i] = new
            self.fitting += (new != NO_NODE) - (old != NO_NODE)
            if new < best:
                best = new  # also when the best node itself improved
            elif old == best:
                stale = True  # the best node got worse: some other node may now lead
        self.best = int(keys.min()) if stale else best

    def next_best(self, tried: list[int]) -> int:
        """The minimum key once the nodes in `tried` are left out (accept failed on them)."""
        keys = self.keys.copy()
        keys[tried] = NO_NODE
        return int(keys.min())
