"""Queries for `backfill_job_runs`: claiming runs, heartbeats, cancel requests, retries, finishing.

The database is the cross-process lock: an insert that breaks the partial unique index (one
`running` run per workspace) or UNIQUE(schedule_id, fire_time) raises `IntegrityError`, which
the caller turns into a refusal. Every write that a process makes to a run it owns is
conditional on `owner` and `status = 'running'`, so a process that lost its run (taken over
after a stall) can never overwrite the new owner's work. Functions take the `AsyncSession`
first and never commit: callers own transactions. Imports SQLAlchemy and `db` only. One module
(~490 lines): every query here guards the same ownership invariant, and reads best side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BackfillJobRun, BackfillSchedule, Message, Workspace, utcnow
from db.records import Run, SkippedChannel, SlackCalls, Totals

# A released run's heartbeat: older than any staleness cutoff, so the next process takes it at once.
RELEASED_HEARTBEAT = datetime(1970, 1, 1, tzinfo=UTC)

_RUNS = cast(Table, BackfillJobRun.__table__)
_R = _RUNS.c
_SCHEDULES = cast(Table, BackfillSchedule.__table__)
_MESSAGES = cast(Table, Message.__table__)


def _skipped(value: Any) -> tuple[SkippedChannel, ...]:
    out: list[SkippedChannel] = []
    for item in value or ():
        if isinstance(item, dict):
            name = item.get("name")
            out.append(SkippedChannel(str(item.get("id")), name, str(item.get("reason", ""))))
        elif isinstance(item, (list, tuple)) and len(item) == 3:
            name = None if item[1] is None else str(item[1])
            out.append(SkippedChannel(str(item[0]), name, str(item[2])))
    return tuple(out)


def _from_row(row: Any) -> Run:
    return Run(
        job_run_id=row.job_run_id,
        workspace_id=row.workspace_id,
        schedule_id=row.schedule_id,
        job_type=row.job_type,
        status=row.status,
        messages_collected=row.messages_collected or 0,
        channels_processed=row.channels_processed or 0,
        error_message=row.error_message,
        triggered_by=row.triggered_by,
        started_at=row.started_at,
        completed_at=row.completed_at,
        heartbeat_at=row.heartbeat_at,
        fire_time=row.fire_time,
        days=row.days,
        channels_skipped=_skipped(row.channels_skipped),
        cancel_requested_by=row.cancel_requested_by,
        cancel_requested_at=row.cancel_requested_at,
        attempt=row.attempt or 0,
        interruptions=row.interruptions or 0,
        owner=row.owner,
        retry_at=row.retry_at,
        channel_ids=None if row.channel_ids is None else tuple(row.channel_ids),
        slack_calls=_slack_calls(row.slack_calls),
        messages_removed=row.messages_removed,
    )


def _slack_calls(value: Any) -> tuple[SlackCalls, ...]:
    out: list[SlackCalls] = []
    for item in value or ():
        if isinstance(item, dict) and item.get("method"):
            out.append(
                SlackCalls(
                    str(item["method"]),
                    int(item.get("calls") or 0),
                    float(item.get("waited_s") or 0.0),
                    int(item.get("rate_limited") or 0),
                    bool(item.get("spaced")),
                )
            )
    return tuple(out)


def slack_calls_json(calls: Sequence[SlackCalls]) -> list[dict[str, Any]]:
    """A run's per-method figures as stored in `slack_calls`."""
    return [c._asdict() for c in calls]


def skipped_json(skipped: Sequence[tuple[str, str | None, str]]) -> list[dict[str, Any]]:
    """The engine's `(id, name, reason)` triples as stored in `channels_skipped`."""
    return [{"id": c, "name": n, "reason": r} for c, n, r in skipped]


# -- creating ------------------------------------------------------------------------------------


async def insert_run(
    session: AsyncSession,
    *,
    workspace_id: str,
    job_type: str,
    owner: str,
    now: datetime,
    triggered_by: str | None = None,
    schedule_id: int | None = None,
    fire_time: datetime | None = None,
    days: int | None = None,
    channel_ids: Sequence[str] | None = None,
) -> Run:
    """Insert a `running` run owned by `owner`. Raises `IntegrityError` when the workspace
    already has a running run, or the (schedule, fire time) was claimed already."""
    stmt = (
        insert(_RUNS)
        .values(
            workspace_id=workspace_id,
            schedule_id=schedule_id,
            job_type=job_type,
            status="running",
            messages_collected=0,
            channels_processed=0,
            triggered_by=triggered_by,
            started_at=now,
            heartbeat_at=now,
            fire_time=fire_time,
            days=days,
            channel_ids=None if channel_ids is None else list(channel_ids),
            attempt=0,
            interruptions=0,
            owner=owner,
        )
        .returning(*_RUNS.c)
    )
    return _from_row((await session.execute(stmt)).one())


