"""Removing stored messages on Slack's word, and keeping them removed.

A message Slack deleted (`message_deleted`, a tombstoned thread parent, a run that no longer finds
it in a window it re-read) or that an edit made one the filter drops is deleted from `messages`
and remembered in `message_tombstones`. The database itself (a BEFORE INSERT trigger, revision
0005) then skips any insert of a copy the tombstone forbids, whoever writes it: events arrive in
any order, and a run may read a page before a deletion and write it after.

Writers of one channel are serialised by `lock_channels` (a transaction-scoped advisory lock on
PostgreSQL; SQLite's write transactions are serial already), so a removal and a concurrent write
of the same message cannot both miss each other.

Every function takes the `AsyncSession` first and never commits. Imports SQLAlchemy and `db` only.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, delete, func, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Message, MessageTombstone, utcnow

DELETED = "deleted"
DISQUALIFIED = "disqualified"
# The `ts` of a channel's own tombstone: every message of a deleted channel stays out.
WHOLE_CHANNEL = "*"

_MESSAGES = cast(Table, Message.__table__)
_M = _MESSAGES.c
_TOMBSTONES = cast(Table, MessageTombstone.__table__)
_T = _TOMBSTONES.c
# Keys per IN list: well under both drivers' bind-parameter caps.
_CHUNK = 5000


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


async def lock_channels(
    session: AsyncSession, workspace_id: str, channel_ids: Iterable[str]
) -> None:
    """Hold, until the transaction ends, the write lock of each channel (sorted, so two writers
    never wait on each other in a cycle). PostgreSQL only; on SQLite the transaction already
    holds the database's one write lock (BEGIN IMMEDIATE)."""
    if _dialect(session) != "postgresql":
        return
    for channel_id in sorted(set(channel_ids)):
        key = zlib.crc32(f"{workspace_id}:{channel_id}".encode()) - 2**31  # a signed 32-bit int
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def _tombstone_upsert(session: AsyncSession, reason: str) -> postgresql.Insert | sqlite.Insert:
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    stmt = insert(_TOMBSTONES)
    excluded = stmt.excluded
    if reason == DELETED:
        # A deletion is final: it replaces a disqualifying edit's mark.
        return stmt.on_conflict_do_update(
            index_elements=[_T.workspace_id, _T.channel_id, _T.ts],
            set_={"reason": excluded.reason, "edited_ts": None, "removed_at": excluded.removed_at},
            where=_T.reason != DELETED,
        )
    # A disqualifying edit marks its own version; never over a deletion or a newer edit.
    return stmt.on_conflict_do_update(
        index_elements=[_T.workspace_id, _T.channel_id, _T.ts],
        set_={"edited_ts": excluded.edited_ts, "removed_at": excluded.removed_at},
        where=(_T.reason != DELETED)
        & (func.coalesce(_T.edited_ts, "") < func.coalesce(excluded.edited_ts, "")),
    )


async def remove_messages(
    session: AsyncSession,
    workspace_id: str,
    channel_id: str,
    ts_list: Sequence[str],
    *,
    reason: str = DELETED,
    edited_ts: str | None = None,
) -> list[str]:
    """Delete these messages of one channel and remember why (`DELETED`, or `DISQUALIFIED` as of
    the edit `edited_ts`). Returns the `ts` of the rows that were stored (their Chroma documents
    go too; the caller removes them)."""
    wanted = list(dict.fromkeys(ts_list))
    if not wanted:
        return []
    now = utcnow()
    stmt = _tombstone_upsert(session, reason)
    await session.execute(
        stmt,
        [
            {
                "workspace_id": workspace_id,
                "channel_id": channel_id,
                "ts": ts,
                "reason": reason,
                "edited_ts": edited_ts if reason == DISQUALIFIED else None,
                "removed_at": now,
            }
            for ts in wanted
        ],
    )
    removed: list[str] = []
    for chunk in _chunks(wanted):
        query = delete(_MESSAGES).where(
            _M.workspace_id == workspace_id, _M.channel_id == channel_id, _M.ts.in_(chunk)
        )
        if reason == DISQUALIFIED:
            # Only the copy this edit (or an older one) produced; a newer edit's text stays.
            query = query.where(func.coalesce(_M.edited_ts, "") <= (edited_ts or ""))
        rows = await session.execute(query.returning(_M.ts))
        removed += [row[0] for row in rows.all()]
    return removed


async def remove_channel(session: AsyncSession, workspace_id: str, channel_id: str) -> int:
    """Delete every stored message of a channel Slack deleted, and keep the channel out: its
    tombstone (ts `*`) refuses any later copy, a late event's or a run's. Returns how many
    messages there were."""
    await session.execute(
        _tombstone_upsert(session, DELETED),
        [
            {
                "workspace_id": workspace_id,
                "channel_id": channel_id,
                "ts": WHOLE_CHANNEL,
                "reason": DELETED,
                "edited_ts": None,
                "removed_at": utcnow(),
            }
        ],
    )
    result = await session.execute(
        delete(_MESSAGES).where(_M.workspace_id == workspace_id, _M.channel_id == channel_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def rename_channel(
    session: AsyncSession, workspace_id: str, channel_id: str, name: str
) -> int:
    """Give the channel's stored messages its new name (without `#`); returns the rows changed."""
    result = await session.execute(
        update(_MESSAGES)
        .where(
            _M.workspace_id == workspace_id,
            _M.channel_id == channel_id,
            _M.channel_name != name,
        )
        .values(channel_name=name)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


__all__ = [
    "DELETED",
    "DISQUALIFIED",
    "WHOLE_CHANNEL",
    "lock_channels",
    "remove_channel",
    "remove_messages",
    "rename_channel",
]
