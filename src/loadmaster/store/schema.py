"""The durable schema: one set of tables for SQLite and PostgreSQL.

The database itself guards the invariants a crash must never break, so that a bug in a
repository is an error rather than silent corruption:

* a job has at most one queue entry (`queue.job_id` is unique);
* a job has at most one execution that has not ended (a partial unique index), and an
  execution is RUNNING exactly while it has no `ended` time;
* ids of jobs, queue entries, executions and events are never reused (SQLite AUTOINCREMENT),
  so a placement made from a stale queue read can be recognised and refused.

The queue has two ordered indexes, one per queue mode, because the tie-break on `id` runs in
the same direction for FIFO and LIFO while `queued` runs in opposite directions: a single
index could serve only one of them without a sort of the whole queue. Both end in
`job_type_id`, so that entries of excluded job types (paused, at their limit) are skipped on
the index alone, without reading their rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from loadmaster.store.columns import UtcDateTime, json_type

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELED")
EXECUTION_STATUSES = ("RUNNING", "COMPLETED", "FAILED", "CANCELED")
STEP_KINDS = ("pull", "pre", "main", "post")

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Event ids grow without bound; everything else fits 32 bits comfortably. SQLite needs
# INTEGER for its rowid alias, so the wide type is PostgreSQL only.
_EventId = BigInteger().with_variant(Integer(), "sqlite")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


job_types = Table(
    "job_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("resources", json_type(), nullable=False),
    Column("max_scheduled", Integer, nullable=True),  # None = unlimited, 0 = none may run
    Column("is_paused", Boolean, nullable=False, default=False),
    Column("paused", UtcDateTime, nullable=True),
    Column("is_system", Boolean, nullable=False, default=False),
    Column("is_long_running", Boolean, nullable=False, default=False),
    Column("max_tries", Integer, nullable=False, default=3),
    Column("timeout_seconds", Float, nullable=True),
    Column("environment", json_type(), nullable=False),
    Column("secret_keys", json_type(), nullable=False),
    Column("retry_main_failures", Boolean, nullable=False, default=False),
    Column("unmet_resources", Text, nullable=True),
    Column("created", UtcDateTime, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    UniqueConstraint("name", "version", name="uq_job_types_name_version"),
    CheckConstraint("max_tries >= 1", name="max_tries_positive"),
    CheckConstraint("max_scheduled IS NULL OR max_scheduled >= 0", name="max_scheduled_range"),
    CheckConstraint("timeout_seconds IS NULL OR timeout_seconds > 0", name="timeout_positive"),
    sqlite_autoincrement=True,
)

job_type_steps = Table(
    "job_type_steps",
    metadata,
    Column(
        "job_type_id",
        Integer,
        ForeignKey("job_types.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("command", json_type(), nullable=True),  # argv list; None = the backend's default
    Column("shell", Boolean, nullable=False, default=False),
    UniqueConstraint("job_type_id", "kind", name="uq_job_type_steps_kind"),
    CheckConstraint(_one_of("kind", STEP_KINDS), name="kind_known"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("hostname", String(255), nullable=False, unique=True),
    Column("agent_id", String(255), nullable=True),
    Column("is_paused", Boolean, nullable=False, default=False),
    Column("pause_reason", Text, nullable=True),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("deprecated", UtcDateTime, nullable=True),
    Column("last_offer_received", UtcDateTime, nullable=True),
    Column("created", UtcDateTime, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_type_id", Integer, ForeignKey("job_types.id"), nullable=False),
    Column("priority", Integer, nullable=False),  # lower runs first
    Column("status", String(16), nullable=False),
    Column("num_exes", Integer, nullable=False, default=0),
    Column("max_tries", Integer, nullable=False),
    Column("resources", json_type(), nullable=False),
    Column("input_workspaces", json_type(), nullable=False),
    Column("output_workspaces", json_type(), nullable=False),
    Column("input_file_size_mib", Float, nullable=False, default=0.0),
    Column("timeout_seconds", Float, nullable=True),
    Column("environment", json_type(), nullable=False),  # [[name, value], ...] in order
    Column("idempotency_key", String(255), nullable=True, unique=True),
    Column("error", String(64), nullable=True),
    Column("cancel_requested", UtcDateTime, nullable=True),
    Column("created", UtcDateTime, nullable=False),
    Column("queued", UtcDateTime, nullable=True),
    Column("started", UtcDateTime, nullable=True),
    Column("ended", UtcDateTime, nullable=True),
    Column("last_modified", UtcDateTime, nullable=False),
    CheckConstraint(_one_of("status", JOB_STATUSES), name="status_known"),
    Index("ix_jobs_status_id", "status", "id"),
    Index("ix_jobs_job_type_id_id", "job_type_id", "id"),
    Index("ix_jobs_created", "created"),
    sqlite_autoincrement=True,
)

queue = Table(
    "queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False, unique=True),
    Column("job_type_id", Integer, ForeignKey("job_types.id"), nullable=False),
    Column("exe_num", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("queued", UtcDateTime, nullable=False),
    Column("resources", json_type(), nullable=False),
    Column("is_canceled", Boolean, nullable=False, default=False),
    Column("input_workspaces", json_type(), nullable=False),
    Column("output_workspaces", json_type(), nullable=False),
    Column("input_file_size_mib", Float, nullable=False, default=0.0),
    Column("timeout_seconds", Float, nullable=True),
    Column("environment", json_type(), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Index("ix_queue_fifo", "priority", "queued", "id", "job_type_id"),
    Index("ix_queue_job_type", "job_type_id", "priority", "queued"),
    sqlite_autoincrement=True,
)
# LIFO keeps the id tie-break ascending, so it cannot reuse the FIFO index backwards.
Index("ix_queue_lifo", queue.c.priority, queue.c.queued.desc(), queue.c.id, queue.c.job_type_id)

job_executions = Table(
    "job_executions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("job_type_id", Integer, ForeignKey("job_types.id"), nullable=False),
    Column("queue_id", Integer, nullable=False, unique=True),  # the entry it was made from
    Column("exe_num", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("node_id", Integer, ForeignKey("nodes.id"), nullable=True),
    Column("agent_id", String(255), nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", String(64), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("resources", json_type(), nullable=False),
    Column("input_file_size_mib", Float, nullable=False, default=0.0),
    Column("timeout_seconds", Float, nullable=True),
    Column("queued", UtcDateTime, nullable=False),
    Column("started", UtcDateTime, nullable=True),
    Column("ended", UtcDateTime, nullable=True),
    UniqueConstraint("job_id", "exe_num", name="uq_job_executions_job_exe_num"),
    CheckConstraint(_one_of("status", EXECUTION_STATUSES), name="status_known"),
    CheckConstraint(
        "(status = 'RUNNING' AND ended IS NULL) OR (status <> 'RUNNING' AND ended IS NOT NULL)",
        name="running_iff_not_ended",
    ),
    Index(
        "ux_job_executions_live_job",
        "job_id",
        unique=True,
        sqlite_where=text("ended IS NULL"),
        postgresql_where=text("ended IS NULL"),
    ),
    sqlite_autoincrement=True,
)

job_execution_tasks = Table(
    "job_execution_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "execution_id",
        Integer,
        ForeignKey("job_executions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("task_id", String(255), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("agent_id", String(255), nullable=True),
    Column("status", String(16), nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("launched", UtcDateTime, nullable=True),
    Column("started", UtcDateTime, nullable=True),
    Column("ended", UtcDateTime, nullable=True),
    Column("last_status_update", UtcDateTime, nullable=True),
    sqlite_autoincrement=True,
)

scheduler = Table(
    "scheduler",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("is_paused", Boolean, nullable=False, default=False),
    Column("queue_mode", String(4), nullable=False, default="FIFO"),
    Column("queue_limit", Integer, nullable=False, default=500),
    Column("last_modified", UtcDateTime, nullable=True),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint(_one_of("queue_mode", ("FIFO", "LIFO")), name="queue_mode_known"),
    CheckConstraint("queue_limit >= 0", name="queue_limit_range"),
)

events = Table(
    "events",
    metadata,
    Column("id", _EventId, primary_key=True),
    Column("occurred", UtcDateTime, nullable=False),
    Column("entity_kind", String(32), nullable=False),
    Column("entity_id", Integer, nullable=False),
    Column("what", String(64), nullable=False),
    Column("detail", json_type(), nullable=False),
    Index("ix_events_entity", "entity_kind", "entity_id", "id"),
    sqlite_autoincrement=True,
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Column("last_modified", UtcDateTime, nullable=False),
)

FRAMEWORK_ID_KEY = "framework_id"
