"""Placement engines by name, for configuration (`loadmaster plan --engine`, service settings).

Both engines make the same decisions (tests/scheduling/test_fast_equivalence.py holds them to
it); `fast` is the one to run at cluster scale, `reference` the straightforward one to compare
against. The fast engine is imported on demand so that NumPy is only needed when it is chosen.
"""

from __future__ import annotations

from loadmaster.scheduling.placement import PlacementEngine, ReferencePlacement

ENGINE_NAMES: tuple[str, ...] = ("reference", "fast")


def placement_engine(name: str) -> PlacementEngine:
    """A new engine for `name` (one of ENGINE_NAMES); ValueError names the choices otherwise."""
    if name == "reference":
        return ReferencePlacement()
    if name == "fast":
        from loadmaster.scheduling.fast import FastPlacement

        return FastPlacement()
    raise ValueError(f"unknown placement engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
