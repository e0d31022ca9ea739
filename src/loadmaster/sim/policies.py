"""Placement policies by name, as `--policy` and `--compare` take them.

A policy is a recipe for a `PlacementEngine` over a base engine (the reference search, or any
engine that makes the same decisions faster): backfilling needs the replay's estimates, so a
policy is built per replay rather than shared between replays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from loadmaster.scheduling.backfill import BackfillPlacement, EstimateSource
from loadmaster.scheduling.placement import PlacementEngine


@dataclass(slots=True, frozen=True)
class Policy:
    name: str
    summary: str
    build: Callable[[EstimateSource, PlacementEngine], PlacementEngine]


POLICIES: Mapping[str, Policy] = MappingProxyType(
    {
        policy.name: policy
        for policy in (
            Policy(
                "reference",
                "the reference placement exactly (best fit score; reservations drain nodes)",
                lambda estimates, base: base,
            ),
            Policy(
                "backfill",
                "the reference plus EASY-style backfilling into reserved nodes",
                lambda estimates, base: BackfillPlacement(estimates, base),
            ),
        )
    }
)


def get_policy(name: str) -> Policy:
    found = POLICIES.get(name.strip().lower())
    if found is None:
        raise KeyError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    return found


def parse_policies(text: str) -> list[Policy]:
    """A comma-separated list, in the given order, without repeats."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise KeyError("no policy named")
    out: list[Policy] = []
    for name in names:
        policy = get_policy(name)
        if policy not in out:
            out.append(policy)
    return out
