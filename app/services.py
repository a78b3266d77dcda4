"""Wire the scheduler, the engine (a Slack gateway per workspace), the live mirror and each
workspace's listeners' dependencies and Home publisher, for one workspace (`SLACK_BOT_TOKEN`) or
every installed one alike; the engine and the listeners' slow halves yield to Slack's requests
through `app.foreground`.

Everything opened here is registered on the caller's `AsyncExitStack`, so it closes once, in
reverse order, on shutdown, each step within the shutdown budget (`app.shutdown`): schedule fires
and runs are told to stop the moment the shutdown begins.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.foreground import after_ack, requests_first
from app.http_sessions import SlackConnections
from app.metrics import Metrics
from app.settings import Settings
from app.shutdown import ShutdownBudget
from db.installations import install_problem
from db.session import reading
from db.vectors import VectorStore
from handlers.deps import Deps
from scheduler.backfill.engine import BackfillEngine, EngineConfig
from scheduler.backfill.errors import PermanentSlackError
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.gateways import Gateways
from scheduler.backfill.profiles import profile_for
from scheduler.backfill.tokens import BotTokens, WorkspaceToken
from scheduler.channel_directory import ChannelDirectory
from scheduler.home import HomePublisher
from scheduler.mirror import MirrorConfig, MirrorService, schedule_scope
from scheduler.notify import Notifier
from scheduler.people import PeopleDirectory
from scheduler.purge import PurgeService
from scheduler.runs import RunEvent, RunService
from scheduler.schedules import ScheduleService
from scheduler.search import SearchService
from scheduler.uninstalls import Uninstalls
from scheduler.workspace_clients import WorkspaceClients

log = logging.getLogger(__name__)
# Other processes may change the schedule table; every process re-reads it this often.
SCHEDULE_SYNC_SECONDS = 60


class WorkspaceDeps:
    """Each workspace's listeners' `Deps`, made once per process on first use; the services in
    them are shared (their rows say whose they are), the Home publisher and the people directory
    are the workspace's own."""

    def __init__(self, make: Callable[[str], Deps]) -> None:
        self._make = make
        self._made: dict[str, Deps] = {}

    def for_workspace(self, team_id: str) -> Deps:
        deps = self._made.get(team_id)
        if deps is None:
            deps = self._made[team_id] = self._make(team_id)
        return deps

    def made(self, team_id: str) -> Deps | None:
        """The workspace's deps if a request of it came to this process."""
        return self._made.get(team_id)

    async def close(self) -> None:
        """Stop every workspace's Home refresher."""
        for deps in list(self._made.values()):
            await deps.home.close()


def build_gateways(
    settings: Settings,
    tokens: BotTokens,
    *,
    rate_minute_seconds: float = 60.0,
    metrics: Metrics | None = None,
    connections: SlackConnections | None = None,
) -> Gateways:
    """Each workspace's Slack gateway (own pacer: Slack's limits are per workspace) around its
    token source. `rate_minute_seconds` shortens Slack's rate-limit minute, only ever for the
    demo against fakeslack's time compression; against Slack it is always 60. `metrics` hears
    every call. `connections`: the pooled session, which the gateways' calls share."""
    profile = profile_for(settings.slack_rate_profile)
    if rate_minute_seconds != 60.0:
        profile = profile.scaled(rate_minute_seconds)

    def gateway(token: WorkspaceToken) -> SlackGateway:
        return SlackGateway(
            token,
            base_url=settings.slack_api_url,
            profile=profile,
            yield_to=requests_first,
            observer=metrics.on_slack_call if metrics is not None else None,
            session=connections.session() if connections is not None else None,
            team_id=token.workspace_id,
        )

    gateways = Gateways.per_workspace(tokens, gateway)
    if metrics is not None:
        # Their waits are tier pacing and Retry-After, nothing else.
        metrics.watch_rate_limit_wait(gateways.pacing_wait_seconds)
    return gateways


def build_engine(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    gateways: Gateways,
) -> BackfillEngine:
    config = EngineConfig(
        include_bots=settings.include_bots,
        min_text_chars=settings.min_text_chars,
        thread_lookback_days=settings.thread_lookback_days,
        auto_join=settings.auto_join,
        prune_deleted=settings.prune_deleted,
    )
    return BackfillEngine(gateways, sessions, vectors, config, yield_to=requests_first)


