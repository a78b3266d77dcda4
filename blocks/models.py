"""Plain frozen data the builders take: no ORM rows, no Slack client. Handlers and the scheduler
convert their own objects into these; the builders never reach for anything else.

Times are timezone-aware (UTC from the store; naive values are read as UTC). Imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class ChannelRef(NamedTuple):
    """A channel as shown to people: its id, and its name without `#` when known."""

    id: str
    name: str | None = None


class SkippedChannel(NamedTuple):
    """A channel a run did not read, and why (the engine reports `(id, name, reason)` triples)."""

    id: str
    name: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """The workspace's one schedule (`backfill_schedules`), with its cron already put in words."""

    cron: str
    description: str  # the cron in words, e.g. "At 02:00 AM" (cron-descriptor, made by the caller)
    timezone: str  # IANA name as stored
    days: int
    include_all_channels: bool
    channels: tuple[ChannelRef, ...] = ()  # empty when include_all_channels
    is_active: bool = True
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    created_by: str | None = None  # Slack user id
    schedule_id: int | None = None

    @property
    def channel_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.channels)

    @property
    def channel_names(self) -> tuple[str | None, ...]:
        return tuple(c.name for c in self.channels)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One run (`backfill_job_runs`). `status`: running | success | failed | cancelled."""

    job_run_id: int
    job_type: str  # scheduled | manual
    status: str
    messages_collected: int = 0
    channels_processed: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str | None = None
    triggered_by: str | None = None  # Slack user id for manual runs, None when scheduled
    channels_skipped: tuple[SkippedChannel | tuple[str, str | None, str], ...] = ()
    days: int | None = None  # the window asked for, when known


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    """A snapshot of the run in progress (from the engine's progress callback)."""

    channels_done: int
    channels_total: int
    messages_stored: int
    current_channel: str | None = None  # name without `#`
    calls: int = 0
    rate_limit_waits: int = 0
    eta_seconds: float | None = None  # None until the first channel is done
    started_at: datetime | None = None
    job_run_id: int | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """What the store holds for the workspace."""

    messages_stored: int = 0
    channels: int = 0
    last_success_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CronPreset:
    """A choice of the schedule modal's preset menu; picking it fills the cron input."""

    label: str
    cron: str


DEFAULT_PRESETS: tuple[CronPreset, ...] = (
    CronPreset("Every hour", "0 * * * *"),
    CronPreset("Every day at 02:00", "0 2 * * *"),
    CronPreset("Weekdays at 06:00", "0 6 * * 1-5"),
    CronPreset("Every Sunday at 03:00", "0 3 * * 0"),
    CronPreset("First day of the month at 04:00", "0 4 1 * *"),
)
