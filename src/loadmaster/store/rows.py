"""Rows to domain values, in one place so every repository reads a table the same way."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row

from loadmaster.model.executions import ExecutionStatus
from loadmaster.model.job_types import JobType, StepSpec
from loadmaster.model.queue import QueueEntry
from loadmaster.model.tasks import TaskStatus
from loadmaster.resources import Resources
from loadmaster.store.columns import as_utc, resources_from_json
from loadmaster.store.records import (
    EntityKind,
    Event,
    ExecutionRecord,
    JobRecord,
    JobStatus,
    NodeRecord,
    TaskRecord,
)

T = TypeVar("T")

# Keeps every IN list and multi-row statement well inside both databases' parameter limits
# (SQLite 32766, PostgreSQL 65535) while still doing thousands of rows per round trip.
CHUNK = 2000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(text)) for name, text in value or ())


def job_type_of(row: Row[Any], steps: Iterable[Row[Any]]) -> JobType:
    ordered = sorted(steps, key=lambda step: int(step.position))
    commands = {
        str(step.kind): StepSpec(tuple(str(a) for a in step.command), bool(step.shell))
        for step in ordered
        if step.command is not None
    }
    return JobType(
        id=row.id,
        name=row.name,
        version=row.version,
        resources=resources_from_json(row.resources),
        max_scheduled=row.max_scheduled,
        is_paused=bool(row.is_paused),
        is_system=bool(row.is_system),
        is_long_running=bool(row.is_long_running),
        max_tries=row.max_tries,
        timeout_seconds=row.timeout_seconds,
        steps=tuple(str(step.kind) for step in ordered),
        commands=commands,
        environment={str(k): str(v) for k, v in (row.environment or {}).items()},
        retry_main_failures=bool(row.retry_main_failures),
        unmet_resources=row.unmet_resources,
    )


def queue_entries(rows: Iterable[Sequence[Any]]) -> list[QueueEntry]:
    """Decode rows of `queue.FETCH_COLUMNS` (raw: JSON as text, times as the driver gives
    them). The head of the queue is read every cycle, up to thousands of entries, and most
    of them share their resources, workspaces and queued time; each distinct value is
    decoded once per call. Sharing is safe: what is shared is immutable."""
    decoded: dict[Any, Any] = {}

    def once(raw: Any, decode: Callable[[Any], Any]) -> Any:
        key = (decode, raw)
        if key not in decoded:
            decoded[key] = decode(raw)
        return decoded[key]

    entries = []
    for (
        entry_id,
        job_id,
        job_type_id,
        exe_num,
        priority,
        queued,
        resources,
        is_canceled,
        input_workspaces,
        output_workspaces,
        input_file_size_mib,
        timeout_seconds,
        environment,
    ) in rows:
        entries.append(
            QueueEntry(
                id=entry_id,
                job_id=job_id,
                job_type_id=job_type_id,
                priority=priority,
                queued=once(queued, _time),
                resources=once(resources, _resources_text),
                is_canceled=bool(is_canceled),
                exe_num=exe_num,
                input_workspaces=once(input_workspaces, _names_text),
                output_workspaces=once(output_workspaces, _names_text),
                input_file_size_mib=input_file_size_mib,
                timeout_seconds=timeout_seconds,
                environment=once(environment, _pairs_text),
            )
        )
    return entries


def _time(raw: datetime | str) -> datetime:
    return as_utc(raw if isinstance(raw, datetime) else datetime.fromisoformat(raw))


def _resources_text(raw: str) -> Resources:
    return resources_from_json(json.loads(raw))


def _names_text(raw: str) -> tuple[str, ...]:
    return _names(json.loads(raw))


def _pairs_text(raw: str) -> tuple[tuple[str, str], ...]:
    return _pairs(json.loads(raw))


def job_of(row: Row[Any]) -> JobRecord:
    return JobRecord(
        id=row.id,
        job_type_id=row.job_type_id,
        priority=row.priority,
        status=JobStatus(row.status),
        num_exes=row.num_exes,
        max_tries=row.max_tries,
        resources=resources_from_json(row.resources),
        created=row.created,
        queued=row.queued,
        started=row.started,
        ended=row.ended,
        error=row.error,
        idempotency_key=row.idempotency_key,
        input_workspaces=_names(row.input_workspaces),
        output_workspaces=_names(row.output_workspaces),
        input_file_size_mib=row.input_file_size_mib,
        cancel_requested=row.cancel_requested,
        environment=_pairs(row.environment),
    )


def task_of(row: Row[Any]) -> TaskRecord:
    return TaskRecord(
        task_id=row.task_id,
        kind=row.kind,
        agent_id=row.agent_id,
        status=TaskStatus(row.status) if row.status is not None else None,
        exit_code=row.exit_code,
        launched=row.launched,
        started=row.started,
        ended=row.ended,
        last_status_update=row.last_status_update,
    )


def execution_of(row: Row[Any], tasks: Sequence[TaskRecord] = ()) -> ExecutionRecord:
    mapping = row._mapping
    return ExecutionRecord(
        id=row.id,
        job_id=row.job_id,
        job_type_id=row.job_type_id,
        queue_id=row.queue_id,
        exe_num=row.exe_num,
        priority=row.priority,
        node_id=row.node_id,
        agent_id=row.agent_id,
        status=ExecutionStatus(row.status),
        error=row.error,
        exit_code=row.exit_code,
        resources=resources_from_json(row.resources),
        input_file_size_mib=row.input_file_size_mib,
        timeout_seconds=row.timeout_seconds,
        queued=row.queued,
        started=row.started,
        ended=row.ended,
        cancel_requested=mapping.get("cancel_requested"),
        environment=_pairs(mapping.get("job_environment")),
        tasks=tuple(tasks),
    )


def node_of(row: Row[Any]) -> NodeRecord:
    return NodeRecord(
        id=row.id,
        hostname=row.hostname,
        agent_id=row.agent_id,
        is_paused=bool(row.is_paused),
        pause_reason=row.pause_reason,
        is_active=bool(row.is_active),
        deprecated=row.deprecated,
        last_offer_received=row.last_offer_received,
        created=row.created,
        last_modified=row.last_modified,
    )


def event_of(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        occurred=row.occurred,
        entity_kind=EntityKind(row.entity_kind),
        entity_id=row.entity_id,
        what=row.what,
        detail=dict(row.detail or {}),
    )
