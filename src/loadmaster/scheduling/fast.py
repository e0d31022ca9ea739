"""The fast placement engine: the reference's decisions (placement.py), found without scoring
every node for every entry.

The reference scores every available node for every entry: O(entries × nodes × job types).
This engine keeps, per request shape (`Resources.ordered_key()`), a ranking of all nodes by the
reference's own key — scheduling score, then node order — and patches it only where a node
changed. Invariants that make its decisions the reference's:

1. A node's scheduling score and fit for a shape depend only on that node's remaining and
   allocated resources (watermark and task resources are fixed for the cycle), and during a
   session those change only through this session: an accept (one node) or a reservation
   (the node leaves). Both are appended to one change log; every cached ranking recomputes
   exactly the logged nodes before it is read. Between `place` calls nothing else may change
   the nodes — which is how the manager uses a session.
2. Every score is computed from the same values with the same float operations as the
   reference (`watermark − tasks`, then `− allocated` per name, then one subtraction per name
   of the request), and compared with the same `<`; see fast_index.py for why the table
   look-up counts exactly what `count_satisfiable` counts. Fit is the reference's own
   `is_sufficient_to_meet`, or an exact column form of it (fast_rows.py: the -inf / 0.0
   encodings of a lacking name, and the names that can fail when no amount is negative).
3. The winner is the minimum of `score × size + order`, i.e. lowest score, then earliest node.
   If the accept fails (GPUs; `accept_fitting_job_exe`, which is `accept_new_job_exe` without
   the room test the ranking has just made), the next minimum without the tried nodes is accepted
   — the reference's sorted candidate list, walked the same way; a failed accept changes
   nothing, so later keys stay valid.
4. Only when no node fits is a reservation chosen, by the minimum of the reservation key over
   all nodes still in the session. `reservation_available(p)` depends on the node's running
   work and on this cycle's accepts with priority ≤ p; it is obtained from the node itself and
   shared only where it provably subtracts the same work (`_reservation_available`).

Keys only go down while a node fills (it meets fewer job types) until it stops fitting, so a
stale key is an upper bound of the true one, never a lower bound: a lazy heap that trusts a
fresh top would miss a changed node that overtook it. Every changed node that still fitted is
therefore re-read before the minimum is trusted (fast_rows.py says which ones can be skipped).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Sequence
from types import ModuleType

import numpy as np

from loadmaster.model.tasks import Task
from loadmaster.resources import Resources
from loadmaster.scheduling.fast_index import JobTypeIndex
from loadmaster.scheduling.fast_rows import (
    NO_NODE,
    Liveness,
    NodeRows,
    Ranking,
    compiled_rereads,
)
from loadmaster.scheduling.placement import Decision, Outcome, PlacementSession
from loadmaster.scheduling.queued import QueuedJobExecution
from loadmaster.scheduling.scheduling_node import SchedulingNode

# Rankings hold one int64 per node; past this many bytes the least recently used shapes go
# (they are rebuilt exactly when needed again).
_RANKING_BUDGET_BYTES = 256 * 1024 * 1024

ShapeKey = tuple[tuple[str, float], ...]


class _Shape:
    """The rankings of one request shape: for scheduling, and for reservation per priority."""

    __slots__ = ("last_used", "reservations", "scheduling", "takes_only")

    def __init__(self, scheduling: Ranking, takes_only: bool) -> None:
        self.scheduling = scheduling
        self.reservations: dict[int, Ranking] = {}
        self.takes_only = takes_only
        self.last_used = 0


class FastSession:
    __slots__ = (
        "_compiled",
        "_exe_priorities",
        "_index",
        "_live",
        "_max_rankings",
        "_monotone",
        "_nodes",
        "_queued_priorities",
        "_rankings",
        "_reads",
        "_reservation_memo",
        "_reservation_rows",
        "_reserved",
        "_scheduling_rows",
        "_shapes",
        "_size",
        "_without_tasks",
        "_without_tasks_rows",
    )

    def __init__(
        self,
        nodes: Sequence[SchedulingNode],
        job_type_resources: Sequence[Resources],
        compiled: ModuleType | None = None,
    ) -> None:
        # the reference keys its nodes by id: a repeated id keeps its first place, last object
        self._nodes: list[SchedulingNode] = list({n.node_id: n for n in nodes}.values())
        size = self._size = len(self._nodes)
        self._index = JobTypeIndex(list(job_type_resources))
        self._live = Liveness(size)
        self._reserved = 0
        self._monotone = True
        # watermark − task resources is fixed for the cycle; the basis subtracts what is
        # allocated from it, the same two subtractions in the same order as the reference
        self._without_tasks = [
            n.watermark_resources.subtract(n.task_resources) for n in self._nodes
        ]
        self._without_tasks_rows = [w.aligned(self._index.names) for w in self._without_tasks]
        remaining = [n.remaining_resources for n in self._nodes]
        self._compiled = _usable(compiled, self._index)
        rows = NodeRows(
            self._index,
            remaining,
            (
                w.subtract(n.allocated_resources)
                for w, n in zip(self._without_tasks, self._nodes, strict=True)
            ),
            self._live,
            self._compiled,
        )
        rows.nonnegative = not any(v < 0.0 for r in remaining for _, v in r.items())
        rows.group_twins()
        self._scheduling_rows = rows
        self._queued_priorities = [
            sorted(q.priority for q in n.allocated_queued_job_exes) for n in self._nodes
        ]
        self._exe_priorities: list[list[int]] | None = None
        self._reservation_memo: list[dict[tuple[int, int, int], Resources]] = [
            {} for _ in range(size)
        ]
        self._reservation_rows: dict[int, NodeRows] = {}
        self._shapes: dict[ShapeKey, _Shape] = {}
        self._rankings = 0
        self._reads = 0
        self._max_rankings = max(16, _RANKING_BUDGET_BYTES // (8 * max(size, 1)))

    def reserved_count(self) -> int:
        return self._reserved

    # -- rows ---------------------------------------------------------------------------------
    def _reservation_source(self, i: int, priority: int) -> tuple[int, int]:
        """What `reservation_available(priority)` of node i subtracts: its non-job tasks
        (fixed), the running executions with priority ≤ p (fixed for the cycle: their count
        names them) and the entries accepted this session with priority ≤ p, in acceptance
        order. For one priority the accepted set only grows, so these two counts change
        exactly when the row does (`_rows_for_reservation` re-reads a node only then)."""
        if self._exe_priorities is None:
            self._exe_priorities = [
                sorted(exe.priority for exe in n.running_job_exes) for n in self._nodes
            ]
        return (
            bisect_right(self._exe_priorities[i], priority),
            bisect_right(self._queued_priorities[i], priority),
        )

    def _reservation_available(self, i: int, priority: int, source: tuple[int, int]) -> Resources:
        """`reservation_available(priority)`, shared between priorities that subtract the same
        work: with the node's accepts so far fixed, the counts of `source` determine the
        subtracted sets for every priority (the same count of a fixed list filtered by
        priority is the same set), but not across accepts — an entry at priority 1 and one at
        priority 2 are both "one accepted entry" — so the number of accepts is part of the key.
        """
        key = (len(self._queued_priorities[i]), *source)
        memo = self._reservation_memo[i]
        found = memo.get(key)
        if found is None:
            found = self._nodes[i].reservation_available(priority)
            memo[key] = found
        return found

    def _rows_for_reservation(self, priority: int) -> NodeRows:
        rows = self._reservation_rows.get(priority)
        changes = self._scheduling_rows.log
        if rows is None:
            sources = [self._reservation_source(i, priority) for i in range(self._size)]
            initial = [
                self._reservation_available(i, priority, source) for i, source in enumerate(sources)
            ]
            rows = NodeRows(self._index, list(initial), initial, self._live, self._compiled)
            rows.sources = list(sources)
            rows.pos = len(changes)
            rows.monotone = self._monotone
            self._reservation_rows[priority] = rows
            return rows
        if rows.pos == len(changes):
            return rows
        alive = self._live.flags
        for i in set(changes[rows.pos :]):
            if not alive[i]:
                rows.touch(i)
                continue
            source = self._reservation_source(i, priority)
            if source != rows.sources[i]:  # an accept at priority ≤ p: the row changed
                rows.sources[i] = source
                available = self._reservation_available(i, priority, source)
                rows.update(i, available, available)
        rows.pos = len(changes)
        return rows

    def _shape(self, r: Resources, key: ShapeKey) -> _Shape:
        shape = self._shapes.get(key)
        if shape is None:
            self._evict()
            shape = _Shape(Ranking(self._scheduling_rows, r), _takes_only(r))
            self._shapes[key] = shape
            self._rankings += 1
        self._reads += 1
        shape.last_used = self._reads
        return shape

    def _evict(self) -> None:
        while self._rankings >= self._max_rankings and self._shapes:
            oldest = min(self._shapes, key=lambda k: self._shapes[k].last_used)
            dropped = self._shapes.pop(oldest)
            self._rankings -= 1 + len(dropped.reservations)

    # -- placing ------------------------------------------------------------------------------
    def place(self, job_exe: QueuedJobExecution) -> Decision:
        required = job_exe.required_resources
        shape = self._shape(required, required.ordered_key())
        ranking = shape.scheduling
        ranking.sync()
        if ranking.best != NO_NODE:
            return self._schedule(job_exe, shape)
        return self._reserve(job_exe, shape)

    def _schedule(self, job_exe: QueuedJobExecution, shape: _Shape) -> Decision:
        ranking = shape.scheduling
        size = self._size
        key = ranking.best
        tried: list[int] = []
        while key != NO_NODE:
            score, i = divmod(key, size)
            node = self._nodes[i]
            # the key is current (synced), and only a fitting node has one: `fits` holds
            if node.accept_fitting_job_exe(job_exe):
                self._accepted(i, node, job_exe.priority, shape.takes_only)
                return Decision(Outcome.SCHEDULED, node, score, ranking.fitting)
            tried.append(i)
            key = ranking.next_best(tried)
        return Decision(Outcome.ACCEPT_FAILED, None, None, ranking.fitting)

    def _accepted(self, i: int, node: SchedulingNode, priority: int, takes_only: bool) -> None:
        """Log node i's new rows (the session's one kind of change besides a reservation)."""
        if not takes_only and self._monotone:
            self._monotone = False
            self._scheduling_rows.monotone = False
            for rows in self._reservation_rows.values():
                rows.monotone = False
        insort(self._queued_priorities[i], priority)
        # the basis `without_tasks.subtract(allocated)`, aligned: per name w − a, or w − 0.0
        # where nothing is allocated (which is w for every float), None where w lacks the name
        rows = self._scheduling_rows
        remaining = node.remaining_resources
        if rows.kernel is not None:  # the same subtractions, in compiled code
            basis = rows.kernel.accept(
                i,
                self._without_tasks_rows[i],
                node.allocated_resources.mapping(),
                remaining.mapping(),
            )
            rows.record_row(i, remaining, basis)
            return
        allocated = node.allocated_resources.get
        basis = tuple(
            [
                None if w is None else w - allocated(name, 0.0)
                for w, name in zip(self._without_tasks_rows[i], self._index.names, strict=True)
            ]
        )
        rows.update_row(i, remaining, basis)

    def _reserve(self, job_exe: QueuedJobExecution, shape: _Shape) -> Decision:
        priority = job_exe.priority
        ranking = shape.reservations.get(priority)
        if ranking is None:
            ranking = Ranking(self._rows_for_reservation(priority), job_exe.required_resources)
            shape.reservations[priority] = ranking
            self._rankings += 1
        elif not (self._monotone and ranking.best == NO_NODE):
            self._rows_for_reservation(priority)
            ranking.sync()
        if ranking.best == NO_NODE:
            return Decision(Outcome.NO_FIT)
        score, i = divmod(ranking.best, self._size)
        self._live.leave(i)
        self._scheduling_rows.touch(i)
        self._reserved += 1
        return Decision(Outcome.RESERVED, self._nodes[i], score)


def _usable(compiled: ModuleType | None, index: JobTypeIndex) -> ModuleType | None:
    """The compiled re-reader if it can hold this index's job-type bit sets (up to MAX_TYPES
    bits); otherwise None, and keys are read in Python."""
    if compiled is not None and index.count <= compiled.MAX_TYPES:
        return compiled
    return None


def _takes_only(resources: Resources) -> bool:
    """True if allocating `resources` can only lower a node's amounts (no negative, no NaN)."""
    return all(value >= 0.0 for _, value in resources.items())


