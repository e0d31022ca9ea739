"""Fragmentation: free room on nodes where no waiting entry fits.

Checking every waiting entry against every node each cycle would cost queue × nodes; only
the *minimal* request shapes matter (if none of them fits a node, no larger one does), and
those change only when a shape appears or disappears, so the check is one vectorised
comparison of nodes × minimal shapes per cycle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from loadmaster.resources import Resources

FloatArray = npt.NDArray[np.float64]
Shape = tuple[tuple[str, float], ...]


class WaitingShapes:
    """The request shapes of the entries still waiting, to find free room no one can use."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)
        self._shape_of: dict[int, Shape] = {}
        self._counts: Counter[Shape] = Counter()
        self._vectors: dict[Shape, FloatArray] = {}
        self._minimal: FloatArray | None = None

    def add(self, queue_id: int, resources: Resources) -> None:
        key = resources.key()
        self._shape_of[queue_id] = key
        self._counts[key] += 1
        if self._counts[key] == 1:
            self._vectors[key] = np.array([resources.get(n) for n in self._names])
            self._minimal = None

    def remove(self, queue_id: int) -> None:
        key = self._shape_of.pop(queue_id, None)
        if key is None:
            return
        self._counts[key] -= 1
        if self._counts[key] == 0:
            del self._counts[key]
            del self._vectors[key]
            self._minimal = None

    def __len__(self) -> int:
        return len(self._shape_of)

    def _minimal_shapes(self) -> FloatArray:
        """Shapes no other waiting shape is smaller than: if none of these fits, none does."""
        if self._minimal is None:
            shapes = np.array(list(self._vectors.values()))
            le = (shapes[:, None, :] <= shapes[None, :, :]).all(axis=2)
            lt = (shapes[:, None, :] < shapes[None, :, :]).any(axis=2)
            dominated = (le & lt).any(axis=0)
            self._minimal = shapes[~dominated]
        return self._minimal

    def fragmented(self, free: FloatArray) -> tuple[FloatArray, bool]:
        """Per resource, the free amounts on nodes where no waiting entry fits."""
        if not self._shape_of:
            return np.zeros(len(self._names)), False
        shapes = self._minimal_shapes()
        fits = np.greater_equal(free[:, None, :], shapes[None, :, :] - 1e-9)
        usable = np.any(np.all(fits, axis=2), axis=1)
        amounts: FloatArray = free[~usable].sum(axis=0)
        return amounts, True
