"""Turn the scheduler's values into the plain data `blocks/` renders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from blocks.models import ChannelRef, ProgressInfo, RunInfo, ScheduleInfo, SkippedChannel, Totals


def schedule_info(schedule: Any | None, names: Mapping[str, str] | None = None) -> ScheduleInfo | None:
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


def run_info(run: Any | None) -> RunInfo | None:
    if run is None:
        return None
    skipped = tuple(
        SkippedChannel(*item) if isinstance(item, (list, tuple)) else
        SkippedChannel(item.get("id", ""), item.get("name"), item.get("reason", ""))
        for item in (run.channels_skipped or ())
    )
    return RunInfo(
        job_run_id=run.job_run_id,
        job_type=run.job_type,
        status=run.status,
        messages_collected=run.messages_collected or 0,
        channels_processed=run.channels_processed or 0,
        started_at=run.started_at,
        completed_at=run.completed_at,
        error_message=run.error_message,
        triggered_by=run.triggered_by,
        channels_skipped=skipped,
        days=run.days,
    )


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


def totals_info(totals: Any | None) -> Totals | None:
    if totals is None:
        return None
    if isinstance(totals, Totals):
        return totals
    return Totals(
        messages_stored=totals.messages_stored,
        channels=totals.channels,
        last_success_at=totals.last_success_at,
    )
