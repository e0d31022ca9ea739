"""Which physical GPU of a node belongs to whom (spec §1.4, with its leaks fixed).

The scheduler reserves GPUs when it places a queue entry, turns the reservation into an
assignment once the execution exists, and hands the indexes to the task environment. Unlike
the reference, a reservation is held *for a named queue entry*: a failed reservation flips
nothing, an assignment takes exactly the GPUs reserved for that entry, and reservations are
released when the cycle resets or aborts, and assignments when the execution ends
(scheduling spec §12.2 defect 5). One table per scheduler, passed in: no process globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

AVAILABLE = "available"


@dataclass(slots=True)
class _Slot:
    """One GPU: free, reserved for a queue entry, or assigned to a job."""

    reserved_for: int | None = None  # queue entry id
    assigned_to: int | None = None  # job id

    @property
    def is_available(self) -> bool:
        return self.reserved_for is None and self.assigned_to is None


@dataclass(slots=True)
class GpuTable:
    _nodes: dict[int, list[_Slot]] = field(default_factory=dict)

    def define_node_gpus(self, node_id: int, count: int) -> None:
        """Grow a node's GPU list to `count` (it never shrinks: a busy GPU may be offered less)."""
        slots = self._nodes.setdefault(node_id, [])
        while len(slots) < count:
            slots.append(_Slot())

    def total(self, node_id: int) -> int:
        return len(self._nodes.get(node_id, ()))

    def available(self, node_id: int) -> int:
        return sum(1 for slot in self._nodes.get(node_id, ()) if slot.is_available)

    def reserve(self, node_id: int, queue_id: int, count: int) -> bool:
        """Reserve `count` GPUs for a queue entry, all or nothing."""
        if count <= 0:
            return True
        free = [slot for slot in self._nodes.get(node_id, ()) if slot.is_available]
        if len(free) < count:
            return False
        for slot in free[:count]:
            slot.reserved_for = queue_id
        return True

    def release_reservation(self, node_id: int, queue_id: int) -> None:
        for slot in self._nodes.get(node_id, ()):
            if slot.reserved_for == queue_id and slot.assigned_to is None:
                slot.reserved_for = None

    def release_all_reservations(self) -> None:
        for slots in self._nodes.values():
            for slot in slots:
                if slot.assigned_to is None:
                    slot.reserved_for = None

    def assign(self, node_id: int, queue_id: int, job_id: int) -> list[int]:
        """Turn the GPUs reserved for `queue_id` into an assignment to `job_id`; their indexes."""
        indexes: list[int] = []
        for index, slot in enumerate(self._nodes.get(node_id, ())):
            if slot.reserved_for == queue_id and slot.assigned_to is None:
                slot.reserved_for = None
                slot.assigned_to = job_id
                indexes.append(index)
        return indexes

    def assigned_indexes(self, node_id: int, job_id: int) -> list[int]:
        return [
            i for i, slot in enumerate(self._nodes.get(node_id, ())) if slot.assigned_to == job_id
        ]

    def release(self, node_id: int, job_id: int) -> None:
        """Free the GPUs of a job whose execution ended, whatever way it ended."""
        for slot in self._nodes.get(node_id, ()):
            if slot.assigned_to == job_id:
                slot.assigned_to = None

    def visible_devices(self, node_id: int, job_id: int) -> str:
        """The comma-separated indexes for NVIDIA_VISIBLE_DEVICES ("" when none)."""
        return ",".join(str(i) for i in self.assigned_indexes(node_id, job_id))
