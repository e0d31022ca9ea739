"""Per-entry checks that come before placement (spec §8.6 c–f), as pure functions."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from loadmaster.model.job_types import JobType
from loadmaster.model.queue import QueueEntry
from loadmaster.resources import Resources

SHAREDMEM = "sharedmem"


@dataclass(slots=True, frozen=True)
class ResourceProblems:
    invalid: tuple[str, ...] = ()
    insufficient: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.invalid or self.insufficient)

    def unmet_text(self) -> str:
        """The job type's `unmet_resources`: invalid names first, then insufficient ones."""
        return ",".join(self.invalid + self.insufficient)


def resource_problems(required: Resources, largest_node: Resources) -> ResourceProblems:
    """Invalid: the cluster lacks the name (a positive sharedmem always is); insufficient: no
    single node has that much. Zero amounts of names the cluster lacks are still invalid,
    except sharedmem, exactly as in the reference."""
    invalid: list[str] = []
    insufficient: list[str] = []
    for name, value in required.items():
        if name.lower() == SHAREDMEM:
            if value > 0.0:
                invalid.append(name)
            continue
        if name not in largest_node:
            invalid.append(name)
        elif value > largest_node.get(name):
            insufficient.append(name)
    return ResourceProblems(tuple(invalid), tuple(insufficient))


def missing_workspaces(entry: QueueEntry, workspaces: Set[str]) -> list[str]:
    return [name for name in entry.workspaces() if name not in workspaces]


def job_type_limits(
    job_types: Mapping[int, JobType], running_counts: Mapping[int, int]
) -> dict[int, int]:
    """Per limited type: how many more may start this cycle (negative when over the limit)."""
    return {
        type_id: job_type.max_scheduled - running_counts.get(type_id, 0)
        for type_id, job_type in job_types.items()
        if job_type.max_scheduled is not None
    }
