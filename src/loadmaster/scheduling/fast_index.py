"""The fit score of spec §8.7 as table look-ups: `count_satisfiable(X − R, JTR)` without a loop
over job types.

For one resource name k, "X − R meets job type j on k" is the reference's test
`not (a_k < t_jk)` with `a_k = X_k − R_k`, which holds exactly for the job types whose
threshold `t_jk` is ≤ `a_k`: a prefix of the job types sorted by `t_jk`. So per name we keep the
sorted thresholds and, for each prefix length, the bit set of those job types; the job types `a`
meets are the AND over names of `prefix[k][bisect_right(thresholds[k], a_k)]`, and the score is
its population count. Nothing is rounded or re-associated, so the count is the reference's for
every float, with these encodings (each one is the reference's rule, not an approximation):

* a job type that does not name k is not tested on k: threshold −∞ (every `a` passes);
* a NaN threshold fails no comparison (`a < NaN` is false): threshold −∞ as well;
* a name missing from X is "met only by a request ≤ 0", i.e. `not (0.0 < t)`: `a_k = 0.0`;
* a NaN `a_k` fails no comparison either: `bisect_right` (and `searchsorted`) put it past the
  end, so every job type passes on k;
* R lacking k subtracts nothing: `a_k = X_k − 0.0`, which equals `X_k` for every float.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from loadmaster.resources import Resources

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
_WORD = 64


# One name of a request, ready for the single-node count: (position in `names`, requested
# amount, sorted thresholds, prefix bit sets).
Term = tuple[int, float, list[float], list[int]]


class JobTypeIndex:
    """Per resource name, the job-type thresholds in order and the prefix bit sets."""

    __slots__ = (
        "_matrices",
        "_np_prefix",
        "_np_thresholds",
        "_prefix",
        "_thresholds",
        "all_types",
        "count",
        "names",
    )

    def __init__(self, job_type_resources: Sequence[Resources]) -> None:
        names: dict[str, None] = {}
        for res in job_type_resources:
            names.update(dict.fromkeys(res.names()))
        self.names: tuple[str, ...] = tuple(names)
        self.count = len(job_type_resources)
        self.all_types = (1 << self.count) - 1  # the bit set of every job type
        words = max(1, -(-self.count // _WORD))
        self._thresholds: list[list[float]] = []
        self._prefix: list[list[int]] = []
        self._np_thresholds: list[FloatArray] = []
        self._np_prefix: list[npt.NDArray[np.uint64]] = []
        for name in self.names:
            column = [_threshold(res, name) for res in job_type_resources]
            order = sorted(range(self.count), key=column.__getitem__)
            prefix = [0]
            table = np.zeros((self.count + 1, words), dtype=np.uint64)
            for rank, j in enumerate(order, start=1):
                prefix.append(prefix[-1] | (1 << j))
                table[rank] = table[rank - 1]
                table[rank, j // _WORD] |= np.uint64(1 << (j % _WORD))
            thresholds = [column[j] for j in order]
            self._thresholds.append(thresholds)
            self._prefix.append(prefix)
            self._np_thresholds.append(np.array(thresholds, dtype=np.float64))
            self._np_prefix.append(table)
        self._matrices: tuple[FloatArray, npt.NDArray[np.uint64]] | None = None

    def matrices(self) -> tuple[FloatArray, npt.NDArray[np.uint64]]:
        """The sorted thresholds (names × job types) and prefix bit sets (names × (job types
        + 1) × words) as two contiguous arrays, for the compiled re-reader."""
        if self._matrices is None:
            words = max(1, -(-self.count // _WORD))
            width = len(self.names)
            thresholds = np.array(self._np_thresholds, dtype=np.float64).reshape(width, self.count)
            prefix = np.array(self._np_prefix, dtype=np.uint64).reshape(
                width, self.count + 1, words
            )
            self._matrices = (np.ascontiguousarray(thresholds), np.ascontiguousarray(prefix))
        return self._matrices

    def row(self, x: Resources) -> tuple[float | None, ...]:
        """X aligned with `names`; None where X lacks the name."""
        return x.aligned(self.names)

    def shape_row(self, r: Resources) -> tuple[float, ...]:
        """R aligned with `names`; 0.0 where R lacks the name (subtracting it changes nothing)."""
        return tuple(r.get(name) for name in self.names)

    def split(self, r_row: tuple[float, ...]) -> tuple[tuple[int, ...], tuple[Term, ...]]:
        """The names R asks nothing of (`a = X − 0.0` is X itself, so their part of the count
        does not depend on R and can be shared between shapes: `passive_mask`) and the terms of
        the others."""
        passive = tuple(k for k, r in enumerate(r_row) if r == 0.0)
        active = tuple(
            (k, r, self._thresholds[k], self._prefix[k])
            for k, r in enumerate(r_row)
            if r != 0.0  # NaN is active: X − NaN is NaN
        )
        return passive, active

    def passive_mask(self, x_row: tuple[float | None, ...], passive: tuple[int, ...]) -> int:
        """The job types X meets on the names in `passive` (requested amount 0)."""
        mask = self.all_types
        for k in passive:
            x = x_row[k]
            mask &= self._prefix[k][bisect_right(self._thresholds[k], 0.0 if x is None else x)]
        return mask

    def score(self, x_row: tuple[float | None, ...], r_row: tuple[float, ...]) -> int:
        """`count_satisfiable(X.subtract(R), JTR)` for one X."""
        mask = self.all_types
        for x, r, thresholds, prefix in zip(
            x_row, r_row, self._thresholds, self._prefix, strict=True
        ):
            a = 0.0 if x is None else x - r
            mask &= prefix[bisect_right(thresholds, a)]
            if not mask:
                return 0
        return mask.bit_count()

    def scores(self, a: FloatArray) -> IntArray:
        """The same count for many X at once, from `a = X − R` (rows: nodes, columns: `names`;
        0.0 already written where X lacks the name)."""
        if not self.names:
            return np.zeros(a.shape[0], dtype=np.int64)
        columns = np.ascontiguousarray(a.T)
        mask: npt.NDArray[np.uint64] | None = None
        for column, thresholds, table in zip(
            columns, self._np_thresholds, self._np_prefix, strict=True
        ):
            picked = table[thresholds.searchsorted(column, side="right")]
            mask = picked if mask is None else mask & picked
        assert mask is not None
        counts: IntArray = np.bitwise_count(mask).sum(axis=1, dtype=np.int64)
        return counts


def _threshold(res: Resources, name: str) -> float:
    if name not in res:
        return -math.inf
    value = res.get(name)
    return -math.inf if math.isnan(value) else value
