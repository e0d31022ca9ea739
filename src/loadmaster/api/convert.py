"""Store records → response shapes. Secret environment values never leave the API: every
environment shown is censored with its job type's secret keys."""

from __future__ import annotations

from loadmaster.api.schemas import (
    ExecutionOut,
    JobOut,
    JobTypeOut,
    StepOut,
    TaskOut,
)
from loadmaster.model.job_types import JobType
from loadmaster.store.job_types import censored_environment
from loadmaster.store.records import ExecutionRecord, JobRecord, JobTypeSpec, TaskRecord


def job_type_out(job_type: JobType, spec: JobTypeSpec | None) -> JobTypeOut:
    secret = spec.secret_keys if spec is not None else frozenset()
    return JobTypeOut(
        id=job_type.id,
        name=job_type.name,
        version=job_type.version,
        resources=job_type.resources.as_dict(),
        max_scheduled=job_type.max_scheduled,
        max_tries=job_type.max_tries,
        timeout_seconds=job_type.timeout_seconds,
        steps=list(job_type.steps),
        commands={
            kind: StepOut(command=list(step.command), shell=step.shell)
            for kind, step in job_type.commands.items()
        },
        env=censored_environment(job_type.environment, secret),
        secret_keys=sorted(secret),
        retry_main_failures=job_type.retry_main_failures,
        is_paused=job_type.is_paused,
        is_system=job_type.is_system,
    )


def job_out(job: JobRecord, name: str | None, secret: frozenset[str]) -> JobOut:
    return JobOut(
        id=job.id,
        job_type_id=job.job_type_id,
        job_type=name,
        priority=job.priority,
        status=str(job.status),
        num_exes=job.num_exes,
        max_tries=job.max_tries,
        resources=job.resources.as_dict(),
        created=job.created,
        queued=job.queued,
        started=job.started,
        ended=job.ended,
        error=job.error,
        idempotency_key=job.idempotency_key,
        cancel_requested=job.cancel_requested,
        env=censored_environment(dict(job.environment), secret),
        input_workspaces=list(job.input_workspaces),
        output_workspaces=list(job.output_workspaces),
        input_file_size_mib=job.input_file_size_mib,
    )


def task_out(task: TaskRecord) -> TaskOut:
    return TaskOut(
        task_id=task.task_id,
        kind=task.kind,
        agent_id=task.agent_id,
        status=str(task.status) if task.status is not None else None,
        exit_code=task.exit_code,
        launched=task.launched,
        started=task.started,
        ended=task.ended,
        last_status_update=task.last_status_update,
    )


def execution_out(exe: ExecutionRecord) -> ExecutionOut:
    return ExecutionOut(
        id=exe.id,
        job_id=exe.job_id,
        job_type_id=exe.job_type_id,
        exe_num=exe.exe_num,
        priority=exe.priority,
        node_id=exe.node_id,
        agent_id=exe.agent_id,
        status=str(exe.status),
        error=exe.error,
        exit_code=exe.exit_code,
        resources=exe.resources.as_dict(),
        queued=exe.queued,
        started=exe.started,
        ended=exe.ended,
        tasks=[task_out(t) for t in exe.tasks],
    )