async def start_services(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    tokens: BotTokens,
    clients: WorkspaceClients,
    rate_minute_seconds: float = 60.0,
    metrics: Metrics | None = None,
    connections: SlackConnections | None = None,
    budget: ShutdownBudget | None = None,
    inbox_sessions: async_sessionmaker[AsyncSession] | None = None,
) -> WorkspaceDeps:
    """Start APScheduler, the run service, the live mirror and the Home refreshes; return the
    maker of each workspace's listeners' deps. `tokens` and `clients`: every workspace's Slack
    access (`tokens.OneWorkspace` for `SLACK_BOT_TOKEN`, `app.bot_tokens` for installs). Their
    shutdown steps share `budget` (by default, one of `SHUTDOWN_TIMEOUT` of their own).
    `inbox_sessions`: the live mirror's inbox database when not the store's (`db.inbox`)."""
    if budget is None:
        budget = ShutdownBudget(settings.shutdown_timeout)
    scheduler = AsyncIOScheduler(timezone=UTC)
    runs: RunService

    async def on_fire(workspace_id: str, schedule_id: int, fire_time: datetime) -> None:
        await runs.on_schedule_fire(workspace_id, schedule_id, fire_time)

    schedules = ScheduleService(sessions, scheduler, on_fire)
    gateways = build_gateways(
        settings,
        tokens,
        rate_minute_seconds=rate_minute_seconds,
        metrics=metrics,
        connections=connections,
    )
    engine = build_engine(settings, sessions, vectors, gateways)
    runs = RunService(
        sessions=sessions,
        engine=engine,
        notifier=Notifier(clients, people=PeopleDirectory()),
        schedules=schedules,
        run_concurrency=settings.run_concurrency,
        run_retries=settings.run_retries,
    )
    # The live mirror shares the engine's gateways: one rate budget per workspace.
    mirror = MirrorService(
        sessions,
        vectors,
        gateways,
        MirrorConfig(
            live=settings.live_sync,
            include_bots=settings.include_bots,
            min_text_chars=settings.min_text_chars,
        ),
        scope=schedule_scope(schedules),
        owner=runs.owner,
        observer=metrics.on_mirror_batch if metrics is not None else None,
        inbox_sessions=inbox_sessions,
    )
    channels = ChannelDirectory()  # one cached channel list for the listeners and searches
    search = SearchService(sessions, vectors, channels)
    purge = PurgeService(sessions, vectors, schedules)  # `/backfill purge`
    uninstalls = Uninstalls(sessions, schedules, tokens)

    async def problem_of_install(team_id: str) -> str | None:
        async with reading(sessions) as session:
            return await install_problem(session, team_id)

    def make_deps(team_id: str) -> Deps:
        people = PeopleDirectory()  # who is a person of this workspace, users.info cached
        home = HomePublisher(
            team_id,
            schedules,
            runs,
            people,
            members_can_run=settings.members_can_run,
            mirror=mirror,
            search_allowed=settings.search_allowed,
            install_problem=problem_of_install,
        )
        return Deps(
            team_id=team_id,
            schedules=schedules,
            runs=runs,
            home=home,
            after_ack=after_ack,  # listeners' slow halves wait for the requests being answered
            purge=purge,
            members_can_run=settings.members_can_run,
            people=people,
            channels=channels,
            mirror=mirror,
            search=search,
            search_allowed=settings.search_allowed,
            uninstalls=uninstalls,
        )

    workspaces = WorkspaceDeps(make_deps)
    refreshes: set[asyncio.Task[None]] = set()

    async def refresh_home(home: HomePublisher) -> None:
        try:
            home.refresh_soon(await clients.for_workspace(home.team_id))
        except PermanentSlackError as exc:  # uninstalled meanwhile: no tab to refresh
            log.info("no Home refresh in %s: %s", home.team_id, exc.error)

    def on_run_event(event: RunEvent) -> None:
        # Only tabs someone opened lately in this process are refreshed: a run's every page is an
        # event, and without a viewer there is no client to make nor task to start.
        deps = workspaces.made(event.workspace_id)
        if deps is not None and deps.home.recent_viewers():
            task = asyncio.get_running_loop().create_task(refresh_home(deps.home))
            refreshes.add(task)
            task.add_done_callback(refreshes.discard)

    runs.add_listener(on_run_event)
    if metrics is not None:
        runs.add_listener(metrics.on_run_event)
    scheduler.start()
    # At once on shutdown: no new fire starts (APScheduler paused); fires in flight may end.
    stack.push_async_callback(
        budget.at_begin(
            "schedule fires in flight",
            lambda: schedules.close(timeout=budget.left(budget.closing_s)),
        )
    )
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
    await mirror.start()
    # After the fronts closed (no event is taken in any more): the batch in hand ends or is
    # claimed again by the next drainer once its lease runs out.
    stack.push_async_callback(
        budget.step("the live mirror's drainer", lambda: mirror.stop(budget.left(budget.closing_s)))
    )

    async def stop_runs() -> str | None:
        cut = await runs.stop(timeout=budget.left(budget.closing_s))
        if not cut:
            return None
        runs_cut = ("run " if len(cut) == 1 else "runs ") + ", ".join(f"#{i}" for i in cut)
        return f"{runs_cut} released before a safe point (resumed from its checkpoints)"

    # Runs are asked to stop the moment the shutdown begins (at their next safe point, then
    # released for any process to resume), and awaited here, before the Home refresher closes.
    stack.push_async_callback(budget.step("the Home refresher", workspaces.close))
    stack.push_async_callback(
        budget.at_begin("releasing the runs (one not released resumes once stale)", stop_runs)
    )
    return workspaces
