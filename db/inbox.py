"""The live mirror's durable inbox: Slack events written before they are acknowledged, claimed in
batches by a drainer, deleted once applied; the ledger of event ids already taken in; and the
mirror's per-workspace state (events applied today, the newest one).

Duplicates: Slack retries an event with the same `event_id` (and may deliver one twice). The
first copy records its id in `mirror_seen_events` and enters the inbox in the same transaction;
later copies find the id and change nothing, in every process sharing the database.

Claims: a drainer marks the rows it takes (`claimed_by`, `claimed_at`); a claim older than the
lease is taken again (its process died before deleting them). Applying an event twice is harmless
(upserts, tombstoned removals), so a re-claim never corrupts the store. Rows of a channel another
drainer holds are left for it, so one channel's events are applied in order.

Where: on PostgreSQL, the store's own database. On SQLite, a file of its own beside the store's
(`inbox_database_url`): SQLite has one write lock per file, and the store's writers hold it while
they write Chroma (`scheduler.backfill.writer`), so an acknowledgement written to the same file
would wait behind a whole batch. The inbox file gets the same migrations (one schema, one path);
only these tables are used there. SQLite deployments run one app process.

Every function takes the `AsyncSession` first and never commits. Imports SQLAlchemy and `db` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import MirrorInbox, MirrorSeenEvent, MirrorState
from db.records import MirrorStatus
from db.session import SQLITE_DRIVER

_INBOX = cast(Table, MirrorInbox.__table__)
_I = _INBOX.c
_SEEN = cast(Table, MirrorSeenEvent.__table__)
_S = _SEEN.c
_STATE = cast(Table, MirrorState.__table__)
_ST = _STATE.c


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One acknowledged event waiting to be applied: its inner event as Slack sent it."""

    inbox_id: int
    workspace_id: str
    event_id: str
    channel_id: str | None
    event_type: str
    payload: dict[str, Any]
    event_time: datetime | None
    received_at: datetime


def inbox_database_url(store_url: str) -> str:
    """The inbox's database for the store at `store_url` (validated by the caller): the same one,
    except a SQLite file, whose inbox is the file beside it named `<stem>-inbox<suffix>`."""
    url = make_url(store_url)
    database = url.database or ""
    if url.drivername != SQLITE_DRIVER or database == ":memory:" or database.startswith("file:"):
        return store_url
    path = Path(database)
    inbox = path.with_name(f"{path.stem}-inbox{path.suffix or '.db'}")
    return url.set(database=str(inbox)).render_as_string(hide_password=False)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True, slots=True)
class Arrival:
    """An event to take in, as its acknowledgement hands it over: the inner event as Slack sent
    it, when Slack sent it (`event_time`) and when it came (`now`)."""

    workspace_id: str
    event_id: str
    channel_id: str | None
    event_type: str
    payload: dict[str, Any]
    event_time: datetime | None
    now: datetime


async def take_in(session: AsyncSession, arrivals: Sequence[Arrival]) -> list[bool]:
    """Record the events for the drainer, in two statements whatever their number; for each, in
    order, False when its event id was taken in before (a retry or a duplicate delivery, also
    earlier in `arrivals`: nothing is written for it)."""
    first: dict[tuple[str, str], Arrival] = {}
    for arrival in arrivals:
        first.setdefault((arrival.workspace_id, arrival.event_id), arrival)
    if not first:
        return []
    seen = (
        _insert(session)(_SEEN)
        .values(
            [{"workspace_id": w, "event_id": e, "seen_at": a.now} for (w, e), a in first.items()]
        )
        .on_conflict_do_nothing(index_elements=[_S.workspace_id, _S.event_id])
        .returning(_S.workspace_id, _S.event_id)
    )
    fresh = {(w, e) for w, e in (await session.execute(seen)).all()}
    if fresh:
        # In arrival order, so that `inbox_id` orders a channel's events as they came.
        await session.execute(
            _INBOX.insert(),
            [
                {
                    "workspace_id": a.workspace_id,
                    "event_id": a.event_id,
                    "channel_id": a.channel_id,
                    "event_type": a.event_type,
                    "payload": a.payload,
                    "event_time": a.event_time,
                    "received_at": a.now,
                }
                for key, a in first.items()
                if key in fresh
            ],
        )
    answers = []
    for arrival in arrivals:
        key = (arrival.workspace_id, arrival.event_id)
        answers.append(key in fresh and first[key] is arrival)
    return answers


async def claim(
    session: AsyncSession, owner: str, *, now: datetime, lease_s: float, limit: int
) -> list[InboxEvent]:
    """Claim up to `limit` of the oldest events nobody else holds (or whose holder's lease ran
    out), skipping channels whose earlier events another drainer holds. Oldest first."""
    stale = now - timedelta(seconds=lease_s)
    # Its own claims too: a batch this drainer failed to apply (the database or Chroma away for
    # a moment) is tried again at once, not after the lease.
    free = or_(_I.claimed_by.is_(None), _I.claimed_by == owner, _I.claimed_at <= stale)
    busy = (
        select(_I.workspace_id, _I.channel_id)
        .where(_I.claimed_by.is_not(None), _I.claimed_by != owner, _I.claimed_at > stale)
        .distinct()
    )
    held = {(w, c) for w, c in (await session.execute(busy)).all()}
    rows = (
        await session.execute(
            select(_I.inbox_id, _I.workspace_id, _I.channel_id)
            .where(free)
            .order_by(_I.inbox_id)
            .limit(limit)
        )
    ).all()
    ids = [inbox_id for inbox_id, w, c in rows if (w, c) not in held]
    if not ids:
        return []
    claimed = await session.execute(
        update(_INBOX)
        .where(_I.inbox_id.in_(ids), free)
        .values(claimed_by=owner, claimed_at=now)
        .returning(*_INBOX.c)
    )
    events = [
        InboxEvent(
            inbox_id=row.inbox_id,
            workspace_id=row.workspace_id,
            event_id=row.event_id,
            channel_id=row.channel_id,
            event_type=row.event_type,
            payload=dict(row.payload or {}),
            event_time=row.event_time,
            received_at=row.received_at,
        )
        for row in claimed.all()
    ]
    return sorted(events, key=lambda e: e.inbox_id)