class FastPlacement:
    """Selected with `placement_engine("fast")`; decides exactly as `ReferencePlacement`.

    `compiled`: re-read keys with the compiled re-reader (True: it must be there), in Python
    (False), or with it where the package was built with it (None, the default)."""

    name = "fast"

    def __init__(self, compiled: bool | None = None) -> None:
        found = None if compiled is False else compiled_rereads()
        if compiled and found is None:
            raise RuntimeError(
                "the compiled re-reader (loadmaster.scheduling._rereads) is not built: "
                "install loadmaster where a C compiler is available"
            )
        self._compiled = found

    @property
    def compiled(self) -> bool:
        """True if this engine's sessions re-read keys with the compiled re-reader."""
        return self._compiled is not None

    def start(
        self, nodes: Sequence[SchedulingNode], job_type_resources: Sequence[Resources]
    ) -> PlacementSession:
        return FastSession(nodes, job_type_resources, self._compiled)

    def rank_system_task(
        self,
        nodes: Sequence[SchedulingNode],
        task: Task,
        job_type_resources: Sequence[Resources],
    ) -> list[SchedulingNode]:
        """The reference's ranking with the table-driven count, vectorized over the nodes
        that fit: lowest score first, ties in node order (a stable sort of nodes taken in
        order)."""
        index = JobTypeIndex(list(job_type_resources))
        required = task.resources
        fitting = [node for node in nodes if node.fits(required)]
        if not fitting:
            return []
        rows = [
            index.row(
                node.watermark_resources.subtract_all(
                    (node.task_resources, node.allocated_resources)
                )
            )
            for node in fitting
        ]
        r_row = index.shape_row(required)
        # `score`'s encoding: a name the base lacks counts as 0.0, otherwise base − request
        a = np.array(
            [
                [0.0 if x is None else x - r for x, r in zip(row, r_row, strict=True)]
                for row in rows
            ],
            dtype=np.float64,
        ).reshape(len(rows), len(r_row))
        order = np.argsort(index.scores(a), kind="stable")
        return [fitting[k] for k in order.tolist()]
