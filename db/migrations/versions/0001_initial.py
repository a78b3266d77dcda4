"""Initial schema: workspaces, schedules, job runs, messages, channel checkpoints.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00

Plain SQLAlchemy types only (no imports from db.models), so this revision stays the same
whatever the models become. Runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspaces")),
    )
    op.create_table(
        "backfill_schedules",
        sa.Column("schedule_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("cron_expression", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("days_to_backfill", sa.Integer(), nullable=False),
        sa.Column("include_all_channels", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("last_run_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("next_run_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name=op.f("fk_backfill_schedules_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", name=op.f("pk_backfill_schedules")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_backfill_schedules_workspace_id")),
    )
    op.create_table(
        "backfill_job_runs",
        sa.Column("job_run_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("job_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("messages_collected", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("channels_processed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("triggered_by", sa.Text(), nullable=True),
        sa.Column("started_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("completed_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("fire_time", UTC_TIMESTAMP, nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("channels_skipped", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "job_type IN ('scheduled', 'manual')", name=op.f("ck_backfill_job_runs_job_type")
        ),
        sa.CheckConstraint(
            "status IN ('running', 'success', 'failed', 'cancelled')",
            name=op.f("ck_backfill_job_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["backfill_schedules.schedule_id"],
            name=op.f("fk_backfill_job_runs_schedule_id_backfill_schedules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.workspace_id"],
            name=op.f("fk_backfill_job_runs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_run_id", name=op.f("pk_backfill_job_runs")),
        sa.UniqueConstraint(
            "schedule_id", "fire_time", name=op.f("uq_backfill_job_runs_schedule_id_fire_time")
        ),
    )
    op.create_index(
        op.f("ix_backfill_job_runs_workspace_id_started_at"),
        "backfill_job_runs",
        ["workspace_id", "started_at"],
        unique=False,
    )
    # One running run per workspace, enforced by the database across processes.
    op.create_index(
        "uq_backfill_job_runs_workspace_id_running",
        "backfill_job_runs",
        ["workspace_id"],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
        sqlite_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "messages",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("ts", sa.Text(), nullable=False),
        sa.Column("thread_ts", sa.Text(), nullable=True),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel_name", sa.Text(), nullable=False),
        sa.Column("stored_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "channel_id", "ts", name=op.f("pk_messages")),
    )
    op.create_index(
        op.f("ix_messages_workspace_id_channel_id_thread_ts"),
        "messages",
        ["workspace_id", "channel_id", "thread_ts"],
        unique=False,
    )
    op.create_table(
        "channel_checkpoints",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("channel_name", sa.Text(), nullable=False),
        sa.Column("job_run_id", sa.Integer(), nullable=True),
        sa.Column("phase", sa.Text(), nullable=True),
        sa.Column("window_oldest_ts", sa.Text(), nullable=True),
        sa.Column("window_latest_ts", sa.Text(), nullable=True),
        sa.Column("resume_latest_ts", sa.Text(), nullable=True),
        sa.Column("high_water_ts", sa.Text(), nullable=True),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "phase IS NULL OR phase IN ('history', 'threads', 'done')",
            name=op.f("ck_channel_checkpoints_phase"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "channel_id", name=op.f("pk_channel_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("channel_checkpoints")
    op.drop_index(op.f("ix_messages_workspace_id_channel_id_thread_ts"), table_name="messages")
    op.drop_table("messages")
    op.drop_index("uq_backfill_job_runs_workspace_id_running", table_name="backfill_job_runs")
    op.drop_index(
        op.f("ix_backfill_job_runs_workspace_id_started_at"), table_name="backfill_job_runs"
    )
    op.drop_table("backfill_job_runs")
    op.drop_table("backfill_schedules")
    op.drop_table("workspaces")
