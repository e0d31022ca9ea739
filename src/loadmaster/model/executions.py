"""Running job executions and their task sequence (spec §1.3 per-task resources, §6.4, §6.5).

An execution runs its steps one at a time (pull → pre → main → post for a regular job); the
scheduler gives resources to the next step of executions already under way before anything
new. A lost task goes back to the head of the sequence under a new id (`…_lost-n`) so a late
update of the old incarnation cannot be mistaken for the new one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from loadmaster.model.errors import TIMEOUT_ERRORS
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources

RESOURCE_STARVATION_THRESHOLD = timedelta(minutes=10)
PULL_TIMEOUT = timedelta(minutes=30)
PRE_POST_TIMEOUT = timedelta(hours=1)


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


def cluster_id_for(framework_id: str, job_id: int, exe_num: int) -> str:
    return f"loadmaster_job_{framework_id}_{job_id}x{exe_num}"


def task_resources(kind: str, resources: Resources, input_file_size_mib: float) -> Resources:
    """Per-task needs: pull/pre the full amount, main less the input size on disk, post no disk."""
    if kind == "main":
        if input_file_size_mib == 0.0:
            return resources  # the same amounts (Resources is immutable, so sharing is safe)
        return resources.with_value("disk", resources.disk - input_file_size_mib)
    if kind == "post":
        return resources.with_value("disk", 0.0)
    return resources


def allocated_environment(resources: Resources) -> dict[str, str]:
    """`ALLOCATED_<NAME>` for every resource, one decimal, as tasks of the reference receive."""
    return {f"ALLOCATED_{name.upper()}": f"{value:.1f}" for name, value in resources.items()}


@dataclass(slots=True)  # never changed once built; not frozen: see docs/performance.md
class ExecutionSpec:
    """What an execution is made from: identity, placement, and its steps."""

    id: int
    job_id: int
    job_type_id: int
    node_id: int
    agent_id: str
    priority: int
    resources: Resources
    queued: datetime
    started: datetime
    cluster_id: str
    steps: tuple[str, ...] = ("pull", "pre", "main", "post")
    exe_num: int = 1
    input_file_size_mib: float = 0.0
    timeout_seconds: float | None = None
    is_system: bool = False
    is_long_running: bool = False
    # read-only: the executions of one job type created in one cycle share one mapping
    commands: Mapping[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)


def _running_timeout(spec: ExecutionSpec, kind: str) -> timedelta | None:
    if kind == "pull":
        return PULL_TIMEOUT
    if kind in ("pre", "post"):
        return PRE_POST_TIMEOUT
    if spec.is_long_running or spec.timeout_seconds is None:
        return None
    return timedelta(seconds=spec.timeout_seconds)


def build_task(spec: ExecutionSpec, kind: str) -> Task:
    """One step's task; regular jobs build all their steps from `step_templates`."""
    # A system job's only task (main) gets the full resources (spec §1.3).
    res = (
        spec.resources
        if spec.is_system
        else task_resources(kind, spec.resources, spec.input_file_size_mib)
    )
    command, shell = spec.commands.get(kind, ((), False))
    env = dict(spec.environment)
    env.update(allocated_environment(res))
    return Task(
        id=f"{spec.cluster_id}_{kind}",
        kind=kind,
        resources=res,
        agent_id=spec.agent_id,
        name=f"job {spec.job_id} {kind}",
        command=command,
        shell=shell,
        environment=env,
        running_timeout=_running_timeout(spec, kind),
    )


_NO_COMMAND: tuple[tuple[str, ...], bool] = ((), False)


@dataclass(slots=True, frozen=True)
class StepTemplate:
    """What one step's task takes from its execution's request, input size, timeout and
    commands, and nothing from the execution's identity: every execution of one job type with
    the same request shares it."""

    kind: str
    resources: Resources
    allocated: dict[str, str]  # the `ALLOCATED_*` variables of `resources`
    running_timeout: timedelta | None
    command: tuple[str, ...]
    shell: bool


