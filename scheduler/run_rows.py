"""What the run service hands out: a run as the app shows it (`RunRow`), what its listeners hear
(`RunEvent`), and its refusals (`RunRefused`). Plain data; no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from blocks.models import RunInfo
from db import runs as repo
from scheduler.backfill.progress import Progress


class RunRefused(Exception):
    """A request the service will not carry out; `str()` is the message to show the user."""


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the app shows it: every contract column of `backfill_job_runs`, the window
    (`days`), the channels skipped `(id, name, reason)`, and the lifecycle details."""

    job_run_id: int
    workspace_id: str
    schedule_id: int | None
    job_type: str  # scheduled | manual
    status: str  # running | success | failed | cancelled
    messages_collected: int
    channels_processed: int
    error_message: str | None
    triggered_by: str | None
    started_at: datetime
    completed_at: datetime | None
    days: int | None
    channels_skipped: tuple[tuple[str, str | None, str], ...]
    fire_time: datetime | None = None
    heartbeat_at: datetime | None = None
    channel_ids: tuple[str, ...] | None = None
    cancel_requested_by: str | None = None
    cancel_requested_at: datetime | None = None
    attempt: int = 0  # automatic retries made
    interruptions: int = 0  # process deaths survived
    retry_at: datetime | None = None  # an automatic retry is pending

    @classmethod
    def of(cls, run: repo.StoredRun) -> RunRow:
        return cls(
            job_run_id=run.job_run_id,
            workspace_id=run.workspace_id,
            schedule_id=run.schedule_id,
            job_type=run.job_type,
            status=run.status,
            messages_collected=run.messages_collected,
            channels_processed=run.channels_processed,
            error_message=run.error_message,
            triggered_by=run.triggered_by,
            started_at=run.started_at,
            completed_at=run.completed_at,
            days=run.days,
            channels_skipped=run.channels_skipped,
            fire_time=run.fire_time,
            heartbeat_at=run.heartbeat_at,
            channel_ids=run.channel_ids,
            cancel_requested_by=run.cancel_requested_by,
            cancel_requested_at=run.cancel_requested_at,
            attempt=run.attempt,
            interruptions=run.interruptions,
            retry_at=run.retry_at,
        )

    def info(self) -> RunInfo:
        """The plain data `blocks` builders take."""
        return RunInfo(
            job_run_id=self.job_run_id,
            job_type=self.job_type,
            status=self.status,
            messages_collected=self.messages_collected,
            channels_processed=self.channels_processed,
            started_at=self.started_at,
            completed_at=self.completed_at,
            error_message=self.error_message,
            triggered_by=self.triggered_by,
            channels_skipped=self.channels_skipped,
            days=self.days,
        )


@dataclass(frozen=True, slots=True)
class RunEvent:
    """What a listener hears. `kind`: queued | started | progress | cancel_requested |
    finished | released. `progress` is set for progress events."""

    kind: str
    workspace_id: str
    run: RunRow | None
    progress: Progress | None = None


__all__ = ["RunEvent", "RunRefused", "RunRow"]
