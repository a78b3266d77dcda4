"""Replay guard: the signatures of Slack requests acted on in the last five minutes.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03 00:00:00

Plain SQLAlchemy types only (no imports from db.models). One row per signed request, kept until
its signature could no longer pass Slack's five-minute timestamp check (`valid_until`, Unix
seconds); every replica inserts here, so a replay sent to another replica is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_request_signatures",
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_seen_request_signatures")),
    )


def downgrade() -> None:
    op.drop_table("seen_request_signatures")
