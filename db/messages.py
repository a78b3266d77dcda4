"""Queries for stored messages, per-channel checkpoints and workspaces.

Every function takes the `AsyncSession` first and never commits: callers own transactions.
Imports SQLAlchemy and `db.records` only; never Slack code. One module (~400 lines): the upsert,
the reads of stored messages and the checkpoints share the same key and `ts` ordering rules.

Slack `ts` values are compared as text. They are always "1700000000.000100" (10 digits, a dot,
6 digits), so lexical order is numeric order; on PostgreSQL we compare under the "C" collation
so a locale-aware collation cannot reorder them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChannelCheckpoint, Message, Workspace, utcnow
from db.records import MessageRecord

# Both drivers cap bind parameters per statement: asyncpg (PostgreSQL protocol) at 32767,
# SQLite at 32766 (SQLITE_MAX_VARIABLE_NUMBER since 3.32). Batches above the cap are split
# into the fewest statements that fit; below it, a batch is exactly one statement.
MAX_BIND_PARAMS = 32766

_MESSAGE_CONTENT = ("text", "user_name", "user_id", "thread_ts", "channel_name", "edited_ts")
_MESSAGE_COLUMNS = ("workspace_id", "channel_id", "ts", *_MESSAGE_CONTENT, "stored_at")
MESSAGE_ROWS_PER_STATEMENT = MAX_BIND_PARAMS // len(_MESSAGE_COLUMNS)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A channel's backfill progress (see `db.models.ChannelCheckpoint` for each field)."""

    workspace_id: str
    channel_id: str
    channel_name: str
    job_run_id: int | None = None
    phase: str | None = None  # 'history' | 'threads' | 'done'
    window_oldest_ts: str | None = None
    window_latest_ts: str | None = None
    resume_latest_ts: str | None = None
    high_water_ts: str | None = None
    updated_at: datetime | None = None  # set by the store on save


_CHECKPOINT_FIELDS = (
    "channel_name",
    "job_run_id",
    "phase",
    "window_oldest_ts",
    "window_latest_ts",
    "resume_latest_ts",
    "high_water_ts",
)


def _dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _insert_for(session: AsyncSession) -> Callable[[Any], Any]:
    return _insert_of(_dialect_name(session))


def _insert_of(name: str) -> Callable[[Any], Any]:
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"upserts are written for PostgreSQL and SQLite, not {name}")


def _ts_key(column: ColumnElement[str], session: AsyncSession) -> ColumnElement[str]:
    return _ts_key_of(column, _dialect_name(session))


def _ts_key_of(column: ColumnElement[str], dialect: str) -> ColumnElement[str]:
    # Byte order for ts text on PostgreSQL (SQLite's default BINARY collation already is).
    if dialect == "postgresql":
        return column.collate("C")
    return column


async def ensure_workspace(
    session: AsyncSession, workspace_id: str, name: str, *, enterprise_id: str | None = None
) -> None:
    """Create the workspace row, or update its name (and its organisation, when given) if it
    changed (`created_at` is kept)."""
    table = Workspace.__table__
    stmt = _insert_for(session)(table).values(
        workspace_id=workspace_id, name=name, created_at=utcnow(), enterprise_id=enterprise_id
    )
    changes: dict[str, Any] = {"name": stmt.excluded.name}
    changed = table.c.name.is_distinct_from(stmt.excluded.name)
    if enterprise_id is not None:
        changes["enterprise_id"] = stmt.excluded.enterprise_id
        changed = changed | table.c.enterprise_id.is_distinct_from(stmt.excluded.enterprise_id)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.workspace_id], set_=changes, where=changed
    )
    await session.execute(stmt)


async def workspace_enterprise(session: AsyncSession, workspace_id: str) -> str | None:
    """The Enterprise Grid organisation the workspace belongs to, if its requests said so."""
    table = Workspace.__table__
    stmt = select(table.c.enterprise_id).where(table.c.workspace_id == workspace_id)
    return (await session.execute(stmt)).scalar_one_or_none()


@functools.cache
def _message_upsert(dialect: str) -> Insert:
    """The message upsert, built once per dialect and executed with a list of rows: SQLAlchemy
    compiles it once (its statement cache) and batches the rows into multi-row VALUES itself
    ("insertmanyvalues"), instead of compiling a fresh 200-row statement for every batch (a third
    of the engine's CPU before)."""
    table = Message.__table__
    stmt = _insert_of(dialect)(table)
    excluded = stmt.excluded
    upsert: Insert = (
        stmt.on_conflict_do_update(
            index_elements=[table.c.workspace_id, table.c.channel_id, table.c.ts],
            set_={name: excluded[name] for name in (*_MESSAGE_CONTENT, "stored_at")},
            # Only a real change touches the row, so an identical re-upsert writes nothing,
            # keeps stored_at, and is not counted; and a copy with an older edit than the stored
            # one (a run's page read before an edit event was applied) changes nothing.
            where=and_(
                or_(*(table.c[name].is_distinct_from(excluded[name]) for name in _MESSAGE_CONTENT)),
                func.coalesce(_ts_key_of(excluded.edited_ts, dialect), "")
                >= func.coalesce(_ts_key_of(table.c.edited_ts, dialect), ""),
            ),
        )
        .returning(table.c.channel_id, table.c.ts)
        .execution_options(
            # As many rows per statement as the drivers' bind-parameter cap allows.
            insertmanyvalues_page_size=MESSAGE_ROWS_PER_STATEMENT,
        )
    )
    return upsert


