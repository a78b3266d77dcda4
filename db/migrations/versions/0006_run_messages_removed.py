"""How many stored messages each run removed because Slack no longer had them (PRUNE_DELETED).

Revision ID: 0006
Revises: 0005
Create Date: 2025-01-06 00:00:00

Plain SQLAlchemy types only (no imports from db.models). Batch mode, so SQLite can add the column
too; nullable, so existing rows stay valid (a run from before, or one that did not prune, has no
count).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("backfill_job_runs") as batch:
        # Summed over every attempt of the run; null when none of them pruned.
        batch.add_column(sa.Column("messages_removed", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("backfill_job_runs") as batch:
        batch.drop_column("messages_removed")
