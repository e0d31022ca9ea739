"""EASY-style backfilling on top of a placement engine (the reference one by default).

In the reference, an entry that fits nowhere reserves the node that would suit it best once
its less important work drains (spec §8.8): the node leaves the available set for the rest of
the cycle, and sits partly idle while it drains. Backfilling lets later entries use that idle
room when they cannot delay the reserved entry:

* when the base engine reserves node n for entry E, the session computes E's *shadow time*
  S — the earliest time at which, by the estimates, enough work on n has ended for E to fit —
  and the *surplus*: what n will still have free at S once E is in;
* an entry the base engine leaves with no fit and no reservation (`NO_FIT`) may then go onto a
  reserved node where it fits now and either ends by S (by its own estimate) or fits within
  the surplus (which it then uses up). Among such nodes the reference scheduling score picks
  (lowest, then node order).

Every decision the base engine makes is kept as it is: the base session runs first, and only
its `NO_FIT` answers can become a backfill. Within a cycle the base engine never looks at a
reserved node again, so backfilled work cannot change any other entry's decision.

The guarantee: with estimates that are upper bounds of the real run times, work backfilled
against E's reservation on n is gone by S or fits beside E, so E can start on n at S at the
latest. Estimates that are too short void it, as in every EASY scheduler. An execution whose
end is unknown (no estimate, or already past it) counts as never ending, so it can only make
S later, never earlier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from loadmaster.resources import Resources
from loadmaster.scheduling.placement import (
    Decision,
    Outcome,
    PlacementEngine,
    PlacementSession,
    ReferencePlacement,
)
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.scheduling_node import SchedulingNode


@dataclass(slots=True, frozen=True)
class Release:
    """Resources an execution running on a node gives back, and in how many seconds from the
    cycle it is expected to end (`math.inf`: unknown)."""

    in_seconds: float
    resources: Resources


class EstimateSource(Protocol):
    """What backfilling needs to know about time, as seen at the current cycle.

    The simulator answers from requested times and observed run times; a live service can
    answer from its own history. Both must answer for the cycle being scheduled."""

    def releases(self, node_id: int) -> Sequence[Release]:
        """The executions running on the node now, with their expected ends."""
        ...

    def duration_seconds(self, job_exe: QueuedJobExecution) -> float | None:
        """How long the entry is expected to run; None when there is no estimate."""
        ...


@dataclass(slots=True)
class ReservationWindow:
    """One reservation of the cycle and what was backfilled against it."""

    node_id: int
    queue_id: int
    shadow_seconds: float | None  # None: the entry's start cannot be estimated
    surplus: Resources | None
    backfilled: list[int] = field(default_factory=list)


def shadow_time(
    free: Resources, needed: Resources, releases: Iterable[Release]
) -> tuple[float, Resources] | None:
    """(seconds until `needed` fits, what is left at that moment) or None if never."""
    available = free
    if available.is_sufficient_to_meet(needed):
        return 0.0, available.subtract(needed)
    for release in sorted(releases, key=lambda r: r.in_seconds):
        if math.isinf(release.in_seconds):
            return None
        available = available.add(release.resources)
        if available.is_sufficient_to_meet(needed):
            return release.in_seconds, available.subtract(needed)
    return None


class BackfillSession:
    """One cycle's placement: the base session's decisions, plus backfills into the nodes it
    reserved. `windows` and `backfilled` say what happened, for reports and tests."""

    def __init__(
        self,
        base: PlacementSession,
        nodes: Sequence[SchedulingNode],
        job_type_resources: Sequence[Resources],
        estimates: EstimateSource,
    ) -> None:
        self._base = base
        self._jtr = list(job_type_resources)
        self._estimates = estimates
        self._order = {node.node_id: index for index, node in enumerate(nodes)}
        self._reserved: dict[int, tuple[SchedulingNode, ReservationWindow]] = {}
        self.windows: list[ReservationWindow] = []
        self.backfilled: list[int] = []

    def reserved_count(self) -> int:
        return self._base.reserved_count()

    def place(self, job_exe: QueuedJobExecution) -> Decision:
        decision = self._base.place(job_exe)
        if decision.outcome is Outcome.RESERVED and decision.node is not None:
            self._open_window(decision.node, job_exe)
        elif decision.outcome is Outcome.NO_FIT and self._reserved:
            return self._backfill(job_exe) or decision
        return decision

    def _open_window(self, node: SchedulingNode, job_exe: QueuedJobExecution) -> None:
        """Plan the reserved entry's start from what runs there and what this cycle put there
        before the reservation (both end by their estimates)."""
        releases = list(self._estimates.releases(node.node_id))
        for queued in node.allocated_queued_job_exes:
            duration = self._estimates.duration_seconds(queued)
            releases.append(
                Release(math.inf if duration is None else duration, queued.required_resources)
            )
        planned = shadow_time(node.remaining_resources, job_exe.required_resources, releases)
        window = ReservationWindow(
            node.node_id,
            job_exe.id,
            planned[0] if planned else None,
            planned[1] if planned else None,
        )
        self.windows.append(window)
        if planned is not None and node.node_id not in self._reserved:
            self._reserved[node.node_id] = (node, window)

    def _backfill(self, job_exe: QueuedJobExecution) -> Decision | None:
        required = job_exe.required_resources
        duration = self._estimates.duration_seconds(job_exe)
        ranked: list[tuple[int, int, SchedulingNode, ReservationWindow, bool]] = []
        for node, window in self._reserved.values():
            assert window.shadow_seconds is not None and window.surplus is not None
            ends_in_time = duration is not None and duration <= window.shadow_seconds
            fits_beside = window.surplus.is_sufficient_to_meet(required)
            if not (ends_in_time or fits_beside):
                continue
            score = node.score_job_exe_for_scheduling(job_exe, self._jtr)
            if score is not None:
                ranked.append((score, self._order[node.node_id], node, window, ends_in_time))
        ranked.sort(key=lambda c: (c[0], c[1]))
        for score, _, node, window, ends_in_time in ranked:
            if node.accept_new_job_exe(job_exe):
                if not ends_in_time:
                    assert window.surplus is not None
                    window.surplus = window.surplus.subtract(required)
                window.backfilled.append(job_exe.id)
                self.backfilled.append(job_exe.id)
                return Decision(Outcome.SCHEDULED, node, score, len(ranked))
        return None


class BackfillPlacement:
    """A `PlacementEngine`; `base` makes every decision but the backfills."""

    name = "backfill"

    def __init__(self, estimates: EstimateSource, base: PlacementEngine | None = None) -> None:
        self.estimates = estimates
        self.base: PlacementEngine = base or ReferencePlacement()
        self.last_session: BackfillSession | None = None

    def start(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> PlacementSession:
        session = BackfillSession(
            self.base.start(nodes, job_type_resources), nodes, job_type_resources, self.estimates
        )
        self.last_session = session
        return session

    def take_last_session(self) -> BackfillSession | None:
        """The session of the cycle just run, once (None if that cycle placed nothing)."""
        session, self.last_session = self.last_session, None
        return session
