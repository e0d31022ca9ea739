"""Column types shared by the schema and the migrations.

Both databases must round-trip values identically, so the differences are absorbed here:
timestamps are always UTC (SQLite has no time zones; naive values in are read as UTC, values
out are always aware), and JSON is JSONB on PostgreSQL and text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from loadmaster.resources import Resources, from_json


def as_utc(value: datetime) -> datetime:
    """Naive times are read as UTC, the convention of the rest of the project."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC; on SQLite its fixed-width text form sorts chronologically,
    which the queue index relies on."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def json_type() -> TypeEngine[Any]:
    return JSON().with_variant(JSONB(), "postgresql")


def resources_to_json(resources: Resources) -> dict[str, float]:
    return resources.as_dict()


def resources_from_json(data: object) -> Resources:
    """Accepts both the bare mapping we store and the reference's versioned form."""
    if not isinstance(data, dict):
        raise ValueError("resources: stored value is not an object")
    if isinstance(data.get("resources"), dict):  # not a resource that is named "resources"
        return from_json(data)
    return Resources({str(name): float(value) for name, value in data.items()})
