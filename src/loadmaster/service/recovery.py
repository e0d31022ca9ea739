"""Rebuilding running executions after a restart, from what the store recorded.

An execution is rebuilt from its job type and then its recorded tasks are replayed through
the same state machine that ran them (launch, RUNNING, the end, LOST), so the rebuilt object
is the one the previous process had — a finished step stays finished, a lost one comes back
under its `_lost-n` id, a live one is current and is asked about by reconciliation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from loadmaster.model.executions import RunningJobExecution
from loadmaster.model.job_execution_spec import spec_for_job
from loadmaster.model.job_types import JobType
from loadmaster.model.tasks import Task, TaskStatus, TaskStatusUpdate
from loadmaster.store.records import ExecutionRecord, TaskRecord


@dataclass(slots=True)
class Recovered:
    execution: RunningJobExecution
    live_task: Task | None  # launched, not ended: reconcile it with the backend


@dataclass(slots=True)
class RecoveryResult:
    running: list[Recovered] = field(default_factory=list)
    unknown_job_type: list[ExecutionRecord] = field(default_factory=list)


def _replay(exe: RunningJobExecution, record: TaskRecord) -> None:
    task = exe.start_next_task()
    if task is None or task.kind != record.kind:
        return
    task.id = record.task_id
    if record.launched is None:
        return
    task.launch(record.launched)
    if record.started is not None:
        exe.task_update(_update(record, TaskStatus.RUNNING, record.started), record.started)
    if record.status in (
        TaskStatus.FINISHED,
        TaskStatus.FAILED,
        TaskStatus.KILLED,
        TaskStatus.LOST,
    ):
        when = record.ended or record.last_status_update or record.launched
        exe.task_update(_update(record, record.status, when), when)


def _update(record: TaskRecord, status: TaskStatus, when: datetime) -> TaskStatusUpdate:
    return TaskStatusUpdate(record.task_id, record.agent_id or "", status, when, record.exit_code)


def rebuild_execution(framework_id: str, job_type: JobType, record: ExecutionRecord) -> Recovered:
    assert record.node_id is not None and record.started is not None
    spec = spec_for_job(
        framework_id,
        job_type,
        execution_id=record.id,
        job_id=record.job_id,
        exe_num=record.exe_num,
        node_id=record.node_id,
        agent_id=record.agent_id or "",
        priority=record.priority,
        resources=record.resources,
        queued=record.queued,
        started=record.started,
        input_file_size_mib=record.input_file_size_mib,
        timeout_seconds=record.timeout_seconds,
        job_environment=record.environment,
    )
    exe = RunningJobExecution.create(spec)
    for task_record in sorted(record.tasks, key=lambda t: (t.launched is None, t.launched)):
        _replay(exe, task_record)
    live = exe.current if exe.current is not None and not exe.current.has_ended else None
    return Recovered(exe, live)


def recover(
    framework_id: str, job_types: dict[int, JobType], records: list[ExecutionRecord]
) -> RecoveryResult:
    result = RecoveryResult()
    for record in records:
        job_type = job_types.get(record.job_type_id)
        if job_type is None or record.node_id is None or record.started is None:
            result.unknown_job_type.append(record)
            continue
        result.running.append(rebuild_execution(framework_id, job_type, record))
    return result
