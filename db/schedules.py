"""Queries for `backfill_schedules`: one schedule per workspace, its state and its fire times.

Every function takes the `AsyncSession` first and never commits: callers own transactions.
The workspace row must exist before a schedule is stored (foreign key);
`db.messages.ensure_workspace` creates it. Imports SQLAlchemy and `db.models` only; never Slack
or scheduler code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BackfillSchedule, UTCDateTime, Workspace, utcnow
from db.records import Schedule

_TABLE = cast(Table, BackfillSchedule.__table__)
_C = _TABLE.c


def _from_row(row: Any) -> Schedule:
    return Schedule(
        schedule_id=row.schedule_id,
        workspace_id=row.workspace_id,
        cron_expression=row.cron_expression,
        timezone=row.timezone,
        days_to_backfill=row.days_to_backfill,
        include_all_channels=bool(row.include_all_channels),
        channel_ids=tuple(row.channel_ids or ()),
        is_active=bool(row.is_active),
        last_run_at=row.last_run_at,
        next_run_at=row.next_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _insert_for(session: AsyncSession) -> Callable[[Any], Any]:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"upserts are written for PostgreSQL and SQLite, not {name}")


async def workspace_exists(session: AsyncSession, workspace_id: str) -> bool:
    """Whether the `workspaces` row a schedule must point at is there."""
    table = Workspace.__table__
    stmt = select(table.c.workspace_id).where(table.c.workspace_id == workspace_id)
    return (await session.execute(stmt)).first() is not None


async def get_schedule(session: AsyncSession, workspace_id: str) -> Schedule | None:
    """The workspace's schedule, or None when it has none."""
    row = (await session.execute(select(_TABLE).where(_C.workspace_id == workspace_id))).first()
    return None if row is None else _from_row(row)


async def upsert_schedule(
    session: AsyncSession,
    workspace_id: str,
    *,
    cron_expression: str,
    timezone: str,
    days_to_backfill: int,
    include_all_channels: bool,
    channel_ids: Sequence[str],
    created_by: str,
    next_run_at: datetime | None,
    now: datetime | None = None,
) -> Schedule:
    """Create the workspace's schedule, or replace the fields of the one it has.

    One statement. A replaced schedule keeps `schedule_id`, `created_at` and `last_run_at`;
    `updated_at` becomes `now`. Either way the schedule is active afterwards.
    """
    now = now or utcnow()
    fields: dict[str, Any] = {
        "cron_expression": cron_expression,
        "timezone": timezone,
        "days_to_backfill": days_to_backfill,
        "include_all_channels": include_all_channels,
        "channel_ids": [] if include_all_channels else list(channel_ids),
        "is_active": True,
        "next_run_at": next_run_at,
        "created_by": created_by,
        "updated_at": now,
    }
    stmt = _insert_for(session)(_TABLE).values(workspace_id=workspace_id, created_at=now, **fields)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_C.workspace_id],
        set_={name: stmt.excluded[name] for name in fields},
    ).returning(*_TABLE.c)
    return _from_row((await session.execute(stmt)).one())


async def set_active(
    session: AsyncSession,
    workspace_id: str,
    active: bool,
    *,
    next_run_at: datetime | None,
    now: datetime | None = None,
) -> Schedule | None:
    """Pause or resume the schedule and set its `next_run_at`; None when there is none.
    Resuming clears `paused_reason` (why the app paused it, if it did)."""
    values: dict[str, object] = {
        "is_active": active,
        "next_run_at": next_run_at,
        "updated_at": now or utcnow(),
    }
    if active:
        values["paused_reason"] = None
    stmt = (
        update(_TABLE).where(_C.workspace_id == workspace_id).values(**values).returning(*_TABLE.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def delete_schedule(session: AsyncSession, workspace_id: str) -> Schedule | None:
    """Delete the workspace's schedule and return it as it was; None when there was none.

    Past runs keep their rows (`backfill_job_runs.schedule_id` becomes null).
    """
    stmt = delete(_TABLE).where(_C.workspace_id == workspace_id).returning(*_TABLE.c)
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def list_active_schedules(session: AsyncSession) -> list[Schedule]:
    """Every active schedule, ordered by workspace id."""
    stmt = select(_TABLE).where(_C.is_active.is_(True)).order_by(_C.workspace_id)
    return [_from_row(row) for row in (await session.execute(stmt)).all()]


async def set_next_run_at(
    session: AsyncSession, workspace_id: str, next_run_at: datetime | None
) -> bool:
    """Record when the schedule fires next (no change to `updated_at`); False when it is gone."""
    stmt = (
        update(_TABLE)
        .where(_C.workspace_id == workspace_id)
        # Naming updated_at keeps its `onupdate`: it tracks the admin's changes, not fires.
        .values(next_run_at=next_run_at, updated_at=_C.updated_at)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


async def mark_fired(
    session: AsyncSession,
    workspace_id: str,
    schedule_id: int,
    *,
    fire_time: datetime,
    next_run_at: datetime | None,
) -> Schedule | None:
    """Record a fire: `last_run_at` moves forward to `fire_time` (never back), and
    `next_run_at` is set while the schedule is active (a paused one keeps null).

    Every process fires the same instant, so this is written to be repeated harmlessly.
    None when the schedule is gone or was replaced by another id.
    """
    fire = literal(fire_time, UTCDateTime())
    stmt = (
        update(_TABLE)
        .where(_C.workspace_id == workspace_id, _C.schedule_id == schedule_id)
        .values(
            last_run_at=case(
                (_C.last_run_at.is_(None) | (_C.last_run_at < fire), fire),
                else_=_C.last_run_at,
            ),
            next_run_at=case(
                (_C.is_active.is_(True), literal(next_run_at, UTCDateTime())),
                else_=None,
            ),
            updated_at=_C.updated_at,
        )
        .returning(*_TABLE.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


__all__ = [
    "delete_schedule",
    "get_schedule",
    "list_active_schedules",
    "mark_fired",
    "set_active",
    "set_next_run_at",
    "upsert_schedule",
    "workspace_exists",
]
