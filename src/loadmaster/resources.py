"""The Resources value type: a bag of named scalar amounts.

Every amount the scheduler compares (offers, task needs, watermarks, remaining capacity) is a
`Resources`. The arithmetic follows the reference exactly (scheduling spec §1.2) because the
scores depend on it: subtracting a name the left side lacks is a no-op, a request for a name
the bag lacks is met only when the request is zero or less, and comparisons are `>=` with no
epsilon. Values are immutable: every operation returns a new bag, so a `Resources` handed to
another object can never change under it.

Units: `cpus` and `gpus` are counts, `mem` and `disk` are MiB; custom names are whatever the
cluster declares.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

CPUS = "cpus"
MEM = "mem"
DISK = "disk"
GPUS = "gpus"
STANDARD_NAMES: tuple[str, ...] = (CPUS, MEM, DISK, GPUS)
# Names that `remove_resource` zeroes instead of deleting (gpus is deleted, as in the reference).
_NEVER_REMOVED = frozenset((CPUS, MEM, DISK))


Values = dict[str, float]


# -- the arithmetic on the bags' dicts --------------------------------------------------------
# Each operation once in Python; `_bags.c` holds the same operations compiled (same float
# operations in the same order, same names in the same order), used where the package was
# built with a C compiler: a cycle makes tens of thousands of them.
def _add(values: Values, other: Values) -> Values:
    out = dict(values)
    for name, value in other.items():
        out[name] = out.get(name, 0.0) + value
    return out


def _subtract(values: Values, other: Values) -> Values:
    out = dict(values)
    for name, value in other.items():
        if name in out:
            out[name] -= value
    return out


def _subtract_all(values: Values, others: Sequence[Values]) -> Values:
    out = dict(values)
    for other in others:
        for name, value in other.items():
            if name in out:
                out[name] -= value
    return out


def _total(start: Values, bags: Sequence[Values]) -> Values:
    out = dict(start)
    for bag in bags:
        for name, value in bag.items():
            out[name] = out.get(name, 0.0) + value
    return out


def _is_sufficient(values: Values, request: Values) -> bool:
    for name, wanted in request.items():
        have = values.get(name)
        if have is None:
            if wanted > 0.0:
                return False
        elif have < wanted:
            return False
    return True


def _increase_up_to(values: Values, other: Values) -> Values:
    out = dict(values)
    for name, value in other.items():
        if name not in out or out[name] < value:
            out[name] = value
    return out


def _round_values(values: Values) -> Values:
    # a whole number is its own rounding (-0.0 included) and most amounts are whole: they
    # skip `round`, which costs a decimal conversion
    return {
        name: value if value % 1.0 == 0.0 else round(value, 2) for name, value in values.items()
    }


class Arithmetic:
    """One implementation of the bag operations: `python()` or `compiled()`."""

    __slots__ = (
        "add",
        "increase_up_to",
        "is_sufficient",
        "round_values",
        "subtract",
        "subtract_all",
        "total",
    )

    def __init__(self, source: Any) -> None:  # anything with the seven operations
        self.add: Callable[[Values, Values], Values] = source.add
        self.subtract: Callable[[Values, Values], Values] = source.subtract
        self.subtract_all: Callable[[Values, Sequence[Values]], Values] = source.subtract_all
        self.total: Callable[[Values, Sequence[Values]], Values] = source.total
        self.is_sufficient: Callable[[Values, Values], bool] = source.is_sufficient
        self.increase_up_to: Callable[[Values, Values], Values] = source.increase_up_to
        self.round_values: Callable[[Values], Values] = source.round_values

    @staticmethod
    def python() -> Arithmetic:
        return Arithmetic(
            SimpleNamespace(
                add=_add,
                subtract=_subtract,
                subtract_all=_subtract_all,
                total=_total,
                is_sufficient=_is_sufficient,
                increase_up_to=_increase_up_to,
                round_values=_round_values,
            )
        )

    @staticmethod
    def compiled() -> Arithmetic | None:
        """The compiled operations, or None where the package was built without them."""
        try:
            return Arithmetic(importlib.import_module("loadmaster._bags"))
        except ImportError:
            return None


# chosen once at import and never rebound
_OPS: Arithmetic = Arithmetic.compiled() or Arithmetic.python()
_op_add = _OPS.add
_op_subtract = _OPS.subtract
_op_subtract_all = _OPS.subtract_all
_op_total = _OPS.total
_op_is_sufficient = _OPS.is_sufficient
_op_increase_up_to = _OPS.increase_up_to
_op_round_values = _OPS.round_values


class Resources:
    """An immutable bag of named scalar resources; the four standard names are always present."""

    __slots__ = ("_values",)

    _values: dict[str, float]

    def __init__(self, values: Mapping[str, float] | Iterable[tuple[str, float]] = ()) -> None:
        merged: dict[str, float] = {name: 0.0 for name in STANDARD_NAMES}
        items = values.items() if isinstance(values, Mapping) else values
        for name, value in items:  # later duplicates replace earlier ones
            merged[name] = float(value)
        self._values = merged

    @classmethod
    def _wrap(cls, values: dict[str, float]) -> Resources:
        """Build from a dict already holding the standard names, without copying it."""
        res = cls.__new__(cls)
        res._values = values
        return res

    @classmethod
    def of(cls, **values: float) -> Resources:
        return cls(values)

    # -- access -------------------------------------------------------------------------------
    @property
    def cpus(self) -> float:
        return self._values[CPUS]

    @property
    def mem(self) -> float:
        return self._values[MEM]

    @property
    def disk(self) -> float:
        return self._values[DISK]

    @property
    def gpus(self) -> float:
        return self._values.get(GPUS, 0.0)

    def get(self, name: str, default: float = 0.0) -> float:
        return self._values.get(name, default)

    def names(self) -> Iterator[str]:
        return iter(self._values)

    def items(self) -> Iterator[tuple[str, float]]:
        return iter(self._values.items())

    def as_dict(self) -> dict[str, float]:
        return dict(self._values)

    def mapping(self) -> Mapping[str, float]:
        """The amounts themselves, not a copy, for readers that must not pay for one (the fast
        engine's compiled rows read two bags per placement); never to be changed."""
        return self._values

    def aligned(self, names: Sequence[str]) -> tuple[float | None, ...]:
        """The amounts of `names` in that order, None where the bag lacks a name: one row of a
        column-wise table (the fast engine's score tables read many bags this way)."""
        get = self._values.get
        return tuple([get(name) for name in names])

    def aligned_or(self, names: Sequence[str], missing: float) -> tuple[float, ...]:
        """Like `aligned`, with `missing` where the bag lacks a name."""
        get = self._values.get
        return tuple([get(name, missing) for name in names])

    def __contains__(self, name: object) -> bool:
        return name in self._values

    # -- arithmetic ---------------------------------------------------------------------------
    def add(self, other: Resources) -> Resources:
        """Sum per name; names only in `other` are inserted."""
        return Resources._wrap(_op_add(self._values, other._values))

    def subtract(self, other: Resources) -> Resources:
        """Subtract per name, ignoring names absent from self; values may go negative."""
        return Resources._wrap(_op_subtract(self._values, other._values))

    def subtract_all(self, others: Iterable[Resources]) -> Resources:
        """`self.subtract(a).subtract(b)…` for each bag in order: the same subtractions in the
        same order (so the same floats), without a bag per step."""
        return Resources._wrap(_op_subtract_all(self._values, [o._values for o in others]))

    def __add__(self, other: Resources) -> Resources:
        return self.add(other)

    def __sub__(self, other: Resources) -> Resources:
        return self.subtract(other)

    def is_sufficient_to_meet(self, request: Resources) -> bool:
        """True iff every requested amount is available; a lacking name only meets a request <= 0."""
        return _op_is_sufficient(self._values, request._values)

    def increase_up_to(self, other: Resources) -> Resources:
        """Per name, the larger of the two; names only in `other` are copied in."""
        return Resources._wrap(_op_increase_up_to(self._values, other._values))

    def limit_to(self, other: Resources) -> Resources:
        """Lower each value to `other`'s; names of self missing from `other` are removed."""
        out = dict(self._values)
        for name in list(out):
            if name in other._values:
                if out[name] > other._values[name]:
                    out[name] = other._values[name]
            elif name in _NEVER_REMOVED:
                out[name] = 0.0
            else:
                del out[name]
        return Resources._wrap(out)

    def remove_resource(self, name: str) -> Resources:
        """cpus, mem and disk are zeroed, never deleted; any other name (gpus too) is deleted."""
        out = dict(self._values)
        if name in _NEVER_REMOVED:
            out[name] = 0.0
        else:
            out.pop(name, None)
        return Resources._wrap(out)

    def with_value(self, name: str, value: float) -> Resources:
        out = dict(self._values)
        out[name] = float(value)
        return Resources._wrap(out)

    def round_values(self) -> Resources:
        """Round to 2 decimals, the reference's guard against float drift (runs several times
        per agent and cycle)."""
        return Resources._wrap(_op_round_values(self._values))

    def is_equal(self, other: Resources) -> bool:
        """Same names and values equal after rounding to 5 decimals."""
        if self._values.keys() != other._values.keys():
            return False
        return all(
            round(value, 5) == round(other._values[name], 5) for name, value in self._values.items()
        )

    def is_zero(self) -> bool:
        return all(value == 0.0 for value in self._values.values())

    # -- dunder -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Resources) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values.items())))

    def __repr__(self) -> str:
        return f"Resources({self._values!r})"

    def __str__(self) -> str:
        return "[" + ", ".join(f"{value:.2f} {name}" for name, value in self._values.items()) + "]"

    def to_json(self) -> dict[str, object]:
        return {"version": "1.0", "resources": dict(self._values)}

    def key(self) -> tuple[tuple[str, float], ...]:
        """A hashable shape key: identical requests share it (used to group queue entries)."""
        return tuple(sorted(self._values.items()))

    def ordered_key(self) -> tuple[tuple[str, float], ...]:
        """A cheaper hashable key for per-cycle caches: equal keys mean the same names in the same
        order with amounts equal under `==` (so 0.0 and -0.0 match, as they do in every
        comparison); equal bags built in a different name order get different keys (a cache
        miss only)."""
        return tuple(self._values.items())


EMPTY = Resources()


_ZEROS: Values = {name: 0.0 for name in STANDARD_NAMES}  # copied, never changed


def total(resources: Iterable[Resources]) -> Resources:
    """Sum of many bags (empty bag for none)."""
    return Resources._wrap(_op_total(_ZEROS, [res._values for res in resources]))


def count_satisfiable(available: Resources, requirements: Iterable[Resources]) -> int:
    """How many of the requirements `available` can meet: the reference's fit score."""
    return sum(1 for req in requirements if available.is_sufficient_to_meet(req))


def from_json(data: Mapping[str, object]) -> Resources:
    """Parse the reference's JSON form `{"version": "1.0", "resources": {name: number}}`."""
    extra = set(data) - {"version", "resources"}
    if extra:
        raise ValueError(f"resources: unexpected keys {sorted(extra)}")
    version = data.get("version", "1.0")
    if version != "1.0":
        raise ValueError(f"resources.version: unsupported version {version!r}")
    raw = data.get("resources", {})
    if not isinstance(raw, Mapping):
        raise ValueError("resources.resources: must be an object of name to number")
    values: dict[str, float] = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"resources.resources.{name}: must be a number")
        values[str(name)] = float(value)
    return Resources(values)
