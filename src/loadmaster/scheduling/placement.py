"""Where a new job execution goes: the node choice of spec §8.8, in one place.

The manager does the checks (resources, job type, workspaces, limits); a placement session
only answers "which node, or which node to reserve". Keeping the choice here lets a faster
engine replace the search while the decision rule stays this one:

* the fitting node with the lowest scheduling score wins; equal scores go to the earlier node
  in node order (the node registry's order, snapshot order in a plan);
* if accepting on it fails (its GPUs cannot be reserved), the next best is tried — the
  reference gave up (§12.2 defect 4);
* only when no node fits, the node with the lowest reservation score is reserved: it leaves
  the available set for the rest of the cycle so that later (same or lower priority) entries
  cannot take what it is draining for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from loadmaster.model.tasks import Task
from loadmaster.resources import Resources
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.scheduling_node import SchedulingNode


class Outcome(StrEnum):
    SCHEDULED = "SCHEDULED"
    RESERVED = "RESERVED"
    NO_FIT = "NO_FIT"
    ACCEPT_FAILED = "ACCEPT_FAILED"


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class Decision:
    outcome: Outcome
    node: SchedulingNode | None = None
    score: int | None = None
    candidates: int = 0


class PlacementSession(Protocol):
    def place(self, job_exe: QueuedJobExecution) -> Decision: ...

    def reserved_count(self) -> int: ...


class PlacementEngine(Protocol):
    """Builds one session per cycle over the available (READY, fulfilled) nodes, in order."""

    name: str

    def start(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> PlacementSession: ...


class ReferenceSession:
    """The straightforward search: score every available node for every entry."""

    def __init__(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> None:
        self._nodes: dict[int, SchedulingNode] = {n.node_id: n for n in nodes}
        self._jtr = list(job_type_resources)
        self._reserved = 0

    def reserved_count(self) -> int:
        return self._reserved

    def place(self, job_exe: QueuedJobExecution) -> Decision:
        candidates: list[tuple[int, int, SchedulingNode]] = []
        reservation: tuple[int, SchedulingNode] | None = None
        for order, node in enumerate(self._nodes.values()):
            score = node.score_job_exe_for_scheduling(job_exe, self._jtr)
            if score is not None:
                candidates.append((score, order, node))
            elif not candidates:
                rscore = node.score_job_exe_for_reservation(job_exe, self._jtr)
                if rscore is not None and (reservation is None or rscore < reservation[0]):
                    reservation = (rscore, node)
        if candidates:
            candidates.sort(key=lambda c: (c[0], c[1]))
            for score, _, node in candidates:
                if node.accept_new_job_exe(job_exe):
                    return Decision(Outcome.SCHEDULED, node, score, len(candidates))
            return Decision(Outcome.ACCEPT_FAILED, None, None, len(candidates))
        if reservation is not None:
            del self._nodes[reservation[1].node_id]
            self._reserved += 1
            return Decision(Outcome.RESERVED, reservation[1], reservation[0])
        return Decision(Outcome.NO_FIT)


class ReferencePlacement:
    name = "reference"

    def start(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> PlacementSession:
        return ReferenceSession(nodes, job_type_resources)


@runtime_checkable
class RanksSystemTasks(Protocol):
    """An engine that can also rank nodes for a system task faster than scoring each one."""

    def rank_system_task(
        self,
        nodes: Sequence[SchedulingNode],
        task: Task,
        job_type_resources: Sequence[Resources],
    ) -> list[SchedulingNode]: ...


def rank_system_task(
    engine: PlacementEngine,
    nodes: Sequence[SchedulingNode],
    task: Task,
    job_type_resources: Sequence[Resources],
) -> list[SchedulingNode]:
    """The nodes the task fits, best first: lowest scheduling score, then node order (spec
    §8.4); the manager accepts on the first that takes it. An engine may supply its own
    (identical) ranking; any other engine gets this one."""
    if isinstance(engine, RanksSystemTasks):
        return engine.rank_system_task(nodes, task, job_type_resources)
    ranked = sorted(
        (
            (score, order, node)
            for order, node in enumerate(nodes)
            if (score := node.score_system_task_for_scheduling(task, job_type_resources))
            is not None
        ),
        key=lambda c: (c[0], c[1]),
    )
    return [node for _, _, node in ranked]
