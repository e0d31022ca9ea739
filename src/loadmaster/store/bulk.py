"""Bulk writes at driver speed: the paths that move thousands of rows per call.

A cycle commits up to 10,000 executions and a batch submit may queue as many jobs; through
SQLAlchemy's per-row parameter processing that costs tens of microseconds a row per table.
Here rows are converted once per column kind and handed to the driver's `executemany`, still
inside the caller's transaction (and still visible to SQLAlchemy's statement events).

`write_rows` goes one step further for rows already in the driver's form: on PostgreSQL one
`COPY … FROM STDIN` (one statement, however many rows, instead of one executed statement per
row), on SQLite one `executemany` of a single prepared statement. The COPY runs on the
transaction's own connection, so it commits or rolls back with the rest; a driver error it
raises is turned into the SQLAlchemy error the same failure would raise from any other
statement (and a lost connection is invalidated), so retries and error mapping see no
difference. Being no SQLAlchemy statement, the COPY alone is invisible to statement events.

Ids are allocated before the insert rather than read back with RETURNING, so that the
correlation of rows to ids is exact on both databases: from the table's sequence on
PostgreSQL, and on SQLite from AUTOINCREMENT's high-water mark, which is safe because every
write transaction holds SQLite's one write lock (`BEGIN IMMEDIATE`) while it allocates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, Connection, Table, text
from sqlalchemy import exc as sa_exc

from loadmaster.store.columns import UtcDateTime, as_utc
from loadmaster.store.database import dump_json

if TYPE_CHECKING:
    import psycopg


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
    # One row back, an array, rather than one row per id.
    ids = connection.execute(
        text(
            "SELECT array_agg(nextval(s.seq)) FROM"
            " (SELECT pg_get_serial_sequence(:t, 'id')::regclass AS seq) AS s"
            " CROSS JOIN generate_series(1, :n)"
        ),
        {"t": table.name, "n": count},
    ).scalar_one()
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


def time_converter(dialect: str) -> Callable[[Any], Any]:
    """The driver form of a `UtcDateTime` value, for rows handed to `write_rows`."""
    return _sqlite_time({}) if dialect == "sqlite" else _postgres_time


def write_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert rows already in driver form (times from `time_converter`, JSON as text), in
    the order given: one COPY on PostgreSQL through psycopg, else one `executemany`."""
    if not rows:
        return
    dialect = connection.dialect.name
    names = ", ".join(columns)
    if dialect == "postgresql" and connection.dialect.driver == "psycopg":
        copy_rows(connection, f"COPY {table.name} ({names}) FROM STDIN", rows)
        return
    marks = ", ".join(_placeholder(table, name, dialect) for name in columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"
    connection.exec_driver_sql(sql, list(rows))


def copy_rows(connection: Connection, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL only: stream `rows` through `statement` (`COPY … FROM STDIN`, text format)
    on the connection's current transaction."""
    dbapi_connection = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
    with (
        driver_errors(connection, statement),
        dbapi_connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        write_row = copy.write_row
        for row in rows:
            write_row(row)


@contextmanager
def driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """Raise a driver error from work done on the raw DBAPI connection as SQLAlchemy would
    have raised it from `connection.execute`: wrapped in the matching `DBAPIError` subclass,
    with the connection invalidated when the error means it was lost."""
    dialect = connection.dialect
    base = dialect.loaded_dbapi.Error
    try:
        yield
    except base as error:
        dbapi_connection = connection.connection.dbapi_connection
        lost = dialect.is_disconnect(error, dbapi_connection, None)
        if lost:
            connection.invalidate(error)
        raise sa_exc.DBAPIError.instance(
            statement, None, error, base, connection_invalidated=lost, dialect=dialect
        ) from error
