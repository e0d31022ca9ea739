"""Job types and the job-type resource list the scores count against (spec §1.3, §4).

`max_scheduled` is tri-state on purpose: `None` means unlimited and `0` means none may run
(the reference read 0 as unlimited, scheduling spec §12.2 defect 12).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from loadmaster.resources import Resources

MIN_CPUS = 0.25
MIN_MEM = 128.0
REGULAR_STEPS: tuple[str, ...] = ("pull", "pre", "main", "post")


@dataclass(slots=True, frozen=True)
class StepSpec:
    """What one task kind of a job type runs: an argv list, or a shell line when `shell`."""

    command: tuple[str, ...]
    shell: bool = False


@dataclass(slots=True)
class JobType:
    id: int
    name: str
    version: str = "1.0"
    resources: Resources = field(default_factory=Resources)
    max_scheduled: int | None = None
    is_paused: bool = False
    is_system: bool = False
    is_long_running: bool = False
    max_tries: int = 3
    timeout_seconds: float | None = None
    steps: tuple[str, ...] = REGULAR_STEPS
    commands: dict[str, StepSpec] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    retry_main_failures: bool = False
    unmet_resources: str | None = None

    @property
    def title(self) -> str:
        return self.name

    def has_limit(self) -> bool:
        return self.max_scheduled is not None


def with_minimums(resources: Resources) -> Resources:
    """Raise a job type's request to the reference minimums (0.25 cpus, 128 MiB)."""
    return resources.with_value("cpus", max(resources.cpus, MIN_CPUS)).with_value(
        "mem", max(resources.mem, MIN_MEM)
    )


@dataclass(slots=True)
class JobTypeRegistry:
    """Job types by id, plus their resource list in registration order (paused ones too)."""

    _types: dict[int, JobType] = field(default_factory=dict)

    @classmethod
    def of(cls, job_types: Iterable[JobType]) -> JobTypeRegistry:
        registry = cls()
        for job_type in job_types:
            registry.add(job_type)
        return registry

    def add(self, job_type: JobType) -> None:
        self._types[job_type.id] = job_type

    def get(self, job_type_id: int) -> JobType | None:
        return self._types.get(job_type_id)

    def all(self) -> list[JobType]:
        return list(self._types.values())

    def resource_list(self) -> list[Resources]:
        return [job_type.resources for job_type in self._types.values()]
