"""Job types: create, edit, pause, read back as the core's `JobType`.

Name and version identify a job type and never change; everything else is edited by merging
the changes into the stored definition and validating the result as a whole, so a change can
never leave a job type that could not have been created. Steps live in their own table, one
row per step in run order, carrying that step's command.

Jobs copy what they need from their job type when they are queued (resources, tries,
timeout), so an edit applies to jobs submitted afterwards, not to those already waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Unpack

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from loadmaster.model.job_types import JobType
from loadmaster.store.columns import resources_to_json
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.records import EntityKind, JobTypeChanges, JobTypeSpec, NewEvent
from loadmaster.store.rows import job_type_of
from loadmaster.store.schema import job_type_steps, job_types

MASK = "*****"


def censored_environment(
    environment: Mapping[str, str], secret_keys: Iterable[str]
) -> dict[str, str]:
    """The environment as it may be shown: secret values masked the way the reference did."""
    secret = frozenset(secret_keys)
    return {key: MASK if key in secret else value for key, value in environment.items()}


def _type_values(spec: JobTypeSpec) -> dict[str, Any]:
    return {
        "resources": resources_to_json(spec.resources),
        "max_scheduled": spec.max_scheduled,
        "is_system": spec.is_system,
        "is_long_running": spec.is_long_running,
        "max_tries": spec.max_tries,
        "timeout_seconds": spec.timeout_seconds,
        "environment": dict(spec.environment),
        "secret_keys": sorted(spec.secret_keys),
        "retry_main_failures": spec.retry_main_failures,
    }


def _step_rows(job_type_id: int, spec: JobTypeSpec) -> list[dict[str, Any]]:
    rows = []
    for position, kind in enumerate(spec.steps):
        command = spec.commands.get(kind)
        rows.append(
            {
                "job_type_id": job_type_id,
                "position": position,
                "kind": kind,
                "command": list(command.command) if command else None,
                "shell": command.shell if command else False,
            }
        )
    return rows


def _spec_of(row: Row[Any], job_type: JobType) -> JobTypeSpec:
    return JobTypeSpec.of(job_type, frozenset(str(k) for k in row.secret_keys or ()))


def load_job_type(connection: Connection, job_type_id: int) -> tuple[Row[Any], JobType] | None:
    row = connection.execute(select(job_types).where(job_types.c.id == job_type_id)).first()
    if row is None:
        return None
    steps = connection.execute(
        select(job_type_steps).where(job_type_steps.c.job_type_id == job_type_id)
    )
    return row, job_type_of(row, steps)


def require_job_type(connection: Connection, job_type_id: int) -> tuple[Row[Any], JobType]:
    found = load_job_type(connection, job_type_id)
    if found is None:
        raise ValueError(f"job_type_id: no job type with id {job_type_id}")
    return found


def _duplicate(name: str, version: str) -> ValueError:
    return ValueError(f"name, version: a job type {name!r} version {version!r} already exists")


class JobTypeRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, spec: JobTypeSpec, *, when: datetime) -> JobType:
        def work(connection: Connection) -> JobType:
            existing = connection.execute(
                select(job_types.c.id).where(
                    job_types.c.name == spec.name, job_types.c.version == spec.version
                )
            ).first()
            if existing is not None:
                raise _duplicate(spec.name, spec.version)
            values = _type_values(spec) | {
                "name": spec.name,
                "version": spec.version,
                "is_paused": spec.is_paused,
                "paused": when if spec.is_paused else None,
                "created": when,
                "last_modified": when,
            }
            new_id = connection.execute(
                insert(job_types).values(**values).returning(job_types.c.id)
            ).scalar_one()
            connection.execute(insert(job_type_steps), _step_rows(new_id, spec))
            event = NewEvent(EntityKind.JOB_TYPE, new_id, "created", {"name": spec.name})
            append_events(connection, when, [event])
            return require_job_type(connection, new_id)[1]

        try:
            return self._db.write(work)
        except IntegrityError as error:  # lost a race with a concurrent create
            raise _duplicate(spec.name, spec.version) from error

    def update(
        self, job_type_id: int, *, when: datetime, **changes: Unpack[JobTypeChanges]
    ) -> JobType:
        """Apply `changes` to the stored definition; unknown ids raise ValueError."""

        def work(connection: Connection) -> JobType:
            row, current = require_job_type(connection, job_type_id)
            merged = replace(_spec_of(row, current), **changes)
            connection.execute(
                update(job_types)
                .where(job_types.c.id == job_type_id)
                .values(**_type_values(merged), last_modified=when)
            )
            connection.execute(
                delete(job_type_steps).where(job_type_steps.c.job_type_id == job_type_id)
            )
            connection.execute(insert(job_type_steps), _step_rows(job_type_id, merged))
            detail = {"fields": sorted(changes)}
            append_events(
                connection, when, [NewEvent(EntityKind.JOB_TYPE, job_type_id, "updated", detail)]
            )
            return require_job_type(connection, job_type_id)[1]

        return self._db.write(work)

    def pause(self, job_type_id: int, *, when: datetime) -> JobType:
        """Its queued jobs stay queued but are not scheduled; running ones carry on."""
        return self._set_paused(job_type_id, True, when)

    def resume(self, job_type_id: int, *, when: datetime) -> JobType:
        return self._set_paused(job_type_id, False, when)

    def _set_paused(self, job_type_id: int, paused: bool, when: datetime) -> JobType:
        def work(connection: Connection) -> JobType:
            _row, current = require_job_type(connection, job_type_id)
            if current.is_paused == paused:
                return current
            connection.execute(
                update(job_types)
                .where(job_types.c.id == job_type_id)
                .values(is_paused=paused, paused=when if paused else None, last_modified=when)
            )
            what = "paused" if paused else "resumed"
            append_events(connection, when, [NewEvent(EntityKind.JOB_TYPE, job_type_id, what)])
            return require_job_type(connection, job_type_id)[1]

        return self._db.write(work)

    def get(self, job_type_id: int) -> JobType | None:
        found = self._db.read(lambda c: load_job_type(c, job_type_id))
        return found[1] if found else None

    def spec(self, job_type_id: int) -> JobTypeSpec | None:
        """The editable definition, secret keys included (for showing and editing)."""
        found = self._db.read(lambda c: load_job_type(c, job_type_id))
        return _spec_of(*found) if found else None

    def find(self, name: str, version: str) -> JobType | None:
        def work(connection: Connection) -> JobType | None:
            type_id = connection.execute(
                select(job_types.c.id).where(
                    job_types.c.name == name, job_types.c.version == version
                )
            ).scalar()
            return None if type_id is None else require_job_type(connection, type_id)[1]

        return self._db.read(work)

    def all(self) -> list[JobType]:
        """Every job type by id, as the scheduler's registry is rebuilt from them."""

        def work(connection: Connection) -> list[JobType]:
            steps: dict[int, list[Row[Any]]] = {}
            for step in connection.execute(select(job_type_steps)):
                steps.setdefault(step.job_type_id, []).append(step)
            rows = connection.execute(select(job_types).order_by(job_types.c.id))
            return [job_type_of(row, steps.get(row.id, ())) for row in rows]

        return self._db.read(work)
