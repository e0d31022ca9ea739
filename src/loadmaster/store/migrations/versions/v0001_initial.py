"""The initial schema: job types and their steps, jobs, the queue, executions and their
tasks, nodes, the scheduler row, the event log and the settings table.

Revision ID: 0001
Revises:
Create Date: 2024-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from loadmaster.store.columns import UtcDateTime, json_type

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _created_modified() -> list[sa.Column[Any]]:
    return [
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.Column("last_modified", UtcDateTime(), nullable=False),
    ]


def _job_types() -> None:
    op.create_table(
        "job_types",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("resources", json_type(), nullable=False),
        sa.Column("max_scheduled", sa.Integer(), nullable=True),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("paused", UtcDateTime(), nullable=True),
        sa.Column("is_system", sa.Boolean(), nullable=False),
        sa.Column("is_long_running", sa.Boolean(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("environment", json_type(), nullable=False),
        sa.Column("secret_keys", json_type(), nullable=False),
        sa.Column("retry_main_failures", sa.Boolean(), nullable=False),
        sa.Column("unmet_resources", sa.Text(), nullable=True),
        *_created_modified(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_types")),
        sa.UniqueConstraint("name", "version", name=op.f("uq_job_types_name_version")),
        sa.CheckConstraint("max_tries >= 1", name=op.f("ck_job_types_max_tries_positive")),
        sa.CheckConstraint(
            "max_scheduled IS NULL OR max_scheduled >= 0",
            name=op.f("ck_job_types_max_scheduled_range"),
        ),
        sa.CheckConstraint(
            "timeout_seconds IS NULL OR timeout_seconds > 0",
            name=op.f("ck_job_types_timeout_positive"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "job_type_steps",
        sa.Column("job_type_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("command", json_type(), nullable=True),
        sa.Column("shell", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("job_type_id", "position", name=op.f("pk_job_type_steps")),
        sa.ForeignKeyConstraint(
            ["job_type_id"],
            ["job_types.id"],
            name=op.f("fk_job_type_steps_job_type_id_job_types"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("job_type_id", "kind", name=op.f("uq_job_type_steps_kind")),
        sa.CheckConstraint(
            "kind IN ('pull', 'pre', 'main', 'post')", name=op.f("ck_job_type_steps_kind_known")
        ),
    )


def _nodes() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("deprecated", UtcDateTime(), nullable=True),
        sa.Column("last_offer_received", UtcDateTime(), nullable=True),
        *_created_modified(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("hostname", name=op.f("uq_nodes_hostname")),
        sqlite_autoincrement=True,
    )


def _jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_type_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("num_exes", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("resources", json_type(), nullable=False),
        sa.Column("input_workspaces", json_type(), nullable=False),
        sa.Column("output_workspaces", json_type(), nullable=False),
        sa.Column("input_file_size_mib", sa.Float(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("environment", json_type(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("cancel_requested", UtcDateTime(), nullable=True),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.Column("queued", UtcDateTime(), nullable=True),
        sa.Column("started", UtcDateTime(), nullable=True),
        sa.Column("ended", UtcDateTime(), nullable=True),
        sa.Column("last_modified", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.ForeignKeyConstraint(
            ["job_type_id"], ["job_types.id"], name=op.f("fk_jobs_job_type_id_job_types")
        ),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobs_idempotency_key")),
        sa.CheckConstraint(
            "status IN ('QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELED')",
            name=op.f("ck_jobs_status_known"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_jobs_status_id"), "jobs", ["status", "id"])
    op.create_index(op.f("ix_jobs_job_type_id_id"), "jobs", ["job_type_id", "id"])
    op.create_index(op.f("ix_jobs_created"), "jobs", ["created"])


def _queue() -> None:
    op.create_table(
        "queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("job_type_id", sa.Integer(), nullable=False),
        sa.Column("exe_num", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("queued", UtcDateTime(), nullable=False),
        sa.Column("resources", json_type(), nullable=False),
        sa.Column("is_canceled", sa.Boolean(), nullable=False),
        sa.Column("input_workspaces", json_type(), nullable=False),
        sa.Column("output_workspaces", json_type(), nullable=False),
        sa.Column("input_file_size_mib", sa.Float(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("environment", json_type(), nullable=False),
        sa.Column("created", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_queue_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["job_type_id"], ["job_types.id"], name=op.f("fk_queue_job_type_id_job_types")
        ),
        sa.UniqueConstraint("job_id", name=op.f("uq_queue_job_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_queue_fifo"), "queue", ["priority", "queued", "id", "job_type_id"])
    op.create_index(
        op.f("ix_queue_lifo"), "queue", ["priority", sa.text("queued DESC"), "id", "job_type_id"]
    )
    op.create_index(op.f("ix_queue_job_type"), "queue", ["job_type_id", "priority", "queued"])


def _executions() -> None:
    op.create_table(
        "job_executions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("job_type_id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("exe_num", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("resources", json_type(), nullable=False),
        sa.Column("input_file_size_mib", sa.Float(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=True),
        sa.Column("queued", UtcDateTime(), nullable=False),
        sa.Column("started", UtcDateTime(), nullable=True),
        sa.Column("ended", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_executions")),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_job_executions_job_id_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["job_type_id"],
            ["job_types.id"],
            name=op.f("fk_job_executions_job_type_id_job_types"),
        ),
        sa.ForeignKeyConstraint(
            ["node_id"], ["nodes.id"], name=op.f("fk_job_executions_node_id_nodes")
        ),
        sa.UniqueConstraint("queue_id", name=op.f("uq_job_executions_queue_id")),
        sa.UniqueConstraint("job_id", "exe_num", name=op.f("uq_job_executions_job_exe_num")),
        sa.CheckConstraint(
            "status IN ('RUNNING', 'COMPLETED', 'FAILED', 'CANCELED')",
            name=op.f("ck_job_executions_status_known"),
        ),
        sa.CheckConstraint(
            "(status = 'RUNNING' AND ended IS NULL) OR (status <> 'RUNNING' AND ended IS NOT NULL)",
            name=op.f("ck_job_executions_running_iff_not_ended"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ux_job_executions_live_job"),
        "job_executions",
        ["job_id"],
        unique=True,
        sqlite_where=sa.text("ended IS NULL"),
        postgresql_where=sa.text("ended IS NULL"),
    )
    op.create_table(
        "job_execution_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("launched", UtcDateTime(), nullable=True),
        sa.Column("started", UtcDateTime(), nullable=True),
        sa.Column("ended", UtcDateTime(), nullable=True),
        sa.Column("last_status_update", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_execution_tasks")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["job_executions.id"],
            name=op.f("fk_job_execution_tasks_execution_id_job_executions"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("task_id", name=op.f("uq_job_execution_tasks_task_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_job_execution_tasks_execution_id"), "job_execution_tasks", ["execution_id"]
    )


def _scheduler_events_settings() -> None:
    scheduler = op.create_table(
        "scheduler",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("queue_mode", sa.String(4), nullable=False),
        sa.Column("queue_limit", sa.Integer(), nullable=False),
        sa.Column("last_modified", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler")),
        sa.CheckConstraint("id = 1", name=op.f("ck_scheduler_single_row")),
        sa.CheckConstraint(
            "queue_mode IN ('FIFO', 'LIFO')", name=op.f("ck_scheduler_queue_mode_known")
        ),
        sa.CheckConstraint("queue_limit >= 0", name=op.f("ck_scheduler_queue_limit_range")),
    )
    op.bulk_insert(
        scheduler,
        [{"id": 1, "is_paused": False, "queue_mode": "FIFO", "queue_limit": 500}],
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred", UtcDateTime(), nullable=False),
        sa.Column("entity_kind", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(64), nullable=False),
        sa.Column("detail", json_type(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_events_entity"), "events", ["entity_kind", "entity_id", "id"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("last_modified", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )


def upgrade() -> None:
    _job_types()
    _nodes()
    _jobs()
    _queue()
    _executions()
    _scheduler_events_settings()


def downgrade() -> None:
    for table in (
        "settings",
        "events",
        "scheduler",
        "job_execution_tasks",
        "job_executions",
        "queue",
        "jobs",
        "nodes",
        "job_type_steps",
        "job_types",
    ):
        op.drop_table(table)
