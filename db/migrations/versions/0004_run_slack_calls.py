"""What each run asked of Slack: calls per method, time waited for Slack's limits, 429s.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04 00:00:00

Plain SQLAlchemy types only (no imports from db.models). Batch mode, so SQLite can add the column
too; nullable, so existing rows stay valid (a run from before has no figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backfill_job_runs") as batch:
        # [{"method", "calls", "waited_s", "rate_limited", "spaced"}, ...], every attempt summed.
        batch.add_column(sa.Column("slack_calls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backfill_job_runs") as batch:
        batch.drop_column("slack_calls")