async def ensure_workspace_row(session: AsyncSession, workspace_id: str) -> None:
    """Create the workspace row (named by its id until someone names it) unless it exists.
    A write first, never a read then a write: on SQLite a deferred transaction that reads and
    then writes cannot wait for the lock and fails at once with "database is locked"."""
    table = cast(Table, Workspace.__table__)
    name = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if name == "postgresql" else sqlite.insert
    stmt = dialect_insert(table).values(
        workspace_id=workspace_id, name=workspace_id, created_at=utcnow()
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=[table.c.workspace_id]))


# -- reading -------------------------------------------------------------------------------------


async def get_run(session: AsyncSession, job_run_id: int) -> Run | None:
    row = (await session.execute(select(_RUNS).where(_R.job_run_id == job_run_id))).first()
    return None if row is None else _from_row(row)


async def running_run(session: AsyncSession, workspace_id: str) -> Run | None:
    """The workspace's running run (at most one: the partial unique index), or None."""
    stmt = select(_RUNS).where(_R.workspace_id == workspace_id, _R.status == "running")
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def run_for_fire(session: AsyncSession, schedule_id: int, fire_time: datetime) -> Run | None:
    """The run that claimed this fire of the schedule, if any."""
    stmt = select(_RUNS).where(_R.schedule_id == schedule_id, _R.fire_time == fire_time)
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def list_runs(session: AsyncSession, workspace_id: str, limit: int = 10) -> list[Run]:
    """The workspace's most recent runs, newest first."""
    stmt = (
        select(_RUNS)
        .where(_R.workspace_id == workspace_id)
        .order_by(_R.started_at.desc(), _R.job_run_id.desc())
        .limit(limit)
    )
    return [_from_row(row) for row in (await session.execute(stmt)).all()]


async def stale_runs(
    session: AsyncSession, cutoff: datetime, *, exclude_owner: str | None = None
) -> list[Run]:
    """Running runs whose heartbeat is older than `cutoff` (their process died or let go)."""
    stmt = select(_RUNS).where(
        _R.status == "running",
        or_(_R.heartbeat_at.is_(None), _R.heartbeat_at < cutoff),
    )
    if exclude_owner is not None:
        stmt = stmt.where(or_(_R.owner.is_(None), _R.owner != exclude_owner))
    stmt = stmt.order_by(_R.started_at, _R.job_run_id)
    return [_from_row(row) for row in (await session.execute(stmt)).all()]


async def running_runs_owned_from(session: AsyncSession, owner_prefix: str) -> list[Run]:
    """Running runs whose owner name starts with `owner_prefix` (the owners on one host, say),
    whatever their heartbeat."""
    stmt = (
        select(_RUNS)
        .where(_R.status == "running", _R.owner.startswith(owner_prefix, autoescape=True))
        .order_by(_R.started_at, _R.job_run_id)
    )
    return [_from_row(row) for row in (await session.execute(stmt)).all()]


async def due_retries(session: AsyncSession, now: datetime) -> list[Run]:
    """Failed runs whose automatic retry is due."""
    stmt = (
        select(_RUNS)
        .where(_R.status == "failed", _R.retry_at.is_not(None), _R.retry_at <= now)
        .order_by(_R.retry_at, _R.job_run_id)
    )
    return [_from_row(row) for row in (await session.execute(stmt)).all()]


async def has_newer_run(session: AsyncSession, workspace_id: str, job_run_id: int) -> bool:
    """Whether the workspace started another run after this one (a pending retry is then moot)."""
    stmt = select(_R.job_run_id).where(_R.workspace_id == workspace_id, _R.job_run_id > job_run_id)
    return (await session.execute(stmt.limit(1))).first() is not None


# -- the owner's writes --------------------------------------------------------------------------


