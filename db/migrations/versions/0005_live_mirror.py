"""Live mirror: the event inbox, seen event ids, message tombstones, the mirror's state, and the
edit version of each stored message.

Revision ID: 0005
Revises: 0004
Create Date: 2025-01-05 00:00:00

Plain SQLAlchemy types only (no imports from db.models). Batch mode for the new column, so SQLite
can add it too; nullable, so existing rows stay valid (never edited, as far as we know).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)

# The tombstone rule, enforced by the database for every writer of `messages` (a run's batch, a
# live event, anything later): an insert or upsert of a message Slack deleted (or of any message
# of a channel Slack deleted: the tombstone with ts '*'), or of a copy no newer than the edit
# that disqualified it, is skipped (the row, not the statement).
_FORBIDDEN = """
    EXISTS (SELECT 1 FROM message_tombstones t
            WHERE t.workspace_id = NEW.workspace_id AND t.channel_id = NEW.channel_id
              AND (t.ts = NEW.ts OR t.ts = '*')
              AND (t.reason = 'deleted'
                   OR coalesce(t.edited_ts, '') {collate} >= coalesce(NEW.edited_ts, '') {collate}))
"""
SQLITE_TRIGGER = f"""
CREATE TRIGGER messages_keep_tombstoned_out BEFORE INSERT ON messages
WHEN {_FORBIDDEN.format(collate="")}
BEGIN SELECT RAISE(IGNORE); END
"""
POSTGRES_FUNCTION = f"""
CREATE FUNCTION messages_keep_tombstoned_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {_FORBIDDEN.format(collate='COLLATE "C"')} THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$
"""
POSTGRES_TRIGGER = """
CREATE TRIGGER messages_keep_tombstoned_out BEFORE INSERT ON messages
FOR EACH ROW EXECUTE FUNCTION messages_keep_tombstoned_out()
"""


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("edited_ts", sa.Text(), nullable=True))
    op.create_table(
        "message_tombstones",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("ts", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("edited_ts", sa.Text(), nullable=True),
        sa.Column("removed_at", UTC_TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "reason IN ('deleted', 'disqualified')", name=op.f("ck_message_tombstones_reason")
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "channel_id", "ts", name=op.f("pk_message_tombstones")
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)
    op.create_table(
        "mirror_inbox",
        sa.Column("inbox_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=True),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("event_time", UTC_TIMESTAMP, nullable=True),
        sa.Column("received_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("inbox_id", name=op.f("pk_mirror_inbox")),
    )
    op.create_index(
        "ix_mirror_inbox_workspace_id_channel_id_inbox_id",
        "mirror_inbox",
        ["workspace_id", "channel_id", "inbox_id"],
        unique=False,
    )
    op.create_table(
        "mirror_seen_events",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("seen_at", UTC_TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "event_id", name=op.f("pk_mirror_seen_events")),
    )
    op.create_table(
        "mirror_state",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("day", sa.Text(), nullable=False),
        sa.Column("applied_today", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_applied_at", UTC_TIMESTAMP, nullable=True),
        sa.Column("last_event_at", UTC_TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_mirror_state")),
    )


def downgrade() -> None:
    op.drop_table("mirror_state")
    op.drop_table("mirror_seen_events")
    op.drop_index("ix_mirror_inbox_workspace_id_channel_id_inbox_id", table_name="mirror_inbox")
    op.drop_table("mirror_inbox")
    op.execute(
        "DROP TRIGGER IF EXISTS messages_keep_tombstoned_out"
        + (" ON messages" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS messages_keep_tombstoned_out()")
    op.drop_table("message_tombstones")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("edited_ts")
