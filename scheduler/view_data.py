"""Turn the scheduler's values into the plain data `blocks/` renders (the Home publisher here and
the listeners in `handlers/` both use it). Imports `blocks.models` and the scheduler's own types;
no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from blocks.models import ChannelRef, ProgressInfo, RunInfo, ScheduleInfo
from scheduler.runs import RunRow


def schedule_info(
    schedule: Any | None, names: Mapping[str, str] | None = None
) -> ScheduleInfo | None:
    if schedule is None:
        return None
    names = names or {}
    return ScheduleInfo(
        cron=schedule.cron_expression,
        description=schedule.description,
        timezone=schedule.timezone,
        days=schedule.days_to_backfill,
        include_all_channels=schedule.include_all_channels,
        channels=tuple(ChannelRef(c, names.get(c)) for c in schedule.channel_ids),
        is_active=schedule.is_active,
        next_run_at=schedule.next_run_at,
        last_run_at=schedule.last_run_at,
        created_by=schedule.created_by,
        schedule_id=schedule.schedule_id,
    )


def run_info(run: RunRow | None) -> RunInfo | None:
    return None if run is None else run.info()


def progress_info(progress: Any | None, run: Any | None) -> ProgressInfo | None:
    if progress is None:
        return None
    started = getattr(run, "started_at", None) if run is not None else None
    return ProgressInfo(
        channels_done=progress.channels_done,
        channels_total=progress.channels_total,
        messages_stored=progress.messages_stored,
        current_channel=progress.current_channel,
        calls=progress.calls,
        rate_limit_waits=progress.rate_limit_waits,
        eta_seconds=progress.eta_s,
        started_at=started or datetime.now(UTC),
        job_run_id=getattr(run, "job_run_id", None),
    )
