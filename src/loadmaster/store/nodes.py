"""Nodes as the database keeps them: identity by hostname, and the operator's switches.

Offers arrive for agents, which come and go under new agent ids, while a node's hostname is
stable; so nodes are upserted by hostname and the agent id is just its latest value. Being
seen again does not reactivate a deprecated node — that is an explicit decision — and the
last-offer stamps of many nodes are written in one statement, since they change every cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loadmaster.store.columns import UtcDateTime
from loadmaster.store.database import Database
from loadmaster.store.events import append_events
from loadmaster.store.records import EntityKind, NewEvent, NodeRecord, NodeSighting
from loadmaster.store.rows import chunks, node_of
from loadmaster.store.schema import nodes
from loadmaster.store.validation import NAME_MAX, check_text

REASON_MAX = 1000


def _upsert(connection: Connection, sightings: Sequence[NodeSighting], when: datetime) -> None:
    dialect_insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(nodes)
    stmt = stmt.on_conflict_do_update(
        index_elements=[nodes.c.hostname],
        set_={
            "agent_id": func.coalesce(stmt.excluded.agent_id, nodes.c.agent_id),
            "last_modified": stmt.excluded.last_modified,
        },
    )
    rows = [
        {
            "hostname": s.hostname,
            "agent_id": s.agent_id,
            "is_paused": False,
            "pause_reason": None,
            "is_active": True,
            "deprecated": None,
            "last_offer_received": None,
            "created": when,
            "last_modified": when,
        }
        for s in sightings
    ]
    connection.execute(stmt, rows)


class NodeRepository:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, sightings: Sequence[NodeSighting], *, when: datetime) -> list[NodeRecord]:
        """Create unknown hostnames, refresh the agent id of known ones; returns them all in
        the order given."""
        for sighting in sightings:
            check_text(sighting.hostname, "hostname", NAME_MAX)
            if sighting.agent_id is not None:
                check_text(sighting.agent_id, "agent_id", NAME_MAX)
        if not sightings:
            return []
        latest = {s.hostname: s for s in sightings}  # the last sighting of a hostname wins
        hostnames = list(latest)

        def work(connection: Connection) -> list[NodeRecord]:
            _upsert(connection, list(latest.values()), when)
            found: dict[str, NodeRecord] = {}
            for part in chunks(hostnames):
                stmt = select(nodes).where(nodes.c.hostname.in_(part))
                found.update((row.hostname, node_of(row)) for row in connection.execute(stmt))
            return [found[s.hostname] for s in sightings]

        return self._db.write(work)

    def pause(self, node_id: int, *, reason: str, when: datetime) -> NodeRecord:
        """No new work goes to a paused node; what runs there carries on."""
        check_text(reason, "reason", REASON_MAX)
        return self._change(
            node_id, when, "paused", {"is_paused": True, "pause_reason": reason}, reason
        )

    def resume(self, node_id: int, *, when: datetime) -> NodeRecord:
        return self._change(node_id, when, "resumed", {"is_paused": False, "pause_reason": None})

    def deprecate(self, node_id: int, *, when: datetime) -> NodeRecord:
        return self._change(node_id, when, "deprecated", {"is_active": False, "deprecated": when})

    def reactivate(self, node_id: int, *, when: datetime) -> NodeRecord:
        return self._change(node_id, when, "reactivated", {"is_active": True, "deprecated": None})

    def _change(
        self,
        node_id: int,
        when: datetime,
        what: str,
        values: dict[str, Any],
        reason: str | None = None,
    ) -> NodeRecord:
        def work(connection: Connection) -> NodeRecord:
            changed = connection.execute(
                update(nodes).where(nodes.c.id == node_id).values(**values, last_modified=when)
            ).rowcount
            if changed == 0:
                raise ValueError(f"node_id: no node with id {node_id}")
            detail = {"reason": reason} if reason is not None else {}
            append_events(connection, when, [NewEvent(EntityKind.NODE, node_id, what, detail)])
            row = connection.execute(select(nodes).where(nodes.c.id == node_id)).one()
            return node_of(row)

        return self._db.write(work)

    def record_offers(self, received: Mapping[int, datetime]) -> None:
        """Last-offer times of many nodes in one statement; unknown ids are ignored."""
        if not received:
            return
        stmt = (
            update(nodes)
            .where(nodes.c.id == bindparam("b_id"))
            .values(last_offer_received=bindparam("b_when", type_=UtcDateTime()))
        )
        params = [{"b_id": node_id, "b_when": when} for node_id, when in received.items()]
        self._db.write(lambda c: c.execute(stmt, params))

    def get(self, node_id: int) -> NodeRecord | None:
        stmt = select(nodes).where(nodes.c.id == node_id)
        row = self._db.read(lambda c: c.execute(stmt).first())
        return node_of(row) if row is not None else None

    def by_hostname(self, hostname: str) -> NodeRecord | None:
        stmt = select(nodes).where(nodes.c.hostname == hostname)
        row = self._db.read(lambda c: c.execute(stmt).first())
        return node_of(row) if row is not None else None

    def all(self) -> list[NodeRecord]:
        stmt = select(nodes).order_by(nodes.c.id)
        return self._db.read(lambda c: [node_of(row) for row in c.execute(stmt)])