def step_templates(spec: ExecutionSpec) -> tuple[StepTemplate, ...]:
    """The steps of a regular job, in order, with what they share computed once: the formatted
    `ALLOCATED_*` amounts (pull, pre and usually main use the execution's own resources; post
    differs only in its disk, which is 0.0) and the running timeout of steps other than pull,
    pre and post."""
    resources = spec.resources
    size = spec.input_file_size_mib
    full = allocated_environment(resources)
    post = {**full, "ALLOCATED_DISK": f"{0.0:.1f}"}  # with_value keeps the name's place
    other_timeout = _running_timeout(spec, "main")
    steps: list[StepTemplate] = []
    for kind in spec.steps:
        if kind == "post":
            res = resources.with_value("disk", 0.0)
            allocated = post
            timeout: timedelta | None = PRE_POST_TIMEOUT
        else:
            res = task_resources(kind, resources, size)
            allocated = full if res is resources else allocated_environment(res)
            if kind == "pull":
                timeout = PULL_TIMEOUT
            elif kind == "pre":
                timeout = PRE_POST_TIMEOUT
            else:
                timeout = other_timeout
        command, shell = spec.commands.get(kind, _NO_COMMAND)
        steps.append(StepTemplate(kind, res, allocated, timeout, command, shell))
    return tuple(steps)


# everything `step_templates` reads of a spec
_TemplateKey = tuple[object, ...]


class StepTemplateCache:
    """`step_templates` once per distinct (steps, request, input size, timeout, commands): a
    scheduling cycle creates one execution per placement, thousands of them from a few hundred
    request shapes, so building their tasks is on the cycle's critical path. Keyed by the
    values the templates are computed from, so a cache can live as long as its owner likes."""

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[_TemplateKey, tuple[StepTemplate, ...]] = {}

    def for_spec(self, spec: ExecutionSpec) -> tuple[StepTemplate, ...]:
        key = (
            spec.steps,
            spec.resources.ordered_key(),
            spec.input_file_size_mib,
            spec.timeout_seconds,
            spec.is_long_running,
            tuple(spec.commands.items()),
        )
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = step_templates(spec)
        return found


class StepEnvironment(Mapping[str, str]):
    """An execution's environment with one step's `ALLOCATED_*` variables over it: the same
    keys, values and order as `{**base, **allocated}`, without a dict per step — a full
    cluster holds hundreds of thousands of executions of four steps each, and these merged
    dicts were a third of an execution's memory. Read-only, like the mappings it reads (the
    execution's environment and its template's variables never change once built)."""

    __slots__ = ("_allocated", "_base")

    def __init__(self, base: Mapping[str, str], allocated: Mapping[str, str]) -> None:
        self._base = base
        self._allocated = allocated

    def __getitem__(self, key: str) -> str:
        allocated = self._allocated
        return allocated[key] if key in allocated else self._base[key]

    def __iter__(self) -> Iterator[str]:
        base = self._base
        yield from base  # a key of both keeps its place in base, as in a merged dict
        yield from (key for key in self._allocated if key not in base)

    def __len__(self) -> int:
        base = self._base
        return len(base) + sum(1 for key in self._allocated if key not in base)

    def __contains__(self, key: object) -> bool:
        return key in self._allocated or key in self._base

    def __repr__(self) -> str:
        return f"StepEnvironment({dict(self)!r})"


def _step_task(spec: ExecutionSpec, step: StepTemplate) -> Task:
    """`build_task` for one step of a regular job, from its template; the step's environment
    is the execution's with the step's allocation over it (`StepEnvironment`)."""
    kind = step.kind
    return Task(
        spec.cluster_id + "_" + kind,
        kind,
        step.resources,
        spec.agent_id,
        f"job {spec.job_id} {kind}",
        step.command,
        step.shell,
        StepEnvironment(spec.environment, step.allocated),
        step.running_timeout,
    )


