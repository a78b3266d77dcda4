"""Run lifecycle: cancel requests, ownership, attempts and retries on runs; why a schedule paused.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00

Plain SQLAlchemy types only (no imports from db.models). Batch mode, so SQLite can add the
columns too. Every new column is nullable or has a server default: existing rows stay valid.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("backfill_job_runs") as batch:
        batch.add_column(sa.Column("cancel_requested_by", sa.Text(), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", UTC_TIMESTAMP, nullable=True))
        # Automatic retries already made of this run (0 for the first attempt).
        batch.add_column(
            sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        # Times a process died while running it (a graceful release does not count).
        batch.add_column(
            sa.Column("interruptions", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        # The process that runs it now; null when released or finished.
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
        # When an automatic retry of this failed run is due; null when none is pending.
        batch.add_column(sa.Column("retry_at", UTC_TIMESTAMP, nullable=True))
        # The channels asked for; null means all (needed to resume or retry the same run).
        batch.add_column(sa.Column("channel_ids", sa.JSON(), nullable=True))
    op.create_index(
        "ix_backfill_job_runs_retry_at",
        "backfill_job_runs",
        ["retry_at"],
        unique=False,
        postgresql_where=sa.text("retry_at IS NOT NULL"),
        sqlite_where=sa.text("retry_at IS NOT NULL"),
    )
    with op.batch_alter_table("backfill_schedules") as batch:
        batch.add_column(sa.Column("paused_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backfill_schedules") as batch:
        batch.drop_column("paused_reason")
    op.drop_index("ix_backfill_job_runs_retry_at", table_name="backfill_job_runs")
    with op.batch_alter_table("backfill_job_runs") as batch:
        for name in (
            "channel_ids",
            "retry_at",
            "owner",
            "interruptions",
            "attempt",
            "cancel_requested_at",
            "cancel_requested_by",
        ):
            batch.drop_column(name)