async def upsert_messages(session: AsyncSession, records: Sequence[MessageRecord]) -> int:
    """Insert or update messages keyed by (workspace_id, channel_id, ts) in one statement.

    Returns how many rows were inserted or actually changed (0 for an identical re-upsert).
    Within the batch, a later record with the same key wins.
    """
    return len(await upsert_messages_changed(session, records))


async def upsert_messages_changed(
    session: AsyncSession, records: Sequence[MessageRecord]
) -> list[tuple[str, str]]:
    """Like `upsert_messages`, but returns the `(channel_id, ts)` keys actually inserted or changed.

    One statement per batch (RETURNING); an identical re-upsert returns no key and keeps
    `stored_at`. Within the batch, a later record with the same key wins. A message with a
    tombstone (`db.removals`) is skipped by the database's trigger and returns no key either.
    """
    if not records:
        return []
    # One statement cannot touch a row twice (PostgreSQL refuses), so collapse duplicates.
    latest: dict[tuple[str, str, str], MessageRecord] = {}
    for record in records:
        latest[(record.workspace_id, record.channel_id, record.ts)] = record
    stored_at = utcnow()
    rows = [
        {
            "workspace_id": r.workspace_id,
            "channel_id": r.channel_id,
            "ts": r.ts,
            "thread_ts": r.thread_ts,
            "user_id": r.user_id,
            "user_name": r.user_name,
            "text": r.text,
            "channel_name": r.channel_name,
            "edited_ts": r.edited_ts,
            "stored_at": stored_at,
        }
        for r in latest.values()
    ]
    stmt = _message_upsert(_dialect_name(session))
    result = await session.execute(stmt, rows)  # SQLAlchemy splits it at the cap
    return [(row[0], row[1]) for row in result.all()]


async def stored_thread_latest_reply(
    session: AsyncSession, workspace_id: str, channel_id: str, thread_ts_list: Sequence[str]
) -> dict[str, str]:
    """The newest stored reply ts per thread (parents excluded); threads without replies are absent."""
    wanted = list(dict.fromkeys(thread_ts_list))
    if not wanted:
        return {}
    m = Message.__table__.c
    latest: dict[str, str] = {}
    # One query; a list longer than the bind-parameter cap is queried in the fewest chunks.
    chunk = MAX_BIND_PARAMS - 2
    for start in range(0, len(wanted), chunk):
        stmt = (
            select(m.thread_ts, func.max(_ts_key(m.ts, session)))
            .where(
                m.workspace_id == workspace_id,
                m.channel_id == channel_id,
                m.thread_ts.in_(wanted[start : start + chunk]),
                m.ts != m.thread_ts,
            )
            .group_by(m.thread_ts)
        )
        for thread_ts, max_ts in (await session.execute(stmt)).all():
            latest[thread_ts] = max_ts
    return latest


async def stored_messages(
    session: AsyncSession, workspace_id: str, channel_id: str, ts_list: Sequence[str]
) -> dict[str, MessageRecord]:
    """The stored messages of one channel among `ts_list`, by ts."""
    wanted = list(dict.fromkeys(ts_list))
    if not wanted:
        return {}
    m = Message.__table__.c
    rows = await session.execute(
        select(Message).where(
            m.workspace_id == workspace_id, m.channel_id == channel_id, m.ts.in_(wanted)
        )
    )
    return {row.ts: message_record(row) for row in rows.scalars()}


def message_record(row: Any) -> MessageRecord:
    """The record of a `messages` row (an ORM object or a result row with its columns)."""
    return MessageRecord(
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        ts=row.ts,
        thread_ts=row.thread_ts,
        user_id=row.user_id,
        user_name=row.user_name,
        text=row.text,
        edited_ts=row.edited_ts,
    )


async def known_channel_name(
    session: AsyncSession, workspace_id: str, channel_id: str
) -> str | None:
    """The channel's name as the store knows it (a run's checkpoint, else a stored message)."""
    c = ChannelCheckpoint.__table__.c
    name = (
        await session.execute(
            select(c.channel_name).where(c.workspace_id == workspace_id, c.channel_id == channel_id)
        )
    ).scalar_one_or_none()
    if name:
        return str(name)
    m = Message.__table__.c
    name = (
        await session.execute(
            select(m.channel_name)
            .where(m.workspace_id == workspace_id, m.channel_id == channel_id)
            .limit(1)
        )
    ).scalar_one_or_none()
    return str(name) if name else None


def _ts_between(
    column: ColumnElement[str], after: str, before: str, session: AsyncSession
) -> ColumnElement[bool]:
    """`after < column < before` in ts order. On PostgreSQL the byte-order ("C") comparison is
    exact, and the plain one beside it lets the index serve the range: for well-formed ts both
    agree, and for anything else their conjunction can only leave rows out, never take more in."""
    exact = and_(_ts_key(column, session) > after, _ts_key(column, session) < before)
    if _dialect_name(session) != "postgresql":
        return exact
    return and_(column > after, column < before, exact)


