"""SQLAlchemy models of the stored data: the table and column names are the design contract.

Owns the declarative `Base` (with a naming convention for every constraint) and the `UTCDateTime`
column type. Imports SQLAlchemy only; never Slack code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Every constraint and index gets a deterministic name, so Alembic can drop or alter it later
# on both PostgreSQL and SQLite (batch mode recreates tables by constraint name).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_TYPES = ("scheduled", "manual")
RUN_STATUSES = ("running", "success", "failed", "cancelled")
CHECKPOINT_PHASES = ("history", "threads", "done")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind of datetime the store accepts)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that only ever holds aware UTC datetimes.

    Writes refuse naive datetimes (their zone is unknowable) and convert aware ones to UTC.
    Reads return aware UTC: PostgreSQL gives `timestamptz` in the session zone, SQLite gives
    naive text that we stored as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime expects a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite has no zone support; store the UTC wall time and re-attach UTC on read.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Workspace(Base):
    __tablename__ = "workspaces"

    workspace_id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Its Enterprise Grid organisation, from its verified requests (revision 0009): an org-wide
    # install serves it. Null outside an organisation.
    enterprise_id: Mapped[str | None] = mapped_column(Text)


class BackfillSchedule(Base):
    __tablename__ = "backfill_schedules"
    __table_args__ = (UniqueConstraint("workspace_id"),)  # one schedule per workspace

    schedule_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(
        Text, ForeignKey("workspaces.workspace_id", ondelete="CASCADE")
    )
    cron_expression: Mapped[str] = mapped_column(Text)
    # An IANA zone name exactly as given ("UTC", "Europe/Paris").
    timezone: Mapped[str] = mapped_column(Text)
    days_to_backfill: Mapped[int] = mapped_column(Integer, default=7)
    include_all_channels: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Channel ids; empty when include_all_channels.
    channel_ids: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(Text)  # Slack user id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Beyond the contract: why the app paused it (e.g. the token was revoked); null otherwise.
    paused_reason: Mapped[str | None] = mapped_column(Text)


class BackfillJobRun(Base):
    __tablename__ = "backfill_job_runs"
    __table_args__ = (
        CheckConstraint("job_type IN ('scheduled', 'manual')", name="job_type"),
        CheckConstraint("status IN ('running', 'success', 'failed', 'cancelled')", name="status"),
        # A scheduled fire is claimed by whichever process inserts this row first. NULLs are
        # distinct in a UNIQUE constraint on both databases, so manual runs never collide.
        UniqueConstraint("schedule_id", "fire_time"),
        # At most one running run per workspace: the cross-process lock of the design.
        Index(
            "uq_backfill_job_runs_workspace_id_running",
            "workspace_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
        Index(None, "workspace_id", "started_at"),
        Index(
            None,
            "retry_at",
            postgresql_where=text("retry_at IS NOT NULL"),
            sqlite_where=text("retry_at IS NOT NULL"),
        ),
    )

    job_run_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(
        Text, ForeignKey("workspaces.workspace_id", ondelete="CASCADE")
    )
    schedule_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("backfill_schedules.schedule_id", ondelete="SET NULL")
    )
    job_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    messages_collected: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    channels_processed: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error_message: Mapped[str | None] = mapped_column(Text)
    triggered_by: Mapped[str | None] = mapped_column(Text)  # Slack user id; null when scheduled
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Beyond the contract: cross-process coordination and run details.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fire_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    days: Mapped[int | None] = mapped_column(Integer)
    channels_skipped: Mapped[Any | None] = mapped_column(JSON)
    # Run lifecycle (revision 0002): cancel requests seen by the owner's heartbeat, the owning
    # process, automatic retries made, crashes survived, a pending retry, the channels asked for.
    cancel_requested_by: Mapped[str | None] = mapped_column(Text)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    interruptions: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    owner: Mapped[str | None] = mapped_column(Text)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    channel_ids: Mapped[Any | None] = mapped_column(JSON)
    # What the run asked of Slack, per method (revision 0004; see db.records.SlackCalls).
    slack_calls: Mapped[Any | None] = mapped_column(JSON)
    # Stored messages its re-reads no longer found in Slack, removed (revision 0006; PRUNE_DELETED).
    messages_removed: Mapped[int | None] = mapped_column(Integer)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "channel_id", "ts"),
        Index(None, "workspace_id", "channel_id", "thread_ts"),
    )

    workspace_id: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str] = mapped_column(Text)
    # Text exactly as Slack sends it ("1700000000.000100"), never a float.
    ts: Mapped[str] = mapped_column(Text)
    thread_ts: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    user_name: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    channel_name: Mapped[str] = mapped_column(Text)  # without "#"
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Slack's `edited.ts` of the stored text (revision 0005); null when never edited. A copy
    # with an older edit never overwrites a newer one (events and runs arrive in any order).
    edited_ts: Mapped[str | None] = mapped_column(Text)


class ChannelCheckpoint(Base):
    """The engine's per-channel progress, so an interrupted run resumes where it stopped."""

    __tablename__ = "channel_checkpoints"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "channel_id"),
        CheckConstraint("phase IS NULL OR phase IN ('history', 'threads', 'done')", name="phase"),
    )

    workspace_id: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str] = mapped_column(Text)
    channel_name: Mapped[str] = mapped_column(Text)
    job_run_id: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(Text)
    window_oldest_ts: Mapped[str | None] = mapped_column(Text)
    window_latest_ts: Mapped[str | None] = mapped_column(Text)
    # Oldest ts of the last committed page of the current walk: resume with latest=this.
    resume_latest_ts: Mapped[str | None] = mapped_column(Text)
    # Newest point fully covered by a finished walk: the next incremental run starts here.
    high_water_ts: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class SeenRequestSignature(Base):
    """A signed Slack request already acted on (revision 0003): a second copy is a replay. Kept
    until `valid_until` (Unix seconds), after which Slack's timestamp check refuses it anyway."""

    __tablename__ = "seen_request_signatures"

    signature: Mapped[str] = mapped_column(Text, primary_key=True)
    valid_until: Mapped[int] = mapped_column(BigInteger)


