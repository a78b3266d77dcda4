"""The `run` command: open the stores, check the token with Slack, serve until SIGTERM/SIGINT.

Every resource is opened here and closed here, once, in reverse order, within the shutdown
budget (`SHUTDOWN_TIMEOUT`, `app.shutdown`): runs and schedule fires are told to stop the moment
the shutdown begins; Socket Mode, the HTTP server and the listeners' replies close meanwhile;
then the runs' release is awaited, and the stores close, the Slack connections among the last.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.bolt_app import build_bolt_app, build_web_client, oauth_settings
from app.bot_tokens import InstalledBotTokens
from app.foreground import drain as drain_listener_work
from app.http_server import SlackFront, build_web_app, start_http
from app.http_sessions import SlackConnections
from app.metrics import Metrics
from app.readiness import Readiness
from app.request_check import new_verifier
from app.services import WorkspaceDeps, start_services
from app.settings import Settings
from app.shutdown import ShutdownBudget
from app.socket_mode import CountedSocketModeHandler
from app.workspaces import InstalledWorkspaces
from db.inbox import inbox_database_url
from db.installations import verify_keys
from db.messages import ensure_workspace
from db.migrate import migrate
from db.replays import open_replay_ledger
from db.session import create_engine, make_sessionmaker
from db.token_crypto import TokenCipher, TokenDecryptError
from db.vectors import ChromaVectorStore, VectorStoreUnavailable
from handlers.deps import Deps, ServedWorkspaces, SingleWorkspace
from scheduler.backfill.tokens import BotTokens, OneWorkspace
from scheduler.workspace_clients import WorkspaceClients

log = logging.getLogger("backfill")


class StartupError(Exception):
    """The app cannot start; `str(error)` is the one line to show. Never holds a secret."""


async def identify_workspace(client: AsyncWebClient) -> tuple[str, str]:
    """`auth.test`: the workspace (team id, name) this bot token belongs to."""
    try:
        response = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        raise StartupError(f"Slack refused SLACK_BOT_TOKEN at auth.test ({error})") from None
    except (TimeoutError, OSError) as exc:
        raise StartupError(
            f"cannot reach the Slack Web API at SLACK_API_URL ({type(exc).__name__})"
        ) from None
    return str(response["team_id"]), str(response.get("team") or response["team_id"])


def install_stop_signals(stop: asyncio.Event, budget: ShutdownBudget) -> None:
    """SIGTERM/SIGINT set `stop`; the shutdown budget's clock, and its watchdog, start there."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        budget.on_signal()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


async def migrate_database(settings: Settings) -> None:
    """Bring the schema up to date; any driver error becomes one line (the URL may hold a password)."""
    try:
        for url in dict.fromkeys(
            [settings.database_url, inbox_database_url(settings.database_url)]
        ):
            await migrate(url)
    except Exception as exc:
        log.debug("migration failed", exc_info=exc)
        raise StartupError(
            f"cannot migrate the database at DATABASE_URL ({type(exc).__name__}: check that it is "
            "reachable and the user may create tables)"
        ) from None


async def open_database(
    settings: Settings, stack: AsyncExitStack, budget: ShutdownBudget
) -> AsyncEngine:
    await migrate_database(settings)
    engine = create_engine(settings.database_url)
    stack.push_async_callback(budget.step("the database pool", engine.dispose, keep=0))
    return engine


def open_inbox_database(
    settings: Settings,
    store: async_sessionmaker[AsyncSession],
    stack: AsyncExitStack,
    budget: ShutdownBudget,
) -> async_sessionmaker[AsyncSession]:
    """The live mirror's inbox (`db.inbox`): the store's own sessions, or a SQLite store's inbox
    file (migrated with the store by `migrate_database`)."""
    url = inbox_database_url(settings.database_url)
    if url == settings.database_url:
        return store
    engine = create_engine(url)
    stack.push_async_callback(budget.step("the inbox database pool", engine.dispose, keep=0))
    return make_sessionmaker(engine)


def slack_front(
    settings: Settings, stack: AsyncExitStack, budget: ShutdownBudget
) -> SlackFront | None:
    """HTTP mode's admission (signature, shape, replays); Socket Mode has no signatures."""
    if settings.socket_mode:
        return None
    assert settings.slack_signing_secret is not None  # require_for_run() checked it
    replays = open_replay_ledger(settings.database_url)
    stack.push_async_callback(budget.step("the replay ledger", replays.close))
    return SlackFront(new_verifier(settings.slack_signing_secret), replays)