async def heartbeat(
    session: AsyncSession,
    job_run_id: int,
    owner: str,
    now: datetime,
    *,
    messages_collected: int | None = None,
    channels_processed: int | None = None,
) -> tuple[bool, bool]:
    """Beat for a run this process owns; also saves its counts so far.

    Returns (still owned, cancel requested). Not owned means another process took the run over
    (or it ended): the caller must stop working on it and write nothing more.
    """
    values: dict[str, Any] = {"heartbeat_at": now}
    if messages_collected is not None:
        values["messages_collected"] = messages_collected
    if channels_processed is not None:
        values["channels_processed"] = channels_processed
    stmt = (
        update(_RUNS)
        .where(_R.job_run_id == job_run_id, _R.owner == owner, _R.status == "running")
        .values(**values)
        .returning(_R.cancel_requested_at)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return False, False
    return True, row[0] is not None


async def finish_run(
    session: AsyncSession,
    job_run_id: int,
    owner: str,
    *,
    status: str,
    now: datetime,
    messages_collected: int,
    channels_processed: int,
    channels_skipped: Sequence[SkippedChannel] | None = None,
    error_message: str | None = None,
    retry_at: datetime | None = None,
    slack_calls: Sequence[SlackCalls] | None = None,
    messages_removed: int | None = None,
) -> Run | None:
    """End a run this process owns: `success`, `failed` (with `retry_at` when an automatic retry
    is planned) or `cancelled`. None when the run is no longer ours. `messages_removed` (every
    attempt's, summed) is left as it was when None."""
    values: dict[str, Any] = {
        "status": status,
        "completed_at": now,
        "messages_collected": messages_collected,
        "channels_processed": channels_processed,
        "error_message": error_message,
        "retry_at": retry_at,
        "owner": None,
        "heartbeat_at": now,
    }
    if channels_skipped is not None:
        values["channels_skipped"] = skipped_json(channels_skipped)
    if slack_calls is not None:
        values["slack_calls"] = slack_calls_json(slack_calls)
    if messages_removed is not None:
        values["messages_removed"] = messages_removed
    stmt = (
        update(_RUNS)
        .where(_R.job_run_id == job_run_id, _R.owner == owner, _R.status == "running")
        .values(**values)
        .returning(*_RUNS.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def release_run(
    session: AsyncSession,
    job_run_id: int,
    owner: str,
    *,
    messages_collected: int | None = None,
    channels_processed: int | None = None,
    slack_calls: Sequence[SlackCalls] | None = None,
    messages_removed: int | None = None,
) -> bool:
    """Let go of a run at shutdown: it stays `running`, with no owner and an ancient heartbeat,
    so the next process that looks takes it over at once (without counting an interruption)."""
    values: dict[str, Any] = {"owner": None, "heartbeat_at": RELEASED_HEARTBEAT}
    if messages_collected is not None:
        values["messages_collected"] = messages_collected
    if channels_processed is not None:
        values["channels_processed"] = channels_processed
    if slack_calls is not None:
        values["slack_calls"] = slack_calls_json(slack_calls)
    if messages_removed is not None:
        values["messages_removed"] = messages_removed
    stmt = (
        update(_RUNS)
        .where(_R.job_run_id == job_run_id, _R.owner == owner, _R.status == "running")
        .values(**values)
    )
    return bool((await session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


# -- taking runs over ----------------------------------------------------------------------------


async def claim_stale(
    session: AsyncSession, run: Run, owner: str, *, cutoff: datetime, now: datetime
) -> Run | None:
    """Take over a stale running run, unless another process did first (compare-and-set on the
    owner and heartbeat seen). A run that was not released (heartbeat not the release mark)
    counts one more interruption. None when someone else won."""
    return await _take_over(
        session, run, owner, now, or_(_R.heartbeat_at.is_(None), _R.heartbeat_at < cutoff)
    )


async def claim_orphaned(
    session: AsyncSession, run: Run, owner: str, *, now: datetime
) -> Run | None:
    """Take over a running run whose owner is known to be dead (a process of this host that is
    gone), however fresh its heartbeat. The same compare-and-set as `claim_stale`: a row that
    changed since it was read (its owner beat after all, or another process took it) is left
    alone, and None returned."""
    return await _take_over(session, run, owner, now)


async def _take_over(
    session: AsyncSession, run: Run, owner: str, now: datetime, *conditions: ColumnElement[bool]
) -> Run | None:
    interrupted = run.heartbeat_at is None or run.heartbeat_at > RELEASED_HEARTBEAT
    owner_seen = _R.owner.is_(None) if run.owner is None else _R.owner == run.owner
    heartbeat_seen = (
        _R.heartbeat_at.is_(None)
        if run.heartbeat_at is None
        else _R.heartbeat_at == run.heartbeat_at
    )
    stmt = (
        update(_RUNS)
        .where(
            _R.job_run_id == run.job_run_id,
            _R.status == "running",
            owner_seen,
            heartbeat_seen,
            *conditions,
        )
        .values(
            owner=owner,
            heartbeat_at=now,
            interruptions=_R.interruptions + (1 if interrupted else 0),
        )
        .returning(*_RUNS.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def claim_retry(
    session: AsyncSession, job_run_id: int, owner: str, now: datetime
) -> Run | None:
    """Turn a failed run with a due retry back into a running run owned by `owner` (same
    `job_run_id`, so the engine resumes from its checkpoints). None when another process took
    it first. Raises `IntegrityError` when the workspace has another run running."""
    stmt = (
        update(_RUNS)
        .where(
            _R.job_run_id == job_run_id,
            _R.status == "failed",
            _R.retry_at.is_not(None),
            _R.retry_at <= now,
        )
        .values(
            status="running",
            owner=owner,
            heartbeat_at=now,
            completed_at=None,
            error_message=None,
            retry_at=None,
            attempt=_R.attempt + 1,
        )
        .returning(*_RUNS.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


async def clear_retry(session: AsyncSession, job_run_id: int) -> None:
    """Drop a pending automatic retry (a newer run made it moot)."""
    await session.execute(update(_RUNS).where(_R.job_run_id == job_run_id).values(retry_at=None))


async def end_unowned(
    session: AsyncSession,
    job_run_id: int,
    owner: str,
    *,
    status: str,
    now: datetime,
    error_message: str | None,
) -> Run | None:
    """End a run this process has just claimed without running it (cancelled meanwhile, or
    interrupted too often). Same guard as `finish_run`, keeping the stored counts."""
    stmt = (
        update(_RUNS)
        .where(_R.job_run_id == job_run_id, _R.owner == owner, _R.status == "running")
        .values(status=status, completed_at=now, error_message=error_message, owner=None)
        .returning(*_RUNS.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


# -- cancel --------------------------------------------------------------------------------------


async def request_cancel(
    session: AsyncSession, job_run_id: int, user_id: str, now: datetime
) -> Run | None:
    """Record a cancel request on a running run (the owner's heartbeat sees it). The first
    request is kept. None when the run is not running any more."""
    stmt = (
        update(_RUNS)
        .where(_R.job_run_id == job_run_id, _R.status == "running")
        .values(
            cancel_requested_by=func.coalesce(_R.cancel_requested_by, user_id),
            cancel_requested_at=func.coalesce(_R.cancel_requested_at, now),
        )
        .returning(*_RUNS.c)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row)


# -- schedules -----------------------------------------------------------------------------------


async def set_paused_reason(session: AsyncSession, workspace_id: str, reason: str | None) -> None:
    """Record why the app paused the workspace's schedule (null: not paused by the app)."""
    await session.execute(
        update(_SCHEDULES)
        .where(_SCHEDULES.c.workspace_id == workspace_id)
        .values(paused_reason=reason, updated_at=_SCHEDULES.c.updated_at)
    )


async def get_paused_reason(session: AsyncSession, workspace_id: str) -> str | None:
    stmt = select(_SCHEDULES.c.paused_reason).where(_SCHEDULES.c.workspace_id == workspace_id)
    row = (await session.execute(stmt)).first()
    return None if row is None else row[0]


# -- totals --------------------------------------------------------------------------------------


async def run_totals(session: AsyncSession, workspace_id: str) -> Totals:
    """Messages stored, channels with at least one message, completion of the last success."""
    m = _MESSAGES.c
    counts = (
        await session.execute(
            select(func.count(), func.count(func.distinct(m.channel_id))).where(
                m.workspace_id == workspace_id
            )
        )
    ).one()
    last = (
        await session.execute(
            select(func.max(_R.completed_at)).where(
                and_(_R.workspace_id == workspace_id, _R.status == "success")
            )
        )
    ).scalar_one()
    return Totals(messages_stored=int(counts[0]), channels=int(counts[1]), last_success_at=last)


__all__ = [
    "RELEASED_HEARTBEAT",
    "claim_orphaned",
    "claim_retry",
    "claim_stale",
    "clear_retry",
    "due_retries",
    "end_unowned",
    "ensure_workspace_row",
    "finish_run",
    "get_paused_reason",
    "get_run",
    "has_newer_run",
    "heartbeat",
    "insert_run",
    "list_runs",
    "release_run",
    "request_cancel",
    "run_for_fire",
    "running_run",
    "running_runs_owned_from",
    "set_paused_reason",
    "skipped_json",
    "slack_calls_json",
    "stale_runs",
]
