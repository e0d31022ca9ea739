"""A regular execution builds each step's task only when it is needed (the next task, or a read
of `tasks`/`remaining`), and is otherwise indistinguishable from one whose tasks were all built
at once: the same task fields, order and identities, the same lifecycle, the same registry."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmaster.model import executions as executions_module
from loadmaster.model.execution_registry import JobExecutionManager
from loadmaster.model.executions import (
    ExecutionSpec,
    ExecutionStatus,
    RunningJobExecution,
    StepEnvironment,
    StepTemplateCache,
    build_task,
)
from loadmaster.model.tasks import Task, TaskStatus
from loadmaster.resources import Resources

from .support import T0, at, execution, launch_next, spec, status

S = TaskStatus
X = ExecutionStatus
KINDS = ["pull", "pre", "main", "post"]
COMMANDS = {"pull": (("docker", "pull", "img"), False), "main": (("run.sh", "-x"), True)}


@dataclass
class Built:
    """How many tasks (and step environments) the execution module constructed."""

    tasks: int = 0
    environments: int = 0


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Built:
    counts = Built()

    def counting_task(*args: Any, **kwargs: Any) -> Task:
        counts.tasks += 1
        return Task(*args, **kwargs)

    def counting_environment(*args: Any, **kwargs: Any) -> StepEnvironment:
        counts.environments += 1
        return StepEnvironment(*args, **kwargs)

    monkeypatch.setattr(executions_module, "Task", counting_task)
    monkeypatch.setattr(executions_module, "StepEnvironment", counting_environment)
    return counts


def full_spec(**kwargs: Any) -> ExecutionSpec:
    made = spec(
        resources=Resources.of(cpus=2.0, mem=1024.0, disk=100.0, gpus=1.0),
        input_file_size_mib=30.0,
        timeout_seconds=600.0,
        **kwargs,
    )
    env = {"LOADMASTER_JOB_ID": "10", "ALLOCATED_CPUS": "overridden"}
    return replace(made, commands=COMMANDS, environment=env)


def task_fields(task: Task) -> tuple[object, ...]:
    """Everything a task holds, its environment as its items in order."""
    return tuple(
        list(task.environment.items()) if f.name == "environment" else getattr(task, f.name)
        for f in fields(Task)
    )


# -- laziness ------------------------------------------------------------------------------------


def test_a_new_execution_builds_a_task_only_when_one_is_needed(built: Built) -> None:
    exe = RunningJobExecution.create(full_spec(), StepTemplateCache())
    manager = JobExecutionManager()
    manager.schedule_job_exes([exe])
    assert manager.for_task(f"{exe.spec.cluster_id}_post") is exe
    assert exe.is_next_task_ready()
    assert not exe.is_finished()
    assert exe.current_or_next_resources() == exe.spec.resources
    assert exe.check_for_starvation(at(3600)) is False
    assert built == Built(0, 0)  # nothing asked for a task yet

    first = exe.next_task()
    assert first is not None and first.kind == "pull"
    assert exe.next_task() is first
    assert exe.start_next_task() is first
    assert built == Built(1, 1)  # only the step that became the next task

    first.launch(at(1))
    manager.handle_task_update(status(first.id, S.FINISHED, at(2)), at(2))
    assert built == Built(1, 1)  # the registry re-indexes without building
    assert exe.current_or_next_resources() == exe.spec.resources
    assert built == Built(1, 1)
    second = exe.next_task()
    assert second is not None and second.kind == "pre"
    assert built == Built(2, 2)

    tasks = exe.tasks  # reading every task builds the rest, once
    assert built == Built(4, 4)
    assert tasks[0] is first and tasks[1] is second
    assert exe.tasks is tasks
    assert exe.remaining == tasks[1:]
    assert built == Built(4, 4)


def test_a_cycle_shaped_batch_builds_one_task_per_execution(built: Built) -> None:
    """Create, register and start the first step of many executions, as a cycle does."""
    templates = StepTemplateCache()
    exes = [RunningJobExecution.create(full_spec(exe_id=i, job_id=i), templates) for i in range(50)]
    JobExecutionManager().schedule_job_exes(exes)
    assert built == Built(0, 0)
    for exe in exes:
        exe.start_next_task()
    assert built == Built(50, 50)


def test_a_system_execution_builds_its_one_task_at_once(built: Built) -> None:
    exe = execution(is_system=True)
    assert built.tasks == 1
    assert [t.kind for t in exe.tasks] == ["main"]
    assert exe.next_task() is exe.tasks[0]
    assert exe.tasks[0].resources == exe.spec.resources
    assert exe.task_ids() == [f"{exe.spec.cluster_id}_main"]
    assert built.tasks == 1


# -- the same tasks as an eager build -------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"input_file_size_mib": 0.0},
        {"timeout_seconds": None},
        {"is_long_running": True},
        {"steps": ("main", "post")},
        {"steps": ()},
    ],
    ids=["full", "no-input", "no-timeout", "long-running", "two-steps", "no-steps"],
)
@pytest.mark.parametrize("shared", [True, False], ids=["template-cache", "own-templates"])
def test_lazily_built_tasks_equal_build_task(overrides: dict[str, Any], shared: bool) -> None:
    made = replace(full_spec(), **overrides)
    exe = RunningJobExecution.create(made, StepTemplateCache() if shared else None)
    first = exe.next_task()
    expected = [build_task(made, kind) for kind in made.steps]
    assert [task_fields(t) for t in exe.tasks] == [task_fields(t) for t in expected]
    assert all(type(t.environment) is StepEnvironment for t in exe.tasks)
    assert first is (exe.tasks[0] if made.steps else None)
    assert exe.task_ids() == [t.id for t in expected]
    assert exe.is_finished() is (not made.steps)


def test_every_read_gives_the_same_task_objects_in_step_order() -> None:
    exe = execution()
    assert exe.next_task() is exe.tasks[0]  # built lazily, then found in `tasks`

    read_first = execution()
    tasks = list(read_first.tasks)  # built up front, then handed out one by one
    assert [t.kind for t in tasks] == KINDS
    assert [t.id for t in tasks] == [f"{read_first.spec.cluster_id}_{k}" for k in KINDS]
    for index, task in enumerate(tasks):
        assert read_first.next_task() is task
        assert read_first.remaining == tasks[index:]
        assert launch_next(read_first, at(index)) is task
        read_first.task_update(status(task.id, S.FINISHED, at(index)), at(index))
    assert read_first.tasks == tasks
    assert read_first.status is X.COMPLETED


def test_remaining_is_built_on_read_and_stops_at_the_end() -> None:
    exe = execution()
    pull = launch_next(exe)
    pre, main, post = exe.remaining
    assert [t.kind for t in (pre, main, post)] == ["pre", "main", "post"]
    assert exe.tasks == [pull, pre, main, post]
    exe.execution_canceled(at(1))
    assert exe.remaining == []
    assert exe.tasks == [pull, pre, main, post]  # ending drops what remains, not the tasks
    assert not exe.is_finished()  # the current task is still being killed
    assert exe.next_task() is None


def test_an_execution_ended_before_its_first_step_still_lists_every_task() -> None:
    exe = execution()
    exe.execution_lost(at(1))
    assert exe.is_finished()
    assert exe.error == "node-lost"
    assert exe.next_task() is None
    assert exe.current_or_next_resources() is None
    assert exe.remaining == []
    assert [t.kind for t in exe.tasks] == KINDS
    assert not any(t.has_been_launched for t in exe.tasks)


def test_repr_is_the_dataclass_repr_of_the_eager_fields() -> None:
    exe = execution()
    launch_next(exe)
    assert repr(exe) == (
        f"RunningJobExecution(spec={exe.spec!r}, tasks={exe.tasks!r}, "
        f"remaining={exe.tasks[1:]!r}, current={exe.tasks[0]!r}, "
        "status=<ExecutionStatus.RUNNING: 'RUNNING'>, error=None, finished=None, "
        "last_task_finished=None, starved=False, _lost_counts={})"
    )


# -- lost tasks and the registry ------------------------------------------------------------------


def test_a_lost_task_is_requeued_first_before_the_later_steps_are_built(built: Built) -> None:
    exe = RunningJobExecution.create(full_spec())
    manager = JobExecutionManager()
    manager.schedule_job_exes([exe])
    cid = exe.spec.cluster_id
    pull = launch_next(exe)
    manager.handle_task_update(status(pull.id, S.LOST, at(1)), at(1))
    assert built.tasks == 1
    assert pull.id == f"{cid}_pull_lost-1"
    assert exe.next_task() is pull
    assert exe.current_or_next_resources() is pull.resources
    assert exe.task_ids() == [f"{cid}_pull_lost-1", f"{cid}_pre", f"{cid}_main", f"{cid}_post"]
    for task_id in (f"{cid}_pull", f"{cid}_pull_lost-1", f"{cid}_pre", f"{cid}_post"):
        assert manager.for_task(task_id) is exe
    assert built.tasks == 1

    assert launch_next(exe, at(2)) is pull
    manager.handle_task_update(status(pull.id, S.LOST, at(3)), at(3))
    assert pull.id == f"{cid}_pull_lost-2"
    assert [t.id for t in exe.remaining] == exe.task_ids()
    assert exe.remaining[0] is pull
    assert exe.tasks[0] is pull

    pre = exe.tasks[1]
    launch_next(exe, at(4))
    manager.handle_task_update(status(pull.id, S.FINISHED, at(5)), at(5))
    assert launch_next(exe, at(6)) is pre
    manager.handle_task_update(status(pre.id, S.LOST, at(7)), at(7))
    assert pre.id == f"{cid}_pre_lost-1"  # counted per kind
    assert exe.remaining == exe.tasks[1:]
    assert exe.remaining[0] is pre


def test_the_registry_finds_an_execution_by_any_steps_id_built_or_not() -> None:
    manager = JobExecutionManager()
    exes = [execution(i, 10 + i) for i in range(3)]
    manager.schedule_job_exes(exes)
    launch_next(exes[1])
    for exe in exes:
        for kind in KINDS:
            assert manager.for_task(f"{exe.spec.cluster_id}_{kind}") is exe
    for exe in exes:  # the same ids a read of every task gives
        assert exe.task_ids() == [t.id for t in exe.tasks]
        assert manager._ids_by_exe[exe.id] == {t.id for t in exe.tasks}

    first = exes[0]
    manager.cancel(first.id, at(1))
    assert all(manager.for_task(t.id) is None for t in first.tasks)
    assert manager.for_task(f"{exes[2].spec.cluster_id}_post") is exes[2]


def test_a_renamed_built_task_is_registered_under_its_new_id() -> None:
    """Recovery renames a replayed task to its recorded id before the execution is registered."""
    exe = execution()
    launch_next(exe).id = "recorded-pull-id"
    manager = JobExecutionManager()
    manager.schedule_job_exes([exe])
    assert manager.for_task("recorded-pull-id") is exe
    assert manager.for_task(f"{exe.spec.cluster_id}_pull") is None
    assert manager.for_task(f"{exe.spec.cluster_id}_main") is exe


# -- property: lazy and read-up-front executions behave the same ----------------------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.booleans()),
        st.tuples(
            st.just("update"),
            st.sampled_from([S.STAGING, S.RUNNING, S.FINISHED, S.FAILED, S.KILLED, S.LOST]),
            st.sampled_from([None, 0, 1]),
        ),
        st.tuples(st.just("stale"), st.integers(0, 3), st.sampled_from([S.FINISHED, S.LOST])),
        st.tuples(st.just("time_out"), st.just(0)),
        st.tuples(st.just("cancel"), st.just(0)),
        st.tuples(st.just("node_lost"), st.just(0)),
        st.tuples(st.just("starvation"), st.integers(0, 900)),
        st.tuples(st.just("next"), st.just(0)),
        st.tuples(st.just("read"), st.sampled_from(["tasks", "remaining"])),
    ),
    max_size=30,
)


class Driven:
    """An execution in its own registry, driven the way the service drives one."""

    def __init__(self, made: ExecutionSpec, read_up_front: bool) -> None:
        self.exe = RunningJobExecution.create(made, StepTemplateCache())
        if read_up_front:
            assert len(self.exe.tasks) == len(made.steps)
        self.manager = JobExecutionManager()
        self.manager.schedule_job_exes([self.exe])
        self.handed_out: list[Task | None] = []  # every task the execution returned
        self.seen_ids = set(self.exe.task_ids())
        self.now: datetime = T0

    def apply(self, operation: tuple[Any, ...]) -> object:
        exe, manager, name = self.exe, self.manager, operation[0]
        current = exe.current
        result: object = None
        if name == "start":
            started = exe.start_next_task()
            self.handed_out.append(started)
            if started is not None and operation[1]:
                started.launch(self.now)
        elif name == "update" and current is not None:
            update = status(current.id, operation[1], self.now, operation[2])
            result = manager.handle_task_update(update, self.now) is exe
        elif name == "stale":
            task_id = sorted(self.seen_ids)[operation[1] % len(self.seen_ids)]
            update = status(task_id, operation[2], self.now)
            result = manager.handle_task_update(update, self.now) is exe
        elif name == "time_out" and current is not None:
            manager.handle_task_timeout(current, self.now)
        elif name == "cancel":
            result = manager.cancel(exe.id, self.now) is exe
        elif name == "node_lost":
            result = [e.id for e in manager.lost_job_exes([exe.id], self.now)]
        elif name == "starvation":
            self.now += timedelta(seconds=operation[1])
            result = [e.id for e in manager.check_for_starvation(self.now)]
        elif name == "next":
            task = exe.next_task()
            self.handed_out.append(task)
            result = task.id if task is not None else None
        elif name == "read":
            result = [t.id for t in getattr(exe, operation[1])]
        self.now += timedelta(seconds=1)
        self.seen_ids.update(exe.task_ids())
        return result

    def state(self) -> tuple[object, ...]:
        """What can be observed without building a task."""
        exe = self.exe
        return (
            exe.status,
            exe.error,
            exe.finished,
            exe.last_task_finished,
            exe.starved,
            task_fields(exe.current) if exe.current is not None else None,
            exe.is_finished(),
            exe.is_next_task_ready(),
            exe.current_or_next_resources(),
            exe.task_ids(),
            {task_id: self.manager.for_task(task_id) is exe for task_id in sorted(self.seen_ids)},
            self.manager.get(exe.id) is exe,
        )

    def final_state(self) -> tuple[object, ...]:
        """Everything, the tasks included, and which step each handed-out task was."""
        exe = self.exe

        def position(task: Task | None) -> int | None:
            return None if task is None else next(i for i, t in enumerate(exe.tasks) if t is task)

        return (
            self.state(),
            [task_fields(t) for t in exe.tasks],
            [position(t) for t in exe.remaining],
            [position(t) for t in self.handed_out],
            position(exe.current),
            exe.next_task() is (exe.remaining[0] if exe.remaining else None),
        )


@settings(max_examples=300, deadline=None)
@given(
    operations=OPERATIONS,
    steps=st.sampled_from([("pull", "pre", "main", "post"), ("main", "post"), ("main",)]),
)
def test_lazy_and_read_up_front_executions_behave_the_same(
    operations: list[tuple[Any, ...]], steps: tuple[str, ...]
) -> None:
    made = replace(full_spec(), steps=steps)
    lazy, eager = Driven(made, read_up_front=False), Driven(made, read_up_front=True)
    for operation in operations:
        assert lazy.apply(operation) == eager.apply(operation)
        assert lazy.state() == eager.state()
    assert lazy.final_state() == eager.final_state()
    for driven in (lazy, eager):  # the ids the registry is given are the tasks' own
        exe = driven.exe
        assert exe.task_ids() == [t.id for t in exe.tasks]
        if exe.current is not None and not exe.is_finished():
            assert driven.manager.for_task(exe.current.id) is exe