async def holders(session: AsyncSession) -> set[str]:
    """The drainers holding claims now (to let go of a dead one's at once)."""
    rows = await session.execute(select(_I.claimed_by).where(_I.claimed_by.is_not(None)).distinct())
    return {str(owner) for (owner,) in rows.all()}


async def release_claims(session: AsyncSession, owner: str) -> int:
    """Give back every event `owner` holds (it died): the next claim takes them."""
    result = await session.execute(
        update(_INBOX).where(_I.claimed_by == owner).values(claimed_by=None, claimed_at=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def done(session: AsyncSession, owner: str, inbox_ids: Sequence[int]) -> int:
    """Delete applied events this drainer still holds; returns how many."""
    if not inbox_ids:
        return 0
    result = await session.execute(
        delete(_INBOX).where(_I.inbox_id.in_(list(inbox_ids)), _I.claimed_by == owner)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def forget_seen(session: AsyncSession, before: datetime) -> int:
    """Drop event ids seen before `before` (Slack stopped retrying them long ago)."""
    result = await session.execute(delete(_SEEN).where(_S.seen_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def record_applied(
    session: AsyncSession,
    workspace_id: str,
    count: int,
    *,
    now: datetime,
    last_event_at: datetime | None,
) -> None:
    """Count `count` events applied for the workspace now (the day's count restarts each UTC
    day) and remember the newest one."""
    today = now.date().isoformat()
    stmt = _insert(session)(_STATE).values(
        workspace_id=workspace_id,
        day=today,
        applied_today=count,
        last_applied_at=now,
        last_event_at=last_event_at,
    )
    excluded = stmt.excluded
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[_ST.workspace_id],
            set_={
                "applied_today": func.coalesce(
                    # Same day: add; a new day: start again.
                    _same_day(excluded.day) + excluded.applied_today,
                    excluded.applied_today,
                ),
                "day": excluded.day,
                "last_applied_at": excluded.last_applied_at,
                "last_event_at": func.coalesce(excluded.last_event_at, _ST.last_event_at),
            },
        )
    )


def _same_day(day: Any) -> Any:
    """Today's count so far when the stored day is `day`, else NULL (so the sum is NULL)."""
    return case((_ST.day == day, _ST.applied_today), else_=None)


async def status(session: AsyncSession, workspace_id: str, *, now: datetime) -> MirrorStatus:
    """The mirror's state for the workspace (a day's count reads 0 once the day is over)."""
    backlog, oldest = (
        await session.execute(
            select(func.count(), func.min(_I.received_at)).where(_I.workspace_id == workspace_id)
        )
    ).one()
    row = (await session.execute(select(_STATE).where(_ST.workspace_id == workspace_id))).first()
    if row is None:
        return MirrorStatus(backlog=int(backlog), oldest_waiting_at=oldest)
    today = now.date().isoformat()
    return MirrorStatus(
        backlog=int(backlog),
        oldest_waiting_at=oldest,
        applied_today=int(row.applied_today) if row.day == today else 0,
        last_applied_at=row.last_applied_at,
        last_event_at=row.last_event_at,
    )


async def move_waiting(source: AsyncSession, target: AsyncSession) -> int:
    """Copy the events `source` holds (a SQLite store's own file, before its inbox moved to a
    file of its own), their ids and the mirror's state into `target`, unclaimed and in order, then
    delete them from `source`. Commit `target` first: a crash in between leaves copies in both,
    and applying an event twice is harmless. Returns the events moved."""
    rows = (await source.execute(select(_INBOX).order_by(_I.inbox_id))).all()
    for row in rows:
        await target.execute(
            _INBOX.insert().values(
                workspace_id=row.workspace_id,
                event_id=row.event_id,
                channel_id=row.channel_id,
                event_type=row.event_type,
                payload=row.payload,
                event_time=row.event_time,
                received_at=row.received_at,
            )
        )
    for seen in (await source.execute(select(_SEEN))).all():
        await target.execute(
            _insert(target)(_SEEN).values(**seen._asdict()).on_conflict_do_nothing()
        )
    for state in (await source.execute(select(_STATE))).all():
        await target.execute(
            _insert(target)(_STATE).values(**state._asdict()).on_conflict_do_nothing()
        )
    return len(rows)


async def any_seen(session: AsyncSession) -> bool:
    """Whether any event id is remembered (with `waiting`: whether there is anything to move)."""
    return (await session.execute(select(_S.event_id).limit(1))).first() is not None


async def forget_moved(source: AsyncSession) -> None:
    """Empty `source`'s inbox tables once `move_waiting` committed their copies elsewhere."""
    for table in (_INBOX, _SEEN, _STATE):
        await source.execute(delete(table))


async def waiting(session: AsyncSession) -> int:
    """Events waiting in the inbox, every workspace (the drainer's wake-up check)."""
    return int((await session.execute(select(func.count()).select_from(_INBOX))).scalar_one())


__all__ = [
    "Arrival",
    "InboxEvent",
    "any_seen",
    "claim",
    "done",
    "forget_moved",
    "forget_seen",
    "holders",
    "inbox_database_url",
    "move_waiting",
    "record_applied",
    "release_claims",
    "status",
    "take_in",
    "waiting",
]
