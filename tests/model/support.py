"""Small builders shared by the model tests: a fixed clock origin and record factories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loadmaster.model.executions import ExecutionSpec, RunningJobExecution, cluster_id_for
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.resources import Resources

T0 = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float = 0.0) -> datetime:
    """The instant `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def status(
    task_id: str,
    state: TaskStatus,
    when: datetime = T0,
    exit_code: int | None = None,
    agent_id: str = "agent-1",
) -> TaskStatusUpdate:
    return TaskStatusUpdate(task_id, agent_id, state, when, exit_code=exit_code)


def task(
    task_id: str = "task-1",
    kind: str = "main",
    agent_id: str | None = "agent-1",
    resources: Resources | None = None,
    **kwargs: Any,
) -> Task:
    return Task(
        id=task_id,
        kind=kind,
        resources=resources if resources is not None else Resources.of(cpus=1.0, mem=64.0),
        agent_id=agent_id,
        **kwargs,
    )


def spec(
    exe_id: int = 1,
    job_id: int = 10,
    *,
    framework_id: str = "fw",
    node_id: int = 1,
    agent_id: str = "agent-1",
    resources: Resources | None = None,
    exe_num: int = 1,
    priority: int = 100,
    job_type_id: int = 1,
    input_file_size_mib: float = 0.0,
    timeout_seconds: float | None = None,
    is_system: bool = False,
    is_long_running: bool = False,
) -> ExecutionSpec:
    return ExecutionSpec(
        id=exe_id,
        job_id=job_id,
        job_type_id=job_type_id,
        node_id=node_id,
        agent_id=agent_id,
        priority=priority,
        resources=resources
        if resources is not None
        else Resources.of(cpus=1.0, mem=1024.0, disk=100.0),
        queued=T0,
        started=T0,
        cluster_id=cluster_id_for(framework_id, job_id, exe_num),
        exe_num=exe_num,
        input_file_size_mib=input_file_size_mib,
        timeout_seconds=timeout_seconds,
        is_system=is_system,
        is_long_running=is_long_running,
    )


def execution(exe_id: int = 1, job_id: int = 10, **kwargs: Any) -> RunningJobExecution:
    return RunningJobExecution.create(spec(exe_id, job_id, **kwargs))


def launch_next(exe: RunningJobExecution, when: datetime = T0) -> Task:
    """Start the execution's next task and launch it, as a cycle does."""
    started = exe.start_next_task()
    assert started is not None
    started.launch(when)
    return started
