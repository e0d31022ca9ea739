"""The append-only event log: what happened to an entity, when, and why.

Events are written in the same transaction as the change they describe, by the repository
making the change, so the log can never claim something that was rolled back, nor miss
something that was committed. Nothing ever updates or deletes an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from loadmaster.store.bulk import insert_rows
from loadmaster.store.database import Database
from loadmaster.store.records import EntityKind, Event, NewEvent
from loadmaster.store.rows import event_of
from loadmaster.store.schema import events
from loadmaster.store.validation import check_text

MAX_PAGE = 1000


def append_events(connection: Connection, when: datetime, new: Sequence[NewEvent]) -> None:
    """Bulk insert inside the caller's transaction."""
    if not new:
        return
    insert_rows(
        connection,
        events,
        [
            {
                "occurred": when,
                "entity_kind": str(e.entity_kind),
                "entity_id": e.entity_id,
                "what": e.what,
                "detail": e.detail,
            }
            for e in new
        ],
    )


class EventRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def append(self, new: Sequence[NewEvent], *, when: datetime) -> None:
        """For events that accompany no other change (a warning raised, a node seen)."""
        for event in new:
            check_text(event.what, "what", 64)
        self._db.write(lambda c: append_events(c, when, new))

    def list_for(
        self, kind: EntityKind, entity_id: int, *, after_id: int = 0, limit: int = 100
    ) -> list[Event]:
        """Oldest first; pass the last id seen as `after_id` to read on."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE}, not {limit}")
        stmt = (
            select(events)
            .where(
                events.c.entity_kind == str(kind),
                events.c.entity_id == entity_id,
                events.c.id > after_id,
            )
            .order_by(events.c.id)
            .limit(limit)
        )
        return self._db.read(lambda c: [event_of(row) for row in c.execute(stmt)])

    def recent(self, *, limit: int = 100) -> list[Event]:
        """Newest first, across all entities."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: must be between 1 and {MAX_PAGE}, not {limit}")
        stmt = select(events).order_by(events.c.id.desc()).limit(limit)
        return self._db.read(lambda c: [event_of(row) for row in c.execute(stmt)])
