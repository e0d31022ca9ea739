# The compiled re-reader's surface (_rereads.c); see fast_rows.py for how it is used.
from array import array
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from loadmaster.scheduling.fast_index import BoolArray, FloatArray, IntArray

MAX_TYPES: int

class Rows:
    def __init__(
        self,
        size: int,
        width: int,
        basis: FloatArray,
        present: npt.NDArray[np.uint8],
        fit: FloatArray,
        alive: BoolArray,
        names: tuple[str, ...],
    ) -> None: ...
    def write(
        self, i: int, basis_row: tuple[float | None, ...], fit_row: tuple[float | None, ...]
    ) -> None: ...
    def accept(
        self,
        i: int,
        without_row: tuple[float | None, ...],
        allocated: Mapping[str, float],
        remaining: Mapping[str, float],
    ) -> tuple[float | None, ...]: ...

class Reader:
    def __init__(
        self,
        rows: Rows,
        types: int,
        words: int,
        keys: array[int],
        thresholds: FloatArray,
        prefix: npt.NDArray[np.uint64],
        request: FloatArray,
        check_cols: IntArray,
        check_wanted: FloatArray,
    ) -> None: ...
    def patch_log(
        self,
        log: array[int],
        stamps: array[int],
        since: int,
        end: int,
        scan_limit: int,
        skip_unfit: bool,
        best: int,
        fitting: int,
    ) -> tuple[int, int]: ...
    def fill(self) -> tuple[int, int]: ...
    def key(self, i: int) -> int: ...
