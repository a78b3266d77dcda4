"""The app's entities as plain frozen values: one type each, made by `db/` from a row (or, for a
message, by the engine for `db/` to write) and passed as is to the scheduler, the handlers and the
`blocks/` builders (which may import this module and
no other of ours). No ORM object, no session, no Slack client; imports nothing of ours.

Times are timezone-aware UTC as stored (`db.models.UTCDateTime`). Fields mirror the columns of
`db.models` (see there for what each means); keyword-only, with defaults where a column may be
empty, so a test or a builder can make one from the fields it cares about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One Slack message as stored: `ts` is text exactly as Slack sent it, never a float."""

    workspace_id: str
    channel_id: str
    channel_name: str
    ts: str
    thread_ts: str | None
    user_id: str
    user_name: str
    text: str
    edited_ts: str | None = None  # Slack's `edited.ts`: a copy with an older edit never wins

    @property
    def document_id(self) -> str:
        """Chroma document id: deterministic, so a re-upsert replaces instead of duplicating."""
        return f"{self.channel_id}:{self.ts}"


class SkippedChannel(NamedTuple):
    """A channel a run did not read, and why (stored in `backfill_job_runs.channels_skipped`)."""

    id: str
    name: str | None
    reason: str


class SlackCalls(NamedTuple):
    """What a run asked of one Slack method: the calls made (retries included), the seconds spent
    waiting for Slack's limits before them (the pacer's windows and `Retry-After`), the 429s
    received, and whether a 429 switched the method to even spacing for the rest of the run."""

    method: str
    calls: int
    waited_s: float = 0.0
    rate_limited: int = 0
    spaced: bool = False


def add_slack_calls(
    earlier: tuple[SlackCalls, ...], later: tuple[SlackCalls, ...]
) -> tuple[SlackCalls, ...]:
    """The figures of two attempts of one run (a resume after a restart), method by method."""
    summed = {c.method: c for c in earlier}
    for c in later:
        before = summed.get(c.method)
        summed[c.method] = (
            c
            if before is None
            else SlackCalls(
                c.method,
                before.calls + c.calls,
                before.waited_s + c.waited_s,
                before.rate_limited + c.rate_limited,
                before.spaced or c.spaced,
            )
        )
    return tuple(sorted(summed.values(), key=lambda c: (-c.calls, c.method)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One `backfill_job_runs` row. `status`: running | success | failed | cancelled;
    `job_type`: scheduled | manual."""

    job_run_id: int
    workspace_id: str
    job_type: str
    status: str
    started_at: datetime
    schedule_id: int | None = None
    messages_collected: int = 0
    channels_processed: int = 0
    error_message: str | None = None
    triggered_by: str | None = None  # Slack user id for manual runs, None when scheduled
    completed_at: datetime | None = None
    heartbeat_at: datetime | None = None
    fire_time: datetime | None = None  # the schedule fire this run serves
    days: int | None = None  # the window asked for
    channels_skipped: tuple[SkippedChannel, ...] = ()
    channel_ids: tuple[str, ...] | None = None  # None: every channel the app can read
    cancel_requested_by: str | None = None
    cancel_requested_at: datetime | None = None
    attempt: int = 0  # automatic retries made
    interruptions: int = 0  # process deaths survived
    owner: str | None = None  # the process working on it (None once released or finished)
    retry_at: datetime | None = None  # an automatic retry is pending
    slack_calls: tuple[SlackCalls, ...] = ()  # per method, busiest first; () before any figures
    # Stored messages removed because Slack no longer had them; None when the run did not prune.
    messages_removed: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A workspace's one `backfill_schedules` row. `next_run_at` is None while paused."""

    schedule_id: int
    workspace_id: str
    cron_expression: str
    timezone: str  # IANA name
    days_to_backfill: int
    include_all_channels: bool = True
    channel_ids: tuple[str, ...] = ()  # empty when include_all_channels
    is_active: bool = True
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A snapshot of a run in progress, as the engine reports it (its run service adds the run's
    id and start when it passes the snapshot on)."""

    channels_done: int
    channels_total: int
    messages_stored: int  # messages kept in scope so far (written or already stored)
    messages_written: int = 0  # rows actually inserted or changed so far
    current_channel: str | None = None  # channel name without '#'
    calls: int = 0  # every Slack HTTP attempt, retries included
    rate_limit_waits: int = 0  # 429s received
    wait_seconds: float = 0.0  # pacing + Retry-After + backoff
    elapsed_s: float = 0.0
    eta_s: float | None = None  # None until one channel is done
    job_run_id: int | None = None
    started_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """What the store holds for a workspace."""

    messages_stored: int = 0
    channels: int = 0  # channels with at least one stored message
    last_success_at: datetime | None = None  # when the last successful run ended


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorStatus:
    """How the live mirror stands for a workspace: whether it is on (`LIVE_SYNC`), events
    waiting, the oldest one's arrival, events applied today (UTC), and when the newest was applied
    and sent by Slack."""

    live: bool = True

    backlog: int = 0
    oldest_waiting_at: datetime | None = None
    applied_today: int = 0
    last_applied_at: datetime | None = None
    last_event_at: datetime | None = None


__all__ = [
    "MessageRecord",
    "MirrorStatus",
    "Progress",
    "Run",
    "Schedule",
    "SkippedChannel",
    "SlackCalls",
    "Totals",
    "add_slack_calls",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    """The current bot install of a workspace, or of an Enterprise Grid org (`team_id` None,
    `is_enterprise_install`), with its tokens decrypted (kept out of `repr`, so a log line or a
    traceback never shows them; None once revoked). `status`: active | needs_reinstall | revoked.
    """

    enterprise_id: str | None
    team_id: str | None
    installer_user_id: str
    installed_at: datetime
    is_enterprise_install: bool = False
    enterprise_name: str | None = None
    enterprise_url: str | None = None
    team_name: str | None = None
    app_id: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_scopes: tuple[str, ...] = ()
    token_type: str | None = None
    bot_token: str | None = field(default=None, repr=False)
    bot_refresh_token: str | None = field(default=None, repr=False)  # Slack's token rotation
    bot_token_expires_at: datetime | None = None  # None: the token does not expire
    status: str = "active"
    status_reason: str | None = None


__all__ += ["Installation"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One stored message found by a search, best first: `score` is its fused rank (reciprocal
    rank fusion of the word match and the meaning match; higher is better, only the order means
    anything), `permalink` the message's link in Slack when known."""

    message: MessageRecord
    score: float
    permalink: str | None = None


__all__ += ["SearchHit"]
