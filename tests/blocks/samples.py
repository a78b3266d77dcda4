"""Fixed data for the builder tests: a fixed `now`, small realistic samples and very large ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blocks.models import ChannelRef
from db.records import Progress, Run, Schedule, SkippedChannel, SlackCalls, Totals

NOW = datetime(2026, 3, 3, 14, 5, 0, tzinfo=UTC)
VIEWER_TZ = "Europe/Paris"
LONG_ERROR = ("SlackApiError: ratelimited <&> " + "x" * 97) * 400  # ~50k characters with entities
UNICODE = "ünïcødé-頻道-🚀-"

SCHEDULE = Schedule(
    schedule_id=1,
    workspace_id="T0000000001",
    cron_expression="0 2 * * *",
    timezone="Europe/Paris",
    days_to_backfill=7,
    include_all_channels=False,
    channel_ids=("C0000GENERAL", "C0000ENG0001"),
    is_active=True,
    next_run_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
    last_run_at=datetime(2026, 3, 3, 1, 0, tzinfo=UTC),
    created_by="U0ADMIN0001",
)

PAUSED_ALL = Schedule(
    schedule_id=2,
    workspace_id="T0000000001",
    cron_expression="0 6 * * 1-5",
    timezone="UTC",
    days_to_backfill=3,
    include_all_channels=True,
    is_active=False,
    next_run_at=None,
    created_by="U0ADMIN0001",
)

SUCCESS = Run(
    job_run_id=11,
    workspace_id="T0000000001",
    job_type="scheduled",
    status="success",
    messages_collected=12345,
    channels_processed=42,
    started_at=datetime(2026, 3, 3, 1, 0, tzinfo=UTC),
    completed_at=datetime(2026, 3, 3, 1, 3, 12, tzinfo=UTC),
    channels_skipped=(
        SkippedChannel("C0000ARCH001", "old-project", "archived"),
        SkippedChannel("G0000PRIV001", "secret", "private, bot not a member"),
    ),
    days=7,
    messages_removed=37,
    slack_calls=(
        SlackCalls("conversations.history", 64, 0.0),
        SlackCalls("conversations.replies", 58, 72.4, rate_limited=1, spaced=True),
        SlackCalls("conversations.list", 1),
        SlackCalls("users.list", 1),
    ),
)

FAILED = Run(
    job_run_id=10,
    workspace_id="T0000000001",
    job_type="manual",
    status="failed",
    messages_collected=200,
    channels_processed=3,
    started_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    completed_at=datetime(2026, 3, 2, 9, 31, 5, tzinfo=UTC),
    error_message="Slack kept answering 503 to conversations.history after 5 retries",
    triggered_by="U0MEMBER001",
    days=2,
)

RUNNING = Run(
    job_run_id=12,
    workspace_id="T0000000001",
    job_type="manual",
    status="running",
    messages_collected=0,
    channels_processed=0,
    started_at=datetime(2026, 3, 3, 14, 0, tzinfo=UTC),
    triggered_by="U0MEMBER001",
    days=7,
)

PROGRESS = Progress(
    channels_done=12,
    channels_total=40,
    messages_stored=3456,
    current_channel="general",
    calls=88,
    rate_limit_waits=2,
    eta_s=610.0,
    started_at=datetime(2026, 3, 3, 14, 0, tzinfo=UTC),
    job_run_id=12,
)

TOTALS = Totals(messages_stored=1234567, channels=42, last_success_at=SUCCESS.completed_at)


def many_channels(n: int) -> tuple[ChannelRef, ...]:
    return tuple(ChannelRef(f"C{i:010d}", f"{UNICODE}channel-{i}-" + "n" * 40) for i in range(n))


def many_channel_ids(n: int) -> tuple[str, ...]:
    return tuple(f"C{i:010d}" for i in range(n))


def huge_schedule(n: int = 500) -> Schedule:
    return Schedule(
        schedule_id=3,
        workspace_id="T0000000001",
        cron_expression="*/5 " * 40 + "* * * * *",  # not a cron: described as "cron */5 …"
        timezone="America/Argentina/ComodRivadavia",
        days_to_backfill=365,
        include_all_channels=False,
        channel_ids=many_channel_ids(n),
        is_active=True,
        next_run_at=NOW + timedelta(minutes=5),
        last_run_at=NOW,
        created_by="U0ADMIN0001",
    )


def many_skipped(n: int, reasons: int = 20) -> tuple[SkippedChannel, ...]:
    return tuple(
        SkippedChannel(
            f"C{i:010d}",
            f"{UNICODE}skipped-{i}-" + "s" * 60,
            f"reason {i % reasons} <&> " + "r" * 150,
        )
        for i in range(n)
    )


def many_runs(n: int) -> list[Run]:
    runs = []
    for i in range(n):
        status = ("success", "failed", "cancelled")[i % 3]
        runs.append(
            Run(
                job_run_id=1000 - i,
                workspace_id="T0000000001",
                job_type="manual" if i % 2 else "scheduled",
                status=status,
                messages_collected=i * 1000,
                channels_processed=i,
                started_at=NOW - timedelta(hours=i + 1),
                completed_at=NOW - timedelta(hours=i + 1) + timedelta(minutes=7),
                error_message=LONG_ERROR if status == "failed" else None,
                triggered_by="U0MEMBER001" if i % 2 else None,
                channels_skipped=many_skipped(300),
                days=365,
                slack_calls=tuple(
                    SlackCalls(f"{UNICODE}method.{m}" + "m" * 80, 10**9, 1e9, 10**6, True)
                    for m in range(40)
                ),
            )
        )
    return runs