class MessageTombstone(Base):
    """A message removed from the store on Slack's word (revision 0005): `deleted` (Slack deleted
    it) or `disqualified` (an edit made it one the filter drops, as of `edited_ts`). A copy read
    before the removal and written after it, by a run or a late event, never brings it back."""

    __tablename__ = "message_tombstones"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "channel_id", "ts"),
        CheckConstraint("reason IN ('deleted', 'disqualified')", name="reason"),
    )

    workspace_id: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str] = mapped_column(Text)
    ts: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    edited_ts: Mapped[str | None] = mapped_column(Text)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MirrorInbox(Base):
    """Slack events acknowledged and not yet applied (revision 0005): written before the ack,
    applied in order by the drainer (which claims a batch: `claimed_by`, `claimed_at`), then
    deleted. A claim older than the lease is taken again (its process died)."""

    __tablename__ = "mirror_inbox"
    __table_args__ = (Index(None, "workspace_id", "channel_id", "inbox_id"),)

    inbox_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    payload: Mapped[Any] = mapped_column(JSON)  # the inner event as Slack sent it
    event_time: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when Slack sent it
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MirrorSeenEvent(Base):
    """Event ids already taken into the inbox (revision 0005): a retry or a duplicate delivery of
    one is acknowledged and dropped, by every process sharing the database. Kept for a day
    (Slack retries for two hours at most, Delayed Events for 24)."""

    __tablename__ = "mirror_seen_events"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "event_id"),)

    workspace_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MirrorState(Base):
    """What the mirror did for a workspace (revision 0005): events applied on `day` (UTC date),
    when the newest was applied and when Slack sent it."""

    __tablename__ = "mirror_state"

    workspace_id: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[str] = mapped_column(Text)  # YYYY-MM-DD (UTC)
    applied_today: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


__all__ = [
    "CHECKPOINT_PHASES",
    "JOB_TYPES",
    "NAMING_CONVENTION",
    "RUN_STATUSES",
    "BackfillJobRun",
    "BackfillSchedule",
    "Base",
    "ChannelCheckpoint",
    "Message",
    "MessageTombstone",
    "MirrorInbox",
    "MirrorSeenEvent",
    "MirrorState",
    "SeenRequestSignature",
    "UTCDateTime",
    "Workspace",
    "utcnow",
]


# -- multi-workspace mode (revision 0007): installations and OAuth states --------------------------

INSTALLATION_STATUSES = ("active", "needs_reinstall", "revoked")


class SlackInstallation(Base):
    """The current bot install of one workspace or Enterprise Grid org (revision 0007).

    One row per (enterprise_id, team_id): `install_key` spells the pair, because a NULL in a
    UNIQUE constraint never collides (an org install has no team, a plain workspace no
    enterprise). A reinstall or a token refresh rewrites the row. Tokens are only ever stored
    Fernet-encrypted (`db.token_crypto`); revocation or uninstall clears them and keeps the row,
    so the workspace's status stays known."""

    __tablename__ = "installations"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'needs_reinstall', 'revoked')", name="status"),
    )

    install_key: Mapped[str] = mapped_column(Text, primary_key=True)
    enterprise_id: Mapped[str | None] = mapped_column(Text)
    enterprise_name: Mapped[str | None] = mapped_column(Text)
    enterprise_url: Mapped[str | None] = mapped_column(Text)
    team_id: Mapped[str | None] = mapped_column(Text)  # null for an org-wide install
    team_name: Mapped[str | None] = mapped_column(Text)
    is_enterprise_install: Mapped[bool] = mapped_column(default=False, server_default=false())
    app_id: Mapped[str | None] = mapped_column(Text)
    bot_id: Mapped[str | None] = mapped_column(Text)
    bot_user_id: Mapped[str | None] = mapped_column(Text)
    bot_scopes: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    installer_user_id: Mapped[str] = mapped_column(Text)
    token_type: Mapped[str | None] = mapped_column(Text)
    bot_token_encrypted: Mapped[str | None] = mapped_column(Text)
    bot_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)  # token rotation
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(Text, default="active", server_default=text("'active'"))
    status_reason: Mapped[str | None] = mapped_column(Text)  # e.g. the Slack error that set it
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """An OAuth `state` issued by /slack/install, consumed at most once before `expire_at`
    (revision 0007). Only its SHA-256 is stored: a dump of the table cannot answer a redirect."""

    __tablename__ = "oauth_states"
    __table_args__ = (Index(None, "expire_at"),)

    state_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    expire_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ += ["INSTALLATION_STATUSES", "OAuthState", "SlackInstallation"]
