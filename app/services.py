"""Wire the scheduler, the engine, the Home publisher (`scheduler.home`) and the listeners'
dependencies for one workspace; the engine and the listeners' slow halves yield to Slack's
requests through `app.foreground`.

Everything opened here is registered on the caller's `AsyncExitStack`, so it closes once, in
reverse order, on shutdown.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.foreground import after_ack, requests_first
from app.http_sessions import SlackConnections
from app.metrics import Metrics
from app.settings import Settings
from db.vectors import VectorStore
from handlers.deps import Deps
from scheduler.backfill.engine import BackfillEngine, EngineConfig
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import profile_for
from scheduler.home import HomePublisher
from scheduler.notify import Notifier
from scheduler.people import PeopleDirectory
from scheduler.runs import RunEvent, RunService
from scheduler.schedules import ScheduleService

log = logging.getLogger(__name__)
# Other processes may change the schedule table; every process re-reads it this often.
SCHEDULE_SYNC_SECONDS = 60


def build_engine(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    *,
    rate_minute_seconds: float = 60.0,
    metrics: Metrics | None = None,
    connections: SlackConnections | None = None,
) -> BackfillEngine:
    """`rate_minute_seconds` shortens Slack's rate-limit minute, only ever for the demo against
    fakeslack's time compression; against Slack it is always 60. `metrics` hears every call.
    `connections`: the workspace's pooled session, which the gateway's calls share."""
    assert settings.slack_bot_token is not None
    profile = profile_for(settings.slack_rate_profile)
    if rate_minute_seconds != 60.0:
        profile = profile.scaled(rate_minute_seconds)
    gateway = SlackGateway(
        settings.slack_bot_token,
        base_url=settings.slack_api_url,
        profile=profile,
        yield_to=requests_first,
        observer=metrics.on_slack_call if metrics is not None else None,
        session=connections.session() if connections is not None else None,
    )
    if metrics is not None:
        pacer = gateway.pacer  # its waits are tier pacing and Retry-After, nothing else
        metrics.watch_rate_limit_wait(lambda: pacer.total_wait_seconds)
    config = EngineConfig(
        include_bots=settings.include_bots,
        min_text_chars=settings.min_text_chars,
        thread_lookback_days=settings.thread_lookback_days,
        auto_join=settings.auto_join,
        prune_deleted=settings.prune_deleted,
    )
    return BackfillEngine(gateway, sessions, vectors, config, yield_to=requests_first)


async def start_services(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    client: AsyncWebClient,
    team_id: str,
    rate_minute_seconds: float = 60.0,
    metrics: Metrics | None = None,
    connections: SlackConnections | None = None,
) -> Deps:
    """Start APScheduler, the run service and the Home publisher; return the listeners' deps."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    runs: RunService

    async def on_fire(workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        await runs.on_schedule_fire(workspace_id, schedule_id, fire_time)

    schedules = ScheduleService(sessions, scheduler, on_fire)
    people = PeopleDirectory()  # listeners and DMs share one users.info cache
    runs = RunService(
        sessions=sessions,
        engine=build_engine(
            settings,
            sessions,
            vectors,
            rate_minute_seconds=rate_minute_seconds,
            metrics=metrics,
            connections=connections,
        ),
        notifier=Notifier(client, people=people),
        schedules=schedules,
        run_concurrency=settings.run_concurrency,
        run_retries=settings.run_retries,
    )
    home = HomePublisher(team_id, schedules, runs, people, members_can_run=settings.members_can_run)
    deps = Deps(
        team_id=team_id,
        schedules=schedules,
        runs=runs,
        home=home,
        after_ack=after_ack,  # listeners' slow halves wait for the requests being answered
        members_can_run=settings.members_can_run,
        people=people,
    )

    def on_run_event(event: RunEvent) -> None:
        if event.workspace_id == team_id:
            home.refresh_soon(client)

    runs.add_listener(on_run_event)
    if metrics is not None:
        runs.add_listener(metrics.on_run_event)
    scheduler.start()
    stack.push_async_callback(schedules.close)  # stops APScheduler, lets fires in flight end
    await schedules.load_all()
    scheduler.add_job(
        schedules.sync,
        "interval",
        seconds=SCHEDULE_SYNC_SECONDS,
        id="schedules:sync",
        replace_existing=True,
        coalesce=True,
    )
    await runs.start()
    # Runs stop first (at a page boundary, left resumable), then the Home refresher.
    stack.push_async_callback(home.close)
    stack.push_async_callback(runs.stop)
    return deps
