"""Multi-workspace mode: Slack installations (bot tokens encrypted at rest) and OAuth states.

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-07 00:00:00

Plain SQLAlchemy types only (no imports from db.models). New tables only, so nothing existing
changes and single-workspace databases simply carry two empty tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "installations",
        # "<enterprise_id>:<team_id>" (empty for absent): one row per pair, NULLs included.
        sa.Column("install_key", sa.Text(), nullable=False),
        sa.Column("enterprise_id", sa.Text(), nullable=True),
        sa.Column("enterprise_name", sa.Text(), nullable=True),
        sa.Column("enterprise_url", sa.Text(), nullable=True),
        sa.Column("team_id", sa.Text(), nullable=True),
        sa.Column("team_name", sa.Text(), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("app_id", sa.Text(), nullable=True),
        sa.Column("bot_id", sa.Text(), nullable=True),
        sa.Column("bot_user_id", sa.Text(), nullable=True),
        sa.Column("bot_scopes", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("installer_user_id", sa.Text(), nullable=False),
        sa.Column("token_type", sa.Text(), nullable=True),
        sa.Column("bot_token_encrypted", sa.Text(), nullable=True),
        sa.Column("bot_refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("bot_token_expires_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("installed_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'needs_reinstall', 'revoked')",
            name=op.f("ck_installations_status"),
        ),
        sa.PrimaryKeyConstraint("install_key", name=op.f("pk_installations")),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.Text(), nullable=False),
        sa.Column("expire_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    op.create_index("ix_oauth_states_expire_at", "oauth_states", ["expire_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_oauth_states_expire_at", table_name="oauth_states")
    op.drop_table("oauth_states")
    op.drop_table("installations")
