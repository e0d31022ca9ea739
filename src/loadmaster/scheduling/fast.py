"""The fast placement engine: the reference's decisions (placement.py), found without scoring
every node for every entry.

The reference scores every available node for every entry: O(entries × nodes × job types).
This engine keeps, per request shape (`Resources.key()`), a ranking of all nodes by the
reference's own key — scheduling score, then node order — and patches it only where a node
changed. Invariants that make its decisions the reference's:

1. A node's scheduling score and fit for a shape depend only on that node's remaining and
   allocated resources (watermark and task resources are fixed for the cycle), and during a
   session those change only through this session: an accept (one node) or a reservation
   (the node leaves). Both are appended to one change log; every cached ranking recomputes
   exactly the logged nodes before it is read. Between `place` calls nothing else may change
   the nodes — which is how the manager uses a session.
2. Every score is computed from the same `Resources` values with the same float operations as
   the reference (`watermark − tasks − allocated` by `Resources.subtract`, then one subtraction
   per name), and compared with the same `<`; see fast_index.py for why the table look-up
   counts exactly what `count_satisfiable` counts. Fit is the reference's own
   `is_sufficient_to_meet` (or its exact column form).
3. The winner is the minimum of `score × size + order`, i.e. lowest score, then earliest node.
   If `accept_new_job_exe` fails (GPUs), the next minimum without the tried nodes is accepted
   — the reference's sorted candidate list, walked the same way; a failed accept changes
   nothing, so later keys stay valid.
4. Only when no node fits is a reservation chosen, by the minimum of the reservation key over
   all nodes still in the session. `reservation_available(p)` depends on the node's running
   work and on this cycle's accepts with priority ≤ p; it is cached per node by
   (accept count, number of running and accepted executions with priority ≤ p), which
   determines the set subtracted, and obtained from the node itself.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Sequence

import numpy as np

from loadmaster.model.tasks import Task
from loadmaster.resources import Resources
from loadmaster.scheduling.fast_index import JobTypeIndex
from loadmaster.scheduling.fast_rows import NO_NODE, NodeRows, Ranking
from loadmaster.scheduling.placement import Decision, Outcome, PlacementSession
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.scheduling_node import SchedulingNode

# Rankings hold one int64 per node; past this many bytes the least recently used shapes go
# (they are rebuilt exactly when needed again).
_RANKING_BUDGET_BYTES = 256 * 1024 * 1024


class _Shape:
    """The rankings of one request shape: for scheduling, and for reservation per priority."""

    __slots__ = ("reservations", "scheduling")

    def __init__(self, scheduling: Ranking) -> None:
        self.scheduling = scheduling
        self.reservations: dict[int, Ranking] = {}


class FastSession:
    __slots__ = (
        "_alive",
        "_changes",
        "_exe_priorities",
        "_index",
        "_max_rankings",
        "_monotone",
        "_nodes",
        "_queued_priorities",
        "_rankings",
        "_reservation_memo",
        "_reservation_rows",
        "_reserved",
        "_scheduling_rows",
        "_shapes",
        "_versions",
    )

    def __init__(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> None:
        # the reference keys its nodes by id: a repeated id keeps its first place, last object
        self._nodes: list[SchedulingNode] = list({n.node_id: n for n in nodes}.values())
        size = len(self._nodes)
        self._index = JobTypeIndex(list(job_type_resources))
        self._alive = np.ones(size, dtype=np.bool_)
        self._changes: list[int] = []
        self._reserved = 0
        self._monotone = True
        self._versions = [0] * size
        self._queued_priorities = [
            sorted(q.priority for q in n.allocated_queued_job_exes) for n in self._nodes
        ]
        self._exe_priorities: list[list[int]] | None = None
        self._reservation_memo: list[dict[tuple[int, int, int], Resources]] = [
            {} for _ in range(size)
        ]
        self._scheduling_rows = NodeRows(self._index, size, self._scheduling_row)
        self._reservation_rows: dict[int, NodeRows] = {}
        self._shapes: dict[tuple[tuple[str, float], ...], _Shape] = {}
        self._rankings = 0
        self._max_rankings = max(16, _RANKING_BUDGET_BYTES // (8 * max(size, 1)))

    def reserved_count(self) -> int:
        return self._reserved

    # -- rows ---------------------------------------------------------------------------------
    def _scheduling_row(self, i: int) -> tuple[Resources, Resources]:
        node = self._nodes[i]
        base = node.watermark_resources.subtract(node.task_resources).subtract(
            node.allocated_resources
        )
        return node.remaining_resources, base

    def _reservation_available(self, i: int, priority: int) -> Resources:
        if self._exe_priorities is None:
            self._exe_priorities = [
                sorted(exe.priority for exe in n.running_job_exes) for n in self._nodes
            ]
        key = (
            self._versions[i],
            bisect_right(self._exe_priorities[i], priority),
            bisect_right(self._queued_priorities[i], priority),
        )
        memo = self._reservation_memo[i]
        found = memo.get(key)
        if found is None:
            found = self._nodes[i].reservation_available(priority)
            memo[key] = found
        return found

    def _rows_for_reservation(self, priority: int) -> NodeRows:
        rows = self._reservation_rows.get(priority)
        if rows is None:

            def source(i: int) -> tuple[Resources, Resources]:
                available = self._reservation_available(i, priority)
                return available, available

            rows = NodeRows(self._index, len(self._nodes), source)
            rows.pos = len(self._changes)
            rows.monotone = self._monotone
            self._reservation_rows[priority] = rows
        else:
            rows.refresh(self._changes, self._alive)
        return rows

    def _shape(self, r: Resources) -> _Shape:
        key = r.key()
        shape = self._shapes.pop(key, None)
        if shape is None:
            self._evict()
            self._scheduling_rows.refresh(self._changes, self._alive)
            shape = _Shape(Ranking(self._scheduling_rows, r, self._alive))
            self._rankings += 1
        self._shapes[key] = shape  # most recently used last
        return shape

    def _evict(self) -> None:
        while self._rankings >= self._max_rankings and self._shapes:
            oldest = next(iter(self._shapes))
            dropped = self._shapes.pop(oldest)
            self._rankings -= 1 + len(dropped.reservations)

    # -- placing ------------------------------------------------------------------------------
    def place(self, job_exe: QueuedJobExecution) -> Decision:
        required = job_exe.required_resources
        shape = self._shape(required)
        ranking = shape.scheduling
        self._scheduling_rows.refresh(self._changes, self._alive)
        ranking.sync(self._alive)
        if ranking.best != NO_NODE:
            return self._schedule(job_exe, ranking)
        return self._reserve(job_exe, shape)

    def _schedule(self, job_exe: QueuedJobExecution, ranking: Ranking) -> Decision:
        size = len(self._nodes)
        key = ranking.best
        tried: list[int] = []
        while key != NO_NODE:
            score, i = divmod(key, size)
            node = self._nodes[i]
            if node.accept_new_job_exe(job_exe):
                if not _takes_only(job_exe.required_resources):
                    self._scheduling_rows.monotone = False
                    for rows in self._reservation_rows.values():
                        rows.monotone = False
                self._monotone = self._scheduling_rows.monotone
                self._versions[i] += 1
                insort(self._queued_priorities[i], job_exe.priority)
                self._changes.append(i)
                return Decision(Outcome.SCHEDULED, node, score, ranking.fitting)
            tried.append(i)
            key = ranking.next_best(tried)
        return Decision(Outcome.ACCEPT_FAILED, None, None, ranking.fitting)

    def _reserve(self, job_exe: QueuedJobExecution, shape: _Shape) -> Decision:
        priority = job_exe.priority
        rows = self._rows_for_reservation(priority)
        ranking = shape.reservations.get(priority)
        if ranking is None:
            ranking = Ranking(rows, job_exe.required_resources, self._alive)
            shape.reservations[priority] = ranking
            self._rankings += 1
        else:
            ranking.sync(self._alive)
        if ranking.best == NO_NODE:
            return Decision(Outcome.NO_FIT)
        score, i = divmod(ranking.best, len(self._nodes))
        self._alive[i] = False
        self._changes.append(i)
        self._reserved += 1
        return Decision(Outcome.RESERVED, self._nodes[i], score)


def _takes_only(resources: Resources) -> bool:
    """True if allocating `resources` can only lower a node's amounts (no negative, no NaN)."""
    return all(value >= 0.0 for _, value in resources.items())


class FastPlacement:
    """Selected with `placement_engine("fast")`; decides exactly as `ReferencePlacement`."""

    name = "fast"

    def start(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> PlacementSession:
        return FastSession(nodes, job_type_resources)

    def rank_system_task(
        self,
        nodes: Sequence[SchedulingNode],
        task: Task,
        job_type_resources: Sequence[Resources],
    ) -> list[SchedulingNode]:
        """The reference's ranking with the table-driven count (one pass over the nodes)."""
        index = JobTypeIndex(list(job_type_resources))
        required = task.resources
        r_row = index.shape_row(required)
        ranked: list[tuple[int, int, SchedulingNode]] = []
        for order, node in enumerate(nodes):
            if not node.fits(required):
                continue
            base = node.watermark_resources.subtract(node.task_resources).subtract(
                node.allocated_resources
            )
            ranked.append((index.score(index.row(base), r_row), order, node))
        ranked.sort(key=lambda c: (c[0], c[1]))
        return [node for _, _, node in ranked]
