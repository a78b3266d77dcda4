"""The Enterprise Grid organisation a workspace belongs to, as its verified requests say.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 00:00:00

An org-wide install names the organisation, not its workspaces: a scheduled run of one of them
finds its token through this column. Plain SQLAlchemy types only; batch mode for SQLite;
nullable (a workspace outside any organisation, or not seen in multi-workspace mode yet).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("enterprise_id", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("enterprise_id")
