"""Bringing a database to the current schema, programmatically, when the store opens.

Users never run Alembic themselves: the version scripts ship inside the package and are found
through the package, not through an `alembic.ini`. Two processes opening the same new
database at once must not both create the tables, so the whole upgrade runs in one write
transaction that holds a lock for its duration — SQLite's write lock (`BEGIN IMMEDIATE`), or
a transaction-scoped advisory lock on PostgreSQL. Upgrading an up-to-date database changes
nothing, so opening is idempotent.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from loadmaster.store.database import Database

SCRIPT_LOCATION = "loadmaster.store:migrations"
# An arbitrary constant that names "the loadmaster schema" among advisory locks.
_ADVISORY_LOCK_KEY = 0x6C6F61646D73


def alembic_config(url: str | None = None) -> Config:
    """The configuration the store uses; also what a developer passes to
    `alembic.command.revision(config, message=..., autogenerate=True)` for a new script."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(db: Database, schema: str | None = None) -> str | None:
    """Apply every missing version script; returns the revision the database is at."""

    def work(connection: Connection) -> str | None:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
            if schema is not None:
                connection.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        head = head_revision()
        if current_revision(connection) == head:
            return head
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return current_revision(connection)

    return db.write(work)