async def open_vectors(settings: Settings, metrics: Metrics | None = None) -> ChromaVectorStore:
    try:
        return await ChromaVectorStore.open(
            path=settings.chroma_path,
            url=settings.chroma_url,
            embedding=settings.embedding,
            observer=metrics.on_vector_call if metrics is not None else None,
        )
    except VectorStoreUnavailable as exc:  # names the path or URL (never credentials)
        setting = "CHROMA_URL" if settings.chroma_url else "CHROMA_PATH"
        raise StartupError(f"{exc} (check {setting})") from None


@dataclass
class Runtime:
    """The running app, for `serve` and the demo: its settings, stores, Bolt app and services."""

    settings: Settings
    # SLACK_BOT_TOKEN's workspace, (team id, name); None in multi-workspace mode (OAuth installs).
    token_workspace: tuple[str, str] | None
    sessions: async_sessionmaker[AsyncSession]
    inbox_sessions: async_sessionmaker[AsyncSession]  # the live mirror's inbox (`db.inbox`)
    vectors: ChromaVectorStore
    client: AsyncWebClient  # without a token for many workspaces: Bolt gives each request one
    bolt: AsyncApp
    workspaces: WorkspaceDeps  # each served workspace's listeners' deps
    port: int
    metrics: Metrics
    connections: SlackConnections  # the pooled HTTP session to Slack

    @property
    def team_id(self) -> str:
        """The one workspace served (single-workspace mode)."""
        assert self.token_workspace is not None, "a multi-workspace app serves no one workspace"
        return self.token_workspace[0]

    @property
    def team_name(self) -> str:
        assert self.token_workspace is not None, "a multi-workspace app serves no one workspace"
        return self.token_workspace[1]

    @property
    def deps(self) -> Deps:
        """The listeners' deps of the one workspace served (single-workspace mode)."""
        return self.workspaces.for_workspace(self.team_id)


@dataclass(frozen=True)
class Installs:
    """Multi-workspace mode's Slack access: the installs' tokens and clients."""

    cipher: TokenCipher
    tokens: InstalledBotTokens
    clients: WorkspaceClients


async def open_installs(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], connections: SlackConnections
) -> Installs:
    """Check that TOKEN_ENCRYPTION_KEY decrypts every stored token (a wrong key stops the start
    here, in one line, not at a workspace's next request) and give the installs' tokens."""
    assert settings.token_encryption_key is not None  # check_modes() required it
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    cipher = TokenCipher(settings.token_encryption_key)
    try:
        async with sessions() as session:
            installed = await verify_keys(session, cipher)
    except TokenDecryptError as exc:
        raise StartupError(str(exc)) from None
    rotator = AsyncTokenRotator(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        client=AsyncWebClient(base_url=settings.slack_api_url, session=connections.session()),
    )
    tokens = InstalledBotTokens(sessions, cipher, rotator)
    clients = WorkspaceClients.per_workspace(
        tokens, base_url=settings.slack_api_url, session=connections.session
    )
    log.info("multi-workspace mode: %d installed workspaces hold a token", installed)
    return Installs(cipher, tokens, clients)


