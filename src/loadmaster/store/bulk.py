"""Bulk writes at driver speed: the paths that move thousands of rows per call.

A cycle commits up to 10,000 executions and a batch submit may queue as many jobs; through
SQLAlchemy's per-row parameter processing that costs tens of microseconds a row per table.
Here rows are converted once per column kind and handed to the driver's `executemany`, still
inside the caller's transaction (and still visible to SQLAlchemy's statement events).

Ids are allocated before the insert rather than read back with RETURNING, so that the
correlation of rows to ids is exact on both databases: from the table's sequence on
PostgreSQL, and on SQLite from AUTOINCREMENT's high-water mark, which is safe because every
write transaction holds SQLite's one write lock (`BEGIN IMMEDIATE`) while it allocates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, text

from loadmaster.store.columns import UtcDateTime, as_utc
from loadmaster.store.database import dump_json


class RawJson(str):
    """A value already serialised to JSON text (serialise a shared value once, not per row)."""

    __slots__ = ()


def raw_json(value: object) -> RawJson:
    return RawJson(dump_json(value))


def allocate_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` new ids for `table`, ascending, never used before and never to be reused."""
    if count <= 0:
        return []
    if connection.dialect.name == "sqlite":
        top = connection.execute(
            text(
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = :t), 0),"
                f" coalesce((SELECT max(id) FROM {table.name}), 0))"
            ),
            {"t": table.name},
        ).scalar_one()
        return list(range(int(top) + 1, int(top) + 1 + count))
    ids = connection.execute(
        text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table.name, "n": count},
    ).scalars()
    return sorted(int(i) for i in ids)


def _sqlite_time(memo: dict[datetime, str]) -> Callable[[Any], Any]:
    """The exact text SQLAlchemy's SQLite DATETIME stores, so both writers sort together."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        found = memo.get(value)
        if found is None:
            d = as_utc(value)
            found = (
                f"{d.year:04d}-{d.month:02d}-{d.day:02d} "
                f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}"
            )
            memo[value] = found
        return found

    return convert


def _postgres_time(value: Any) -> Any:
    return None if value is None else as_utc(value)


def _json(value: Any) -> Any:
    if value is None:
        return None
    return value if isinstance(value, RawJson) else dump_json(value)


def _same(value: Any) -> Any:
    return value


def _converters(table: Table, columns: Sequence[str], dialect: str) -> list[Callable[[Any], Any]]:
    time_of = _sqlite_time({}) if dialect == "sqlite" else _postgres_time
    out: list[Callable[[Any], Any]] = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, UtcDateTime):
            out.append(time_of)
        elif isinstance(kind, JSON):
            out.append(_json)
        else:
            out.append(_same)
    return out


def _converted(
    values: list[Any], special: Sequence[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    for index, convert in special:
        values[index] = convert(values[index])
    return tuple(values)


def _placeholder(table: Table, name: str, dialect: str) -> str:
    if dialect == "sqlite":
        return "?"
    return "%s::jsonb" if isinstance(table.c[name].type, JSON) else "%s"


def insert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows that all have the same keys, in one `executemany`."""
    if not rows:
        return
    dialect = connection.dialect.name
    columns = list(rows[0])
    convert = _converters(table, columns, dialect)
    names = ", ".join(columns)
    marks = ", ".join(_placeholder(table, name, dialect) for name in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"
    special = [(i, f) for i, f in enumerate(convert) if f is not _same]
    values = [_converted([row[name] for name in columns], special) for row in rows]
    if len(values) == 1:
        connection.exec_driver_sql(sql, values[0])
    else:
        connection.exec_driver_sql(sql, values)
