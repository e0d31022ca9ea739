"""How a job execution is described from its job type and its job: one place, so that a new
execution (a scheduling cycle) and a recovered one (a service restart) are built alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from loadmaster.model.executions import ExecutionSpec, cluster_id_for
from loadmaster.model.job_types import JobType
from loadmaster.resources import Resources


def spec_for_job(
    framework_id: str,
    job_type: JobType,
    *,
    execution_id: int,
    job_id: int,
    exe_num: int,
    node_id: int,
    agent_id: str,
    priority: int,
    resources: Resources,
    queued: datetime,
    started: datetime,
    input_file_size_mib: float = 0.0,
    timeout_seconds: float | None = None,
    job_environment: Iterable[tuple[str, str]] = (),
    gpu_indexes: Sequence[int] = (),
    commands: Mapping[str, tuple[tuple[str, ...], bool]] | None = None,
) -> ExecutionSpec:
    """The job's environment is added to its type's; `LOADMASTER_*` names identify the job,
    the execution, and the key under which its steps share a working directory.

    `commands` may carry `step_commands(job_type)` computed once for many executions of the
    type (a cycle creates thousands); the specs then share it (specs never change it)."""
    cluster_id = cluster_id_for(framework_id, job_id, exe_num)
    environment = dict(job_type.environment)
    environment.update(job_environment)
    environment["LOADMASTER_JOB_ID"] = str(job_id)
    environment["LOADMASTER_EXECUTION_ID"] = str(execution_id)
    environment["LOADMASTER_EXECUTION_KEY"] = cluster_id
    if gpu_indexes:
        devices = ",".join(str(i) for i in gpu_indexes)
        environment["NVIDIA_VISIBLE_DEVICES"] = devices
        environment["CUDA_VISIBLE_DEVICES"] = devices
    return ExecutionSpec(
        id=execution_id,
        job_id=job_id,
        job_type_id=job_type.id,
        node_id=node_id,
        agent_id=agent_id,
        priority=priority,
        resources=resources,
        queued=queued,
        started=started,
        cluster_id=cluster_id,
        steps=job_type.steps,
        exe_num=exe_num,
        input_file_size_mib=input_file_size_mib,
        timeout_seconds=timeout_seconds
        if timeout_seconds is not None
        else job_type.timeout_seconds,
        is_system=job_type.is_system,
        is_long_running=job_type.is_long_running,
        commands=step_commands(job_type) if commands is None else commands,
        environment=environment,
    )


def step_commands(job_type: JobType) -> dict[str, tuple[tuple[str, ...], bool]]:
    """What each step of the type runs: (argv, through a shell)."""
    return {kind: (step.command, step.shell) for kind, step in job_type.commands.items()}