@asynccontextmanager
async def running_app(
    settings: Settings,
    *,
    rate_minute_seconds: float = 60.0,
    budget: ShutdownBudget | None = None,
) -> AsyncIterator[Runtime]:
    """Open the stores, check the token, start the scheduler and serve Slack; close all on exit,
    within `budget` (by default `SHUTDOWN_TIMEOUT` from the moment the exit begins).
    (`rate_minute_seconds` is for the demo against a time-compressed fakeslack only.)"""
    settings.require_for_run()
    if budget is None:
        budget = ShutdownBudget(settings.shutdown_timeout)
    async with AsyncExitStack() as stack:
        engine = await open_database(settings, stack, budget)
        sessions = make_sessionmaker(engine)
        inbox_sessions = open_inbox_database(settings, sessions, stack, budget)
        metrics = Metrics()  # this app's own registry, served at /metrics
        vectors = await open_vectors(settings, metrics)
        # A write still in flight here belongs to a run already released: cut short, it is
        # redone when the run resumes (documents are upserted by id).
        stack.push_async_callback(
            budget.step(
                "the vector store (a write in flight is redone on resume)",
                vectors.close,
                keep=budget.closing_s / 4,
            )
        )

        # One pooled session for every Slack call and respond() of the workspace. Registered
        # before everything that calls Slack, so it closes after all of them have stopped.
        connections = SlackConnections()
        stack.push_async_callback(
            budget.step("the Slack connections", connections.close, keep=budget.closing_s / 2)
        )
        client = build_web_client(settings, connections.session())
        installs: Installs | None = None
        token_workspace: tuple[str, str] | None = None
        tokens: BotTokens
        if settings.multi_workspace:
            installs = await open_installs(settings, sessions, connections)
            tokens, clients = installs.tokens, installs.clients
        else:
            assert settings.slack_bot_token is not None
            token_workspace = await identify_workspace(client)
            async with sessions() as session, session.begin():
                await ensure_workspace(session, *token_workspace)
            tokens, clients = (
                OneWorkspace(token_workspace[0], settings.slack_bot_token),
                WorkspaceClients.of(client),
            )

        workspaces = await start_services(
            settings,
            stack,
            sessions=sessions,
            inbox_sessions=inbox_sessions,
            vectors=vectors,
            tokens=tokens,
            clients=clients,
            rate_minute_seconds=rate_minute_seconds,
            metrics=metrics,
            connections=connections,
            budget=budget,
        )
        served: ServedWorkspaces
        oauth: AsyncOAuthSettings | None = None
        if installs is not None:
            served = InstalledWorkspaces(sessions, installs.cipher, workspaces)
            oauth = oauth_settings(settings, sessions, installs.cipher)
        else:
            assert token_workspace is not None
            served = SingleWorkspace(workspaces.for_workspace(token_workspace[0]))
        bolt = build_bolt_app(settings, client, served, connections, oauth=oauth)
        mode = "socket" if settings.socket_mode else "http"
        readiness = Readiness(engine, vectors, socket_mode=settings.socket_mode)
        web_app = build_web_app(
            None if settings.socket_mode else bolt,
            mode=mode,
            front=slack_front(settings, stack, budget),
            readiness=readiness,
            metrics=metrics,
            oauth_flow=bolt.oauth_flow,
        )
        runner = await start_http(web_app, settings.port)
        # LIFO: stop taking requests first, then let replies already in flight finish.
        stack.push_async_callback(
            budget.step(
                "the listeners' replies in flight",
                lambda: drain_listener_work(budget.left(budget.closing_s)),
            )
        )
        stack.push_async_callback(budget.step("the HTTP server's requests", runner.cleanup))
        if settings.socket_mode:
            socket = CountedSocketModeHandler(bolt, settings.slack_app_token, web_client=client)
            await socket.connect_async()  # type: ignore[no-untyped-call]  # Bolt leaves it untyped
            stack.push_async_callback(budget.step("the Socket Mode connection", socket.close_async))
            readiness.socket_connected = socket.client.is_connected
        port = bound_port(runner, settings.port)
        settle_heap()
        stack.callback(gc.unfreeze)  # for a caller that goes on (tests, the demo)
        # The first step of the exit: the clock starts (unless the signal started it), and runs
        # and schedule fires are told to stop, while the fronts close.
        stack.callback(budget.begin)
        serving = (
            f"workspace {token_workspace[0]}"
            if token_workspace is not None
            else "every installed workspace"
        )
        log.info("serving %s in %s mode on port %s", serving, mode, port)
        yield Runtime(
            settings,
            token_workspace,
            sessions,
            inbox_sessions,
            vectors,
            client,
            bolt,
            workspaces,
            port,
            metrics,
            connections,
        )
        log.info("stopping: closing connections and stores")
    cut_short = budget.summary()
    if cut_short is not None:
        log.warning("%s", cut_short)
    log.info("stopped in %.1f s", budget.elapsed())


def settle_heap() -> None:
    """Keep the collector off what start-up made. The modules, the Bolt app, the models and the
    clients live as long as the process; with them in its heap, a full collection walked ~170k
    objects and stopped the event loop for up to 120 ms (seen in `bench/bench_ack.py`), long
    enough to delay a burst of acknowledgements. Collect once, then freeze the survivors."""
    gc.collect()
    gc.freeze()


def bound_port(runner: web.AppRunner, configured: int) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        for sock in getattr(server, "sockets", None) or []:
            return int(sock.getsockname()[1])
    return configured


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (by SIGTERM/SIGINT unless a test passes its own event). Then
    exit within `SHUTDOWN_TIMEOUT` seconds of the signal: a watchdog ends the process when the
    budget is spent, and it ends at once when a step had to be left behind (a thread blocked in
    a call would hold up the interpreter's exit)."""
    settings.require_for_run()
    budget = ShutdownBudget(settings.shutdown_timeout)
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop, budget)
    async with running_app(settings, budget=budget):
        await stop.wait()
    if budget.signalled and budget.left_behind:
        budget.exit_now()
