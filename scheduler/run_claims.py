"""Claiming a run: the insert of its `running` row, which the database accepts only when the
workspace has no run going (a partial unique index) and, for a scheduled fire, only once per
(schedule_id, fire_time). A refused claim becomes a `RunRefused` naming the run in the way; a
schedule's fire is checked first (gone, paused, or the repeat of a DST wall-clock time).
Imports `db` and `scheduler.*`; never Bolt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from db import runs as repo
from db import schedules as schedules_repo
from db.records import Run, Schedule
from db.session import reading
from scheduler.run_core import RunCore
from scheduler.run_events import RunRefused

logger = logging.getLogger(__name__)


async def claim_run(
    core: RunCore,
    workspace_id: str,
    *,
    job_type: str,
    triggered_by: str | None = None,
    schedule_id: int | None = None,
    fire_time: datetime | None = None,
    days: int | None = None,
    channel_ids: Sequence[str] | None = None,
    clear_retry_of: int | None = None,
) -> Run:
    """Insert the run's `running` row, owned by this process (and clear the pending automatic
    retry of `clear_retry_of`, in the same transaction). Raises `RunRefused` when the workspace
    already has a run going, the fire is already claimed, or this process is stopping."""
    if core.stopping:
        raise RunRefused("The app is restarting; try again in a minute.")
    try:
        async with core.sessions.begin() as session:
            await repo.ensure_workspace_row(session, workspace_id)
            stored = await repo.insert_run(
                session,
                workspace_id=workspace_id,
                job_type=job_type,
                owner=core.owner,
                now=core.now(),
                triggered_by=triggered_by,
                schedule_id=schedule_id,
                fire_time=fire_time,
                days=days,
                channel_ids=channel_ids,
            )
            if clear_retry_of is not None:
                await repo.clear_retry(session, clear_retry_of)
    except IntegrityError:
        raise RunRefused(await _busy_message(core, workspace_id)) from None
    return stored


async def claim_fire(
    core: RunCore,
    workspace_id: str,
    schedule_id: int,
    fire_time: datetime,
    schedule: Schedule | None,
) -> tuple[Run | None, str] | None:
    """Claim the run of a schedule's fire. None: the fire is ignored, not to be recorded
    (schedule gone or paused, or the second fire of a repeated wall-clock time). Else the run's
    row, None when the fire was claimed already (perhaps by another process) or the workspace is
    busy, and who hears about it (the schedule's creator). `schedule` is the schedule as
    `ScheduleService` read it for this fire; None: it is read here."""
    fire_time = fire_time.astimezone(UTC)
    found: Schedule | None = schedule
    if found is None:
        async with reading(core.sessions) as session:
            found = await schedules_repo.get_schedule(session, workspace_id)
    if found is None or found.schedule_id != schedule_id or not found.is_active:
        logger.info(
            "fire of schedule #%s of %s ignored: schedule gone or paused",
            schedule_id,
            workspace_id,
        )
        return None
    last = found.last_run_at
    if (
        last is not None
        and last != fire_time
        and wall_time(last, found.timezone) == wall_time(fire_time, found.timezone)
    ):
        logger.info(
            "second fire of %s at the repeated local time %s skipped",
            workspace_id,
            wall_time(fire_time, found.timezone),
        )
        return None
    try:
        row = await claim_run(
            core,
            workspace_id,
            job_type="scheduled",
            schedule_id=schedule_id,
            fire_time=fire_time,
            days=found.days_to_backfill,
            channel_ids=None if found.include_all_channels else found.channel_ids,
        )
    except RunRefused as refused:
        async with reading(core.sessions) as session:
            claimed = await repo.run_for_fire(session, schedule_id, fire_time)
        if claimed is not None:
            logger.info(
                "fire %s of %s already claimed by run #%s",
                fire_time.isoformat(),
                workspace_id,
                claimed.job_run_id,
            )
        else:
            logger.warning("scheduled run of %s skipped: %s", workspace_id, refused)
        return None, found.created_by
    return row, found.created_by


async def _busy_message(core: RunCore, workspace_id: str) -> str:
    async with reading(core.sessions) as session:
        running = await repo.running_run(session, workspace_id)
    if running is None:
        return "Another backfill has just started or ended in this workspace; try again."
    return (
        f"A backfill is already running in this workspace: run #{running.job_run_id} "
        f"({running.job_type}, {who_started(running)} at {_ago(running.started_at)}). "
        "Wait for it to finish, or stop it with /backfill cancel."
    )


def who_started(run: Run) -> str:
    if run.job_type == "manual" and run.triggered_by:
        return f"started by <@{run.triggered_by}>"
    return "started by the schedule"


def wall_time(moment: datetime, zone: str) -> datetime:
    """`moment` as a naive wall-clock time in `zone` (UTC when the zone is unknown)."""
    try:
        tz = ZoneInfo(zone)
    except Exception:  # noqa: BLE001 - an invalid zone never reaches a stored schedule
        tz = ZoneInfo("UTC")
    return moment.astimezone(tz).replace(tzinfo=None)


def _ago(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["claim_fire", "claim_run", "wall_time", "who_started"]
