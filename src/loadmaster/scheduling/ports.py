"""The two ports of the core: the cluster client and the scheduling store.

The core calls out through these and nothing else; adapters live in `cluster/` and `store/`.
Both are deliberately small so that every adapter can pass one contract suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from loadmaster.model.offers import ResourceOffer
from loadmaster.model.queue import QueueEntry, QueueMode
from loadmaster.model.tasks import Task
from loadmaster.resources import Resources


class SchedulingClient(Protocol):
    """The cluster, as one cycle sees it."""

    def framework_id(self) -> str | None:
        """The current registration id; None while not connected (the cycle then does nothing)."""
        ...

    def combine_offers(self, offers: Sequence[ResourceOffer], tasks: Sequence[Task]) -> None:
        """Accept these offers of one agent and launch the tasks on them (may be none)."""
        ...

    def decline_offers(self, offers: Sequence[ResourceOffer]) -> None: ...


@runtime_checkable
class PreparesLaunches(Protocol):
    """A client that wants to see all of a cycle's launches before the first one: the cycle
    calls `prepare_launches` once with every node's (offers, tasks), then `combine_offers` per
    node as always (a service journals them all in one transaction instead of one per node)."""

    def prepare_launches(
        self, launches: Sequence[tuple[Sequence[ResourceOffer], Sequence[Task]]]
    ) -> None: ...


@dataclass(slots=True, frozen=True)
class QueueQuery:
    """The top `limit` entries in queue order, with job-type filters."""

    mode: QueueMode
    limit: int
    exclude_job_type_ids: frozenset[int] = frozenset()
    only_job_type_ids: frozenset[int] | None = None


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class Placement:
    """A queue entry the cycle placed; the store turns it into a job execution."""

    entry: QueueEntry
    node_id: int
    agent_id: str
    resources: Resources


class StoreUnavailable(Exception):
    """The store could not complete the operation; nothing was changed."""


class SchedulingStore(Protocol):
    def fetch_queue(self, query: QueueQuery) -> Sequence[QueueEntry]: ...

    def count_queue(self) -> int:
        """All live entries (canceled ones included): lets a plan count what it did not look at."""
        ...

    def commit_cycle(
        self, placements: Sequence[Placement], canceled: Sequence[QueueEntry], when: datetime
    ) -> Mapping[int, int]:
        """Atomically turn placements into running executions and canceled entries into
        canceled executions, removing all of them from the queue. Returns queue id →
        execution id for the placements. Raises StoreUnavailable having changed nothing."""
        ...

    def record_unmet_resources(self, changes: Mapping[int, str | None]) -> None:
        """Persist job types' unmet-resource text; called once a cycle, only with changes."""
        ...
