"""The scheduler's own row (pause, queue mode, queue limit) and the key/value settings.

The queue mode is normalised before it is stored, so a lowercase "lifo" can never select a
third ordering (scheduling spec §12.2 defect 11). The framework id lives in the settings table
so that a cluster backend can re-register under the same id after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Unpack

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loadmaster.model.queue import QueueMode
from loadmaster.model.settings import SchedulerSettings
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.records import EntityKind, NewEvent, SchedulerChanges
from loadmaster.store.schema import FRAMEWORK_ID_KEY, scheduler, settings
from loadmaster.store.validation import check_int, check_text

SCHEDULER_ROW = 1
KEY_MAX = 128


def _read(connection: Connection) -> SchedulerSettings:
    row = connection.execute(select(scheduler).where(scheduler.c.id == SCHEDULER_ROW)).one()
    return SchedulerSettings(
        is_paused=bool(row.is_paused),
        queue_mode=QueueMode.parse(row.queue_mode),
        queue_limit=row.queue_limit,
    )


def _normalise(changes: SchedulerChanges) -> dict[str, object]:
    values: dict[str, object] = {}
    if "is_paused" in changes:
        if not isinstance(changes["is_paused"], bool):
            raise ValueError("is_paused: must be true or false")
        values["is_paused"] = changes["is_paused"]
    if "queue_mode" in changes:
        values["queue_mode"] = str(QueueMode.parse(str(changes["queue_mode"])))
    if "queue_limit" in changes:
        check_int(changes["queue_limit"], "queue_limit", 0)
        values["queue_limit"] = changes["queue_limit"]
    return values


class ConfigRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def scheduler(self) -> SchedulerSettings:
        return self._db.read(_read)

    def update_scheduler(
        self, *, when: datetime, **changes: Unpack[SchedulerChanges]
    ) -> SchedulerSettings:
        values = _normalise(changes)

        def work(connection: Connection) -> SchedulerSettings:
            if values:
                connection.execute(
                    update(scheduler)
                    .where(scheduler.c.id == SCHEDULER_ROW)
                    .values(**values, last_modified=when)
                )
                detail = {key: str(value) for key, value in values.items()}
                event = NewEvent(EntityKind.SCHEDULER, SCHEDULER_ROW, "updated", detail)
                append_events(connection, when, [event])
            return _read(connection)

        return self._db.write(work)

    def get_setting(self, key: str) -> str | None:
        stmt = select(settings.c.value).where(settings.c.key == key)
        return self._db.read(lambda c: c.execute(stmt).scalar())

    def set_setting(self, key: str, value: str | None, *, when: datetime) -> None:
        """None removes the key."""
        check_text(key, "key", KEY_MAX)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"value: must be a string, not {value!r}")

        def work(connection: Connection) -> None:
            if value is None:
                connection.execute(delete(settings).where(settings.c.key == key))
                return
            dialect_insert = (
                postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            )
            stmt = dialect_insert(settings).values(key=key, value=value, last_modified=when)
            connection.execute(
                stmt.on_conflict_do_update(
                    index_elements=[settings.c.key],
                    set_={
                        "value": stmt.excluded.value,
                        "last_modified": stmt.excluded.last_modified,
                    },
                )
            )

        self._db.write(work)

    def framework_id(self) -> str | None:
        return self.get_setting(FRAMEWORK_ID_KEY)

    def set_framework_id(self, framework_id: str | None, *, when: datetime) -> None:
        self.set_setting(FRAMEWORK_ID_KEY, framework_id, when=when)