async def stored_top_level_between(
    session: AsyncSession, workspace_id: str, channel_id: str, *, after: str, before: str
) -> list[str]:
    """The `ts` of the channel's stored top-level messages (no `thread_ts`, or a thread's parent)
    with `after < ts < before`."""
    m = Message.__table__.c
    stmt = select(m.ts).where(
        m.workspace_id == workspace_id,
        m.channel_id == channel_id,
        _ts_between(m.ts, after, before, session),
        or_(m.thread_ts.is_(None), m.thread_ts == m.ts),
    )
    return list((await session.execute(stmt)).scalars().all())


async def stored_replies_between(
    session: AsyncSession,
    workspace_id: str,
    channel_id: str,
    *,
    after: str,
    before: str,
    thread_ts_list: Sequence[str] | None = None,
    threads_after: str | None = None,
    threads_before: str | None = None,
) -> list[tuple[str, str]]:
    """`(thread_ts, ts)` of the channel's stored thread replies (parents excluded) with
    `after < ts < before`, of the threads in `thread_ts_list`, or, without a list, of the threads
    whose parent's ts lies strictly between `threads_after` and `threads_before`."""
    m = Message.__table__.c
    base = select(m.thread_ts, m.ts).where(
        m.workspace_id == workspace_id,
        m.channel_id == channel_id,
        m.thread_ts.is_not(None),
        m.ts != m.thread_ts,
        _ts_between(m.ts, after, before, session),
    )
    if thread_ts_list is None:
        if threads_after is None or threads_before is None:
            raise ValueError("give thread_ts_list, or both threads_after and threads_before")
        stmt = base.where(_ts_between(m.thread_ts, threads_after, threads_before, session))
        return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
    wanted = list(dict.fromkeys(thread_ts_list))
    found: list[tuple[str, str]] = []
    chunk = MAX_BIND_PARAMS - 8
    for start in range(0, len(wanted), chunk):
        stmt = base.where(m.thread_ts.in_(wanted[start : start + chunk]))
        found += [(row[0], row[1]) for row in (await session.execute(stmt)).all()]
    return found


async def count_messages(session: AsyncSession, workspace_id: str) -> int:
    """How many messages are stored for the workspace."""
    m = Message.__table__.c
    stmt = select(func.count()).select_from(Message.__table__).where(m.workspace_id == workspace_id)
    return int((await session.execute(stmt)).scalar_one())


def _checkpoint_from_row(row: Any) -> Checkpoint:
    return Checkpoint(
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        channel_name=row.channel_name,
        job_run_id=row.job_run_id,
        phase=row.phase,
        window_oldest_ts=row.window_oldest_ts,
        window_latest_ts=row.window_latest_ts,
        resume_latest_ts=row.resume_latest_ts,
        high_water_ts=row.high_water_ts,
        updated_at=row.updated_at,
    )


async def get_checkpoint(
    session: AsyncSession, workspace_id: str, channel_id: str
) -> Checkpoint | None:
    """The channel's checkpoint, or None when the channel was never walked."""
    table = ChannelCheckpoint.__table__
    stmt = select(table).where(
        table.c.workspace_id == workspace_id, table.c.channel_id == channel_id
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _checkpoint_from_row(row)


async def save_checkpoint(session: AsyncSession, checkpoint: Checkpoint) -> Checkpoint:
    """Create or replace the channel's checkpoint (every field as given); returns it as stored."""
    table = ChannelCheckpoint.__table__
    now = utcnow()
    values = {name: getattr(checkpoint, name) for name in _CHECKPOINT_FIELDS}
    stmt = _insert_for(session)(table).values(
        workspace_id=checkpoint.workspace_id,
        channel_id=checkpoint.channel_id,
        updated_at=now,
        **values,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.workspace_id, table.c.channel_id],
        set_={name: stmt.excluded[name] for name in (*_CHECKPOINT_FIELDS, "updated_at")},
    )
    await session.execute(stmt)
    return Checkpoint(
        workspace_id=checkpoint.workspace_id,
        channel_id=checkpoint.channel_id,
        updated_at=now,
        **values,
    )


async def list_checkpoints(session: AsyncSession, workspace_id: str) -> list[Checkpoint]:
    """Every checkpoint of the workspace, ordered by channel id."""
    table = ChannelCheckpoint.__table__
    stmt = select(table).where(table.c.workspace_id == workspace_id).order_by(table.c.channel_id)
    return [_checkpoint_from_row(row) for row in (await session.execute(stmt)).all()]


__all__ = [
    "MAX_BIND_PARAMS",
    "MESSAGE_ROWS_PER_STATEMENT",
    "Checkpoint",
    "count_messages",
    "ensure_workspace",
    "get_checkpoint",
    "list_checkpoints",
    "save_checkpoint",
    "stored_replies_between",
    "stored_thread_latest_reply",
    "stored_top_level_between",
    "upsert_messages",
    "upsert_messages_changed",
]