@dataclass(slots=True, eq=False, repr=False)
class RunningJobExecution:
    """An execution and its step sequence. A regular job's tasks are built from its step
    templates only when needed — when a step becomes the next task, or when `tasks` (or
    `remaining`) is read: a cycle creates up to 100,000 executions and starts only their first
    step, and most of a full cluster's executions run one step at a time.

    The steps are run in order, so the built tasks are always a prefix of the steps
    (`_built`), and what remains is the steps from `_taken` on: `_taken` counts the steps taken
    off the sequence (started, or dropped when the execution ended). A lost task is the one
    taken last, so putting it back first is taking one step fewer.
    """

    spec: ExecutionSpec
    _steps: tuple[StepTemplate, ...]  # () for a system job, whose one task is built at once
    _built: list[Task]  # the tasks of the first `len(_built)` steps
    _size: int  # how many tasks the execution has, built or not
    _taken: int = 0
    current: Task | None = None
    status: ExecutionStatus = ExecutionStatus.RUNNING
    error: str | None = None
    finished: datetime | None = None
    last_task_finished: datetime | None = None
    starved: bool = False
    _lost_counts: dict[str, int] | None = None  # made by the first lost task

    @classmethod
    def create(
        cls, spec: ExecutionSpec, templates: StepTemplateCache | None = None
    ) -> RunningJobExecution:
        """`templates` shares the step templates between executions (a cycle passes one)."""
        if spec.is_system:
            return cls(spec, (), [build_task(spec, "main")], 1)
        steps = step_templates(spec) if templates is None else templates.for_spec(spec)
        return cls(spec, steps, [], len(steps))

    def _build(self, index: int) -> Task:
        """The task of step `index`, building it and any step before it not built yet."""
        built = self._built
        spec = self.spec
        steps = self._steps
        while len(built) <= index:
            built.append(_step_task(spec, steps[len(built)]))
        return built[index]

    @property
    def tasks(self) -> list[Task]:
        """Every step's task, in step order (the same objects on every read)."""
        built = self._built
        if len(built) < self._size:
            self._build(self._size - 1)
        return built

    @property
    def remaining(self) -> list[Task]:
        """The tasks not started yet, next first (a new list on every read)."""
        taken = self._taken
        if taken >= self._size:
            return []
        return self.tasks[taken:]

    def task_ids(self) -> list[str]:
        """`[task.id for task in self.tasks]` without building the tasks not built yet: a
        step's id is its cluster id and kind until its task is built (and perhaps renamed)."""
        built = self._built
        ids = [task.id for task in built]
        if len(built) < self._size:
            prefix = self.spec.cluster_id + "_"
            ids.extend([prefix + step.kind for step in self._steps[len(built) :]])
        return ids

    def __repr__(self) -> str:
        """As the dataclass's own repr was when `tasks` and `remaining` were fields."""
        return (
            f"{type(self).__qualname__}(spec={self.spec!r}, tasks={self.tasks!r}, "
            f"remaining={self.remaining!r}, current={self.current!r}, status={self.status!r}, "
            f"error={self.error!r}, finished={self.finished!r}, "
            f"last_task_finished={self.last_task_finished!r}, starved={self.starved!r}, "
            f"_lost_counts={self._lost_counts or {}!r})"
        )

    # -- identity shortcuts -------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.spec.id

    @property
    def job_id(self) -> int:
        return self.spec.job_id

    @property
    def node_id(self) -> int:
        return self.spec.node_id

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    @property
    def priority(self) -> int:
        return self.spec.priority

    @property
    def job_type_id(self) -> int:
        return self.spec.job_type_id

    # -- task sequence ------------------------------------------------------------------------
    def next_task(self) -> Task | None:
        index = self._taken
        if index >= self._size:
            return None
        built = self._built
        return built[index] if index < len(built) else self._build(index)

    def is_next_task_ready(self) -> bool:
        return self.current is None and self._taken < self._size

    def start_next_task(self) -> Task | None:
        if self.current is not None:
            return None
        task = self.next_task()
        if task is None:
            return None
        self._taken += 1
        self.current = task
        return task

    def is_finished(self) -> bool:
        return self.current is None and self._taken >= self._size

    def owns_task(self, task_id: str) -> bool:
        return self.current is not None and self.current.id == task_id

    def _set_final(self, status: ExecutionStatus, when: datetime, error: str | None) -> None:
        if self.status is not ExecutionStatus.RUNNING:
            return
        self._taken = self._size  # nothing remains
        self.status = status
        self.finished = when
        self.error = error

    def task_update(self, update: TaskStatusUpdate, when: datetime) -> None:
        task = self.current
        if task is None or task.id != update.task_id:
            return
        task.update(update)
        if update.status is TaskStatus.FINISHED:
            self.current = None
            self.last_task_finished = when
            if self._taken >= self._size and self.status is ExecutionStatus.RUNNING:
                self.status = ExecutionStatus.COMPLETED
                self.finished = when
        elif update.status is TaskStatus.LOST:
            self.current = None
            self.last_task_finished = when
            if self.status is ExecutionStatus.RUNNING:
                self._requeue_lost(task)
        elif update.status in (TaskStatus.FAILED, TaskStatus.KILLED):
            self.current = None
            self.last_task_finished = when
            self._set_final(ExecutionStatus.FAILED, when, self._determine_error(task))

    def _requeue_lost(self, task: Task) -> None:
        base = f"{self.spec.cluster_id}_{task.kind}"
        counts = self._lost_counts
        if counts is None:
            counts = self._lost_counts = {}
        count = counts[task.kind] = counts.get(task.kind, 0) + 1
        task.id = f"{base}_lost-{count}"
        task.launched = task.started = task.ended = task.last_status_update = None
        task.final_status = None
        # Only the current task of a running execution is requeued, and that is the task
        # taken last: putting it back first is taking one step fewer.
        assert self._built[self._taken - 1] is task
        self._taken -= 1

    def _determine_error(self, task: Task) -> str:
        """Spec §6.4: a pull failure is always `pull`; a task that never ran failed to launch;
        pre/post map a non-zero exit to their own error, otherwise the general fallback."""
        if task.kind == "pull":
            return "pull"
        if not task.has_started:
            return "task-launch"
        if task.kind == "main":
            return "algorithm-unknown"
        if task.kind in ("pre", "post") and task.exit_code not in (None, 0):
            return task.kind
        return "unknown"

    def check_for_starvation(self, when: datetime) -> bool:
        """Starved once 10 min pass between a task's end and the next task's launch."""
        if self.starved:
            return True
        if self.current is not None or self._taken >= self._size:
            return False
        if self.last_task_finished is not None and (
            when > self.last_task_finished + RESOURCE_STARVATION_THRESHOLD
        ):
            self.starved = True
            self._set_final(ExecutionStatus.FAILED, when, "resource-starvation")
        return self.starved

    def execution_canceled(self, when: datetime) -> None:
        if self.current is not None:
            self.current.force_kill()
        self._set_final(ExecutionStatus.CANCELED, when, None)

    def execution_lost(self, when: datetime) -> None:
        if self.current is not None:
            self.current.force_reconciliation()
            self.current.force_kill()
        self._set_final(ExecutionStatus.FAILED, when, "node-lost")

    def execution_timed_out(self, task: Task, when: datetime) -> None:
        if not task.has_started:
            name = "launch-timeout"
        elif task.kind == "main":
            name = "system-timeout" if self.spec.is_system else "timeout"
        else:
            name = TIMEOUT_ERRORS.get(task.kind, "timeout")
        self._set_final(ExecutionStatus.FAILED, when, name)

    def current_or_next_resources(self) -> Resources | None:
        """Without building the next task: a step's task has its template's resources."""
        task = self.current
        if task is not None:
            return task.resources
        index = self._taken
        if index >= self._size:
            return None
        built = self._built
        return built[index].resources if index < len(built) else self._steps[index].resources


def tasks_of(executions: Sequence[RunningJobExecution]) -> list[Task]:
    return [exe.current for exe in executions if exe.current is not None]
