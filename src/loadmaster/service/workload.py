"""Workload files: job types and jobs to submit, in TOML, validated before anything is submitted.

```toml
[[job_types]]
name = "primes"                     # name + version identify a job type
version = "1.0"
resources = { cpus = 0.5, mem = 64 }
max_scheduled = 2                   # optional: null/absent = unlimited, 0 = none may run
max_tries = 3
timeout_seconds = 60                # the main step's running limit
env = { LIMIT = "20000" }
shell = false                       # true: each step is one shell line instead of an argv list
steps.main = ["{python}", "-c", "print('hello')"]
steps.pre = ["{python}", "-c", "..."]    # optional, also `post`, and `pull` (a preparation step)

[[jobs]]
job_type = "primes"                 # or "primes:1.0"
priority = 100                      # lower runs first
count = 4                           # this many identical jobs
env = { LIMIT = "50000" }           # added to the job type's environment
```

`{python}` in a command stands for the Python that runs loadmaster, so examples run anywhere.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loadmaster.input_errors import InputError, validation_problems
from loadmaster.model.job_types import JobType, StepSpec, with_minimums
from loadmaster.resources import Resources

STEP_ORDER = ("pull", "pre", "main", "post")
MAX_JOBS_PER_ENTRY = 100_000


class WorkloadError(InputError):
    """A workload file that cannot be submitted (nothing of it is)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


StepName = Literal["pull", "pre", "main", "post"]


class JobTypeIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    version: Annotated[str, Field(min_length=1, max_length=50)] = "1.0"
    resources: dict[str, float] = Field(default_factory=dict)
    max_scheduled: Annotated[int, Field(ge=0)] | None = None
    max_tries: Annotated[int, Field(ge=1)] = 3
    timeout_seconds: Annotated[float, Field(gt=0)] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    shell: bool = False
    retry_main_failures: bool = False
    paused: bool = False
    steps: dict[StepName, list[str]]

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if amount < 0:
                raise ValueError(f"{name}: must not be negative (got {amount:g})")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if "main" not in value:
            raise ValueError("main: a job type needs a main step")
        for name, command in value.items():
            if not command or not command[0]:
                raise ValueError(f"{name}: the command must not be empty")
        return value

    @model_validator(mode="after")
    def _shell_is_one_line(self) -> JobTypeIn:
        if self.shell:
            for name, command in self.steps.items():
                if len(command) != 1:
                    raise ValueError(f"steps.{name}: with shell = true a step is one shell line")
        return self


class JobIn(_Strict):
    job_type: Annotated[str, Field(min_length=1)]
    priority: int = 100
    count: Annotated[int, Field(ge=1, le=MAX_JOBS_PER_ENTRY)] = 1
    env: dict[str, str] = Field(default_factory=dict)


class WorkloadIn(_Strict):
    job_types: list[JobTypeIn] = Field(default_factory=list)
    jobs: list[JobIn] = Field(default_factory=list)


@dataclass(slots=True, frozen=True)
class JobRequest:
    """One job to submit: its type (name, version), priority and extra environment."""

    job_type: tuple[str, str]
    priority: int
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Workload:
    job_types: list[JobType]
    jobs: list[JobRequest]


def _substitute(command: list[str]) -> tuple[str, ...]:
    return tuple(part.replace("{python}", sys.executable) for part in command)


def to_job_type(spec: JobTypeIn, type_id: int = 0) -> JobType:
    steps = tuple(kind for kind in STEP_ORDER if kind in spec.steps)
    return JobType(
        id=type_id,
        name=spec.name,
        version=spec.version,
        resources=with_minimums(Resources(spec.resources)),
        max_scheduled=spec.max_scheduled,
        is_paused=spec.paused,
        max_tries=spec.max_tries,
        timeout_seconds=spec.timeout_seconds,
        steps=steps,
        commands={kind: StepSpec(_substitute(cmd), spec.shell) for kind, cmd in spec.steps.items()},
        environment=dict(spec.env),
        retry_main_failures=spec.retry_main_failures,
    )


def parse_workload(
    data: dict[str, Any], source: str, known_types: set[tuple[str, str]] | None = None
) -> Workload:
    """Validate everything first: a file with any problem submits nothing."""
    try:
        parsed = WorkloadIn.model_validate(data)
    except ValidationError as exc:
        raise WorkloadError(validation_problems(exc, source)) from None
    problems: list[str] = []
    declared: dict[tuple[str, str], JobTypeIn] = {}
    for i, jt in enumerate(parsed.job_types):
        key = (jt.name, jt.version)
        if key in declared:
            problems.append(f"{source}: job_types[{i}]: {jt.name}:{jt.version} is declared twice")
        declared[key] = jt
    available = set(declared) | (known_types or set())
    jobs: list[JobRequest] = []
    for i, job in enumerate(parsed.jobs):
        resolved = _resolve(job.job_type, available)
        if resolved is None:
            problems.append(f"{source}: jobs[{i}].job_type: unknown job type {job.job_type!r}")
            continue
        jobs.extend(JobRequest(resolved, job.priority, dict(job.env)) for _ in range(job.count))
    if problems:
        raise WorkloadError(problems)
    return Workload([to_job_type(jt) for jt in parsed.job_types], jobs)


def _resolve(reference: str, available: set[tuple[str, str]]) -> tuple[str, str] | None:
    """`name:version`, or a bare name when exactly one version of it exists."""
    if ":" in reference:
        name, version = reference.rsplit(":", 1)
        return (name, version) if (name, version) in available else None
    matches = [key for key in available if key[0] == reference]
    return matches[0] if len(matches) == 1 else None


def load_workload(path: Path, known_types: set[tuple[str, str]] | None = None) -> Workload:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise WorkloadError([f"{path}: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkloadError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_workload(data, str(path), known_types)
