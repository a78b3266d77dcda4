"""Fixed data for the builder tests: a fixed `now`, small realistic samples and very large ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blocks.models import ChannelRef, ProgressInfo, RunInfo, ScheduleInfo, SkippedChannel, Totals

NOW = datetime(2026, 3, 3, 14, 5, 0, tzinfo=UTC)
VIEWER_TZ = "Europe/Paris"
LONG_ERROR = ("SlackApiError: ratelimited <&> " + "x" * 97) * 400  # ~50k characters with entities
UNICODE = "ünïcødé-頻道-🚀-"

SCHEDULE = ScheduleInfo(
    cron="0 2 * * *",
    description="At 02:00 AM",
    timezone="Europe/Paris",
    days=7,
    include_all_channels=False,
    channels=(ChannelRef("C0000GENERAL", "general"), ChannelRef("C0000ENG0001", "eng")),
    is_active=True,
    next_run_at=datetime(2026, 3, 4, 1, 0, tzinfo=UTC),
    last_run_at=datetime(2026, 3, 3, 1, 0, tzinfo=UTC),
    created_by="U0ADMIN0001",
    schedule_id=1,
)

PAUSED_ALL = ScheduleInfo(
    cron="0 6 * * 1-5",
    description="At 06:00 AM, Monday through Friday",
    timezone="UTC",
    days=3,
    include_all_channels=True,
    is_active=False,
    next_run_at=None,
    created_by="U0ADMIN0001",
)

SUCCESS = RunInfo(
    job_run_id=11,
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
)

FAILED = RunInfo(
    job_run_id=10,
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

RUNNING = RunInfo(
    job_run_id=12,
    job_type="manual",
    status="running",
    messages_collected=0,
    channels_processed=0,
    started_at=datetime(2026, 3, 3, 14, 0, tzinfo=UTC),
    triggered_by="U0MEMBER001",
    days=7,
)

PROGRESS = ProgressInfo(
    channels_done=12,
    channels_total=40,
    messages_stored=3456,
    current_channel="general",
    calls=88,
    rate_limit_waits=2,
    eta_seconds=610.0,
    started_at=datetime(2026, 3, 3, 14, 0, tzinfo=UTC),
    job_run_id=12,
)

TOTALS = Totals(messages_stored=1234567, channels=42, last_success_at=SUCCESS.completed_at)


def many_channels(n: int) -> tuple[ChannelRef, ...]:
    return tuple(ChannelRef(f"C{i:010d}", f"{UNICODE}channel-{i}-" + "n" * 40) for i in range(n))


def huge_schedule(n: int = 500) -> ScheduleInfo:
    return ScheduleInfo(
        cron="*/5 " * 40 + "* * * * *",
        description="Every 5 minutes " * 300,
        timezone="America/Argentina/ComodRivadavia",
        days=365,
        include_all_channels=False,
        channels=many_channels(n),
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


def many_runs(n: int) -> list[RunInfo]:
    runs = []
    for i in range(n):
        status = ("success", "failed", "cancelled")[i % 3]
        runs.append(
            RunInfo(
                job_run_id=1000 - i,
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
            )
        )
    return runs
