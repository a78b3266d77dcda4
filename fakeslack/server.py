"""The aiohttp server: `/api/<method>` routing, auth and scopes, rate limits, faults, recording, the
`response_url` endpoint, Socket Mode (`socket_mode.py`), the live workspace's changes and their
events (`live.py`), several workspaces and OAuth installs (`tenancy.py`) and the `/_fake/*`
control routes;
`FakeSlack` is the embedding API (same loop with `async with`, or a private loop in a background
thread with `with`)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from aiohttp import web

from fakeslack.api import Api
from fakeslack.errors import ApiError
from fakeslack.events import EventsConfig
from fakeslack.faults import Fault, Faults
from fakeslack.oauth import OAuthConfig
from fakeslack.pagination import Cursors
from fakeslack.ratelimit import LeakyBucketLimiter, SlidingWindowLimiter
from fakeslack.recorder import Recorder
from fakeslack.socket_mode import SocketModeServer, SocketModeTimeout
from fakeslack.spec import (
    APP_LEVEL_METHODS,
    DEFAULT_APP_SCOPES,
    DEFAULT_BOT_SCOPES,
    METHODS,
    PROFILES,
)
from fakeslack.teams import TeamState
from fakeslack.tenancy import OAUTH_METHODS, Route, Tenancy
from fakeslack.views import ViewStore
from fakeslack.workspace import Workspace

log = logging.getLogger("fakeslack")
T = TypeVar("T")


class FakeSlack(TeamState, Tenancy):
    """A local Slack Web API for one workspace, answering the app's bot token; changes made
    through its `LiveWorkspace` methods also reach the app as events (`events=EventsConfig`).
    More workspaces: `add_workspace`, installed through OAuth (`oauth=OAuthConfig`)."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        profile: str = "internal",
        time_compression: float = 1.0,
        rate_limits: bool = True,
        burst: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        scopes: set[str] | frozenset[str] | None = None,
        trigger_ttl: float = 3.0,
        app_token: str | None = None,
        events: EventsConfig | None = None,
        oauth: OAuthConfig | None = None,
        installed: bool = True,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
        self.workspace = workspace
        self.profile = PROFILES[profile]
        self.rate_limits = rate_limits
        self.host, self._want_port = host, port
        self.tokens: dict[str, frozenset[str]] = {
            workspace.bot_token: frozenset(DEFAULT_BOT_SCOPES if scopes is None else scopes)
        }
        # App-level tokens (`xapp-`): only `apps.connections.open` takes them (Socket Mode).
        self._app_token = app_token or (
            f"xapp-1-{workspace.app_id}-{secrets.randbelow(10**13):013d}-{secrets.token_hex(32)}"
        )
        self.app_tokens: dict[str, frozenset[str]] = {self._app_token: DEFAULT_APP_SCOPES}
        self.socket = SocketModeServer(
            app_id=workspace.app_id, base_ws_url=lambda: f"ws://{self.host}:{self.port}"
        )
        # Slack's tiers as stated: N calls per method in any sliding minute. `burst` adds a leaky
        # bucket per method (at most `burst` calls at once, then the tier's rate), for a limiter
        # that tolerates less burst than the documented minute, as Slack's real one may.
        self.limiter = SlidingWindowLimiter(time_compression=time_compression)
        self.bucket = (
            LeakyBucketLimiter(burst, time_compression=time_compression) if burst else None
        )
        self.faults = Faults()
        self.recorder = Recorder()
        self.view_store = ViewStore(
            team_id=workspace.team_id,
            app_id=workspace.app_id,
            bot_id=workspace.bot_id,
            trigger_ttl=trigger_ttl,
        )
        self._trigger_ttl = trigger_ttl
        self._current_token = workspace.bot_token
        self._current_scopes: frozenset[str] = frozenset()  # an OAuth token's, during its call
        self.api = Api(
            workspace,
            scopes=self.scopes_now,
            profile=self.profile,
            recorder=self.recorder,
            views=self.view_store,
            cursors=Cursors(secrets.token_bytes(16)),
            socket_url=lambda: self.socket.new_url(self._current_token),
            changed=self.record_change,
        )
        self._call_no = 0
        # TCP connections that carried a request: a keep-alive connection is counted once.
        self._connections_seen: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()
        self._connections = 0
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self._site_port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._init_live(events)
        self._init_tenancy(oauth)
        if not installed:  # the workspace's own token works only once installed by OAuth
            self._revoked_static[workspace.bot_token] = "invalid_auth"

    @classmethod
    def serving(
        cls,
        workspaces: list[Workspace],
        *,
        enterprise: tuple[str, str] | None = None,
        installed: bool = False,
        **options: Any,
    ) -> FakeSlack:
        """One FakeSlack for all of `workspaces` (of one app, e.g. `generate_workspaces`), all
        in `enterprise` = (id, name) if given. Not `installed` by default: the app gets tokens
        by OAuth (`oauth=OAuthConfig(...)` among `options`)."""
        first, *rest = workspaces
        fake = cls(first, installed=installed, **options)
        if enterprise is not None:
            fake.join_enterprise(*enterprise)
        fake.add_workspaces(rest, enterprise=enterprise)
        return fake

    # -- identity -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._site_port is None:
            raise RuntimeError("FakeSlack is not started")
        return self._site_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give `AsyncWebClient(base_url=...)`: ends with `/api/`."""
        return f"{self.url}/api/"

    @property
    def bot_token(self) -> str:
        return self.workspace.bot_token

    @property
    def signing_secret(self) -> str:
        return self.workspace.signing_secret

    @property
    def time_compression(self) -> float:
        return self.limiter.time_compression

    @property
    def scopes(self) -> frozenset[str]:
        return self.tokens[self.workspace.bot_token]

    def set_scopes(self, scopes: set[str] | frozenset[str], token: str | None = None) -> None:
        self.tokens[token or self.workspace.bot_token] = frozenset(scopes)

    def add_token(self, token: str, scopes: set[str] | frozenset[str] = DEFAULT_BOT_SCOPES) -> None:
        """Another valid token for the same workspace (a second app: its own rate buckets)."""
        self.tokens[token] = frozenset(scopes)

    def scopes_now(self) -> frozenset[str]:
        """The scopes of the token being served (static tokens' looked up live: `set_scopes`
        applies at once, also to a test calling `api` directly)."""
        token = self._current_token
        if token in self.tokens:
            return self.tokens[token]
        if token in self.app_tokens:
            return self.app_tokens[token]
        return self._current_scopes

    @property
    def app_token(self) -> str:
        """The app-level token (`xapp-…`, scope `connections:write`) for Socket Mode."""
        return self._app_token

    def add_app_token(
        self, token: str, scopes: set[str] | frozenset[str] = DEFAULT_APP_SCOPES
    ) -> None:
        """Another app-level token of the same app (e.g. one lacking `connections:write`)."""
        self.app_tokens[token] = frozenset(scopes)

    # -- lifecycle ----------------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application(
            client_max_size=16 * 1024 * 1024, middlewares=[self._count_connection]
        )
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/_fake/response_url/{rid}", self._handle_response_url)
        app.router.add_get("/_fake/calls", self._get_calls)
        app.router.add_get("/_fake/counters", self._get_counters)
        app.router.add_post("/_fake/faults", self._post_faults)
        app.router.add_get("/_fake/faults", self._get_faults)
        app.router.add_post("/_fake/reset_recording", self._post_reset)
        app.router.add_post("/_fake/rate_limits", self._post_rate_limits)
        app.router.add_get("/_fake/posts", self._get_posts)
        app.router.add_post("/_fake/trigger_id", self._post_trigger)
        app.router.add_post("/_fake/response_url", self._post_new_response_url)
        app.router.add_get("/_fake/ground_truth", self._get_ground_truth)
        self.install_tenancy(app)  # /oauth/v2/authorize, /_fake/oauth/*, /_fake/teams/*
        self.socket.install(app)  # /_fake/socket/{ticket} (the WebSocket), /_fake/socket_mode/*
        self.install_live(app)  # /_fake/events, /_fake/events/config, /_fake/events/settled, ...
        return app

    async def start(self) -> FakeSlack:
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._want_port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self._site_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        log.info("fakeslack listening on %s", self.base_url)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:  # noqa: PYI034 - start() returns this object
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self) -> FakeSlack:
        """Serve from a background thread with its own event loop; returns once listening."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # noqa: BLE001 - reported to the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fakeslack", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = self._loop = None

    def __enter__(self) -> FakeSlack:  # noqa: PYI034 - start_in_thread() returns this object
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_thread()

    # -- Python API for tests -----------------------------------------------------------------
    @property
    def http_connections(self) -> int:
        """TCP connections that carried at least one request since start (every route), each
        counted once however many requests it carried: a client that pools its connections
        shows far fewer than requests."""
        return self._connections

    @web.middleware
    async def _count_connection(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # One transport per TCP connection, the same object for every request kept alive on it;
        # weak, so a closed connection is forgotten rather than held.
        transport = request.transport
        if transport is not None and transport not in self._connections_seen:
            self._connections_seen.add(transport)
            self._connections += 1
        return await handler(request)

    def new_response_url(self, user_id: str | None = None, channel_id: str | None = None) -> str:
        rid = secrets.token_hex(8)
        self._response_urls[rid] = {"user": user_id, "channel": channel_id, "created": time.time()}
        return f"{self.url}/_fake/response_url/{rid}"

    @property
    def response_posts(self) -> list[dict[str, Any]]:
        return self.recorder.response_posts

    def reset_recording(self) -> None:
        """Forget what reached every served workspace."""
        for team in self.teams.values():
            team.recorder.reset()

    def reset_rate_limits(self) -> None:
        self.limiter.reset()
        if self.bucket is not None:
            self.bucket.reset()

    # -- Socket Mode (see socket_mode.py) -------------------------------------------------------
    @property
    def socket_connections(self) -> int:
        """Socket Mode connections open now."""
        return len(self.socket.live())

    @property
    def socket_acks(self) -> list[dict[str, Any]]:
        """Every ack received: envelope_id, type, payload (None if bare), t_wall, latency, ..."""
        return list(self.socket.acks)

    async def deliver(
        self, envelope_type: str, payload: dict[str, Any], *, timeout: float = 5.0, **options: Any
    ) -> dict[str, Any]:
        """Push an envelope (`events_api`, `slash_commands`, `interactive`) to a connected app
        and return its ack; raises `SocketModeTimeout`. Call on FakeSlack's own loop."""
        return await self.socket.deliver(envelope_type, payload, timeout=timeout, **options)

    def deliver_sync(
        self, envelope_type: str, payload: dict[str, Any], *, timeout: float = 5.0, **options: Any
    ) -> dict[str, Any]:
        """`deliver` from another thread, for a FakeSlack started with `with` / in a thread."""
        return self._run_threadsafe(
            self.deliver(envelope_type, payload, timeout=timeout, **options), timeout * 2 + 5
        )

    async def wait_socket_connections(self, count: int = 1, timeout: float = 5.0) -> int:
        return await self.socket.wait_for_connections(count, timeout)

    def wait_socket_connections_sync(self, count: int = 1, timeout: float = 5.0) -> int:
        return self._run_threadsafe(self.wait_socket_connections(count, timeout), timeout + 5)

    def request_disconnect(
        self, reason: str = "refresh_requested", *, close_after: float | None = None
    ) -> None:
        """Send `{"type": "disconnect", "reason": ...}` to every open connection. From another
        thread this waits until sent; on FakeSlack's own loop it is scheduled (await
        `self.socket.disconnect(...)` there to wait)."""
        coro = self.socket.disconnect(reason, close_after=close_after)
        loop = self.socket.loop
        if loop is None:
            coro.close()
            raise RuntimeError("FakeSlack is not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            self.socket._tasks.add(task)
            task.add_done_callback(self.socket._tasks.discard)
        else:
            self._run_threadsafe(coro, 10)

    def _run_threadsafe(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        loop = self.socket.loop
        if loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("the *_sync methods need FakeSlack started in a thread (`with`)")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.done():  # the coroutine's own SocketModeTimeout (also a TimeoutError)
                raise
            future.cancel()
            raise SocketModeTimeout("FakeSlack's loop did not answer in time") from None

    # -- /api/<method> ------------------------------------------------------------------------
    async def _parse(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    body = None
                if isinstance(body, dict):
                    args.update(body)
            else:
                form = await request.post()
                args.update({k: v for k, v in form.items() if isinstance(v, str)})
        token = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[7:].strip() or None
        form_token = args.pop("token", None)
        return args, token or (str(form_token) if form_token else None)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args, token = await self._parse(request)
        self._call_no += 1
        number = self._call_no
        route = self._route_of(method, token, args)
        # Each workspace logs its own calls (per-workspace pacing shows there); calls that name
        # no workspace (oauth.v2.access, a bad token) go to the first one's log.
        recorder = route.team.recorder if route.team is not None else self.recorder
        call = recorder.start(method, args)
        faults = self.faults
        if faults.take("reset", method) is not None:
            recorder.finish(call, None, None)
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection drop, no response
            return web.Response(status=204)
        delay = faults.take("delay", method)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        status, body, headers = self._answer(method, args, token, number, route, request)
        if status == 200 and body.get("ok") is True:
            channel = args.get("channel")
            fault = faults.take_body(method, channel if isinstance(channel, str) else None)
            if fault is not None:
                # Recorded as failed: the client got nothing it could use.
                recorder.finish(call, status, {"ok": False, "error": f"fake_{fault.kind}"})
                return _broken_answer(fault, body, headers)
        recorder.finish(call, status, body)
        return web.json_response(body, status=status, headers=headers)

    def _route_of(self, method: str, token: str | None, args: dict[str, Any]) -> Route:
        if token is None or method in OAUTH_METHODS:
            return Route(self)
        if token in self.app_tokens:  # app-level: the app's, answered by the first workspace
            return Route(self, rate_id=token, scopes=self.app_tokens[token])
        return self._route(token, method, args)

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        token: str | None,
        number: int,
        route: Route,
        request: web.Request,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        faults = self.faults
        fault = faults.take("http_error", method)
        if fault is not None:
            return fault.status, {"ok": False, "error": fault.error}, {}
        fault = faults.take("ratelimit", method)
        if fault is not None:
            return (
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(fault.retry_after)},
            )
        if method in OAUTH_METHODS:
            try:
                return 200, self.oauth_call(method, args, token, request), {}
            except ApiError as exc:
                return 200, exc.body(), {}
        spec = METHODS.get(method) or APP_LEVEL_METHODS.get(method)
        if spec is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if token is None:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token in self.app_tokens:
            if method not in APP_LEVEL_METHODS:
                return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        elif route.error is not None:
            return 200, {"ok": False, "error": route.error}, {}
        elif method in APP_LEVEL_METHODS:
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        auth_error = faults.auth_error_for(number)
        if auth_error:
            return 200, {"ok": False, "error": auth_error}, {}
        team = route.team or self
        headers = {"X-OAuth-Scopes": ",".join(sorted(route.scopes))}
        with team.workspace.lock:
            if self.rate_limits:
                retry_after = self._rate_limit(route.rate_id, team, method, args)
                if retry_after:
                    return (
                        429,
                        {"ok": False, "error": "ratelimited"},
                        {"Retry-After": str(retry_after)},
                    )
            for channel_id in faults.channels_to_delete(method, args.get("channel")):
                team.workspace.delete_channel(channel_id)
            fault = faults.take("api_error", method)
            if fault is not None:
                return 200, {"ok": False, "error": fault.error}, {}
            self._current_token = token
            self._current_scopes = route.scopes
            try:
                body = team.api.call(method, args)
            except ApiError as exc:
                return 200, exc.body(), headers
            if method == "auth.test":
                body = self.auth_test_extras(route, token, body)
            return 200, body, headers

    def _rate_limit(self, rate_id: str, team: TeamState, method: str, args: dict[str, Any]) -> int:
        """0 when the call may proceed (and is counted), else the Retry-After in seconds."""
        spec = METHODS.get(method) or APP_LEVEL_METHODS[method]
        per_minute = self.profile.per_minute.get(method, spec.per_minute)
        # Slack counts per app (`rate_id`: a static token, or the OAuth app), per workspace,
        # per method.
        bucket_key = (rate_id, team.team_id, method)
        keys: list[tuple[tuple[Any, ...], int, float]] = [(bucket_key, per_minute, 60.0)]
        if spec.per_channel_per_second:
            channel = team.api.rate_key_channel(args)
            keys.insert(0, ((*bucket_key, channel), spec.per_channel_per_second, 1.0))
        bucket = self.bucket
        # Check every window (and the bucket) first so a rejected call is counted in none.
        waits = [self.limiter.peek(k, n, w) for k, n, w in keys]
        if bucket is not None:
            waits.append(bucket.peek(bucket_key, per_minute))
        if any(waits):
            return max(waits)
        for k, n, w in keys:
            self.limiter.try_acquire(k, n, w)
        if bucket is not None:
            bucket.try_acquire(bucket_key, per_minute)
        return 0

    # -- response_url -------------------------------------------------------------------------
    async def _handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            form = await request.post()
            body = json.loads(str(form.get("payload", "{}")))
        meta = self._response_urls.get(rid, {})
        self.recorder.response_posts.append(
            {
                "url_id": rid,
                "user": meta.get("user"),
                "channel": meta.get("channel"),
                "body": body,
                "t_wall": time.time(),
            }
        )
        return web.json_response({"ok": True})

    # -- /_fake control routes ----------------------------------------------------------------
    def _team_of(self, request: web.Request) -> TeamState:
        team_id = request.query.get("team_id")
        return self.team(team_id) if team_id else self

    async def _get_calls(self, request: web.Request) -> web.Response:
        """`?method=` only that method's, `?team_id=` another workspace's (default: the first)."""
        team = self._team_of(request)
        method = request.query.get("method")
        calls = team.calls_of(method) if method else team.calls
        return web.json_response([c.to_dict() for c in calls])

    async def _get_counters(self, request: web.Request) -> web.Response:
        return web.json_response({**self._team_of(request).counters, "events": self.event_counters})

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            for item in spec if isinstance(spec, list) else [spec]:
                self.faults.add(item)
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "faults": self.faults.snapshot()})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.snapshot())

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset_recording()
        return web.json_response({"ok": True})

    async def _post_rate_limits(self, request: web.Request) -> web.Response:
        """`{"enabled": bool}`: switch rate limits on or off, every window and bucket emptied
        (e.g. seed a database unthrottled, then measure a run against Slack's limits)."""
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            return web.json_response({"ok": False, "error": 'want {"enabled": bool}'}, status=400)
        self.rate_limits = body["enabled"]
        self.reset_rate_limits()
        return web.json_response({"ok": True, "rate_limits": self.rate_limits})

    async def _get_posts(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"posts": self.posts, "views": self.view_events, "response_posts": self.response_posts}
        )

    async def _post_trigger(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"ok": True, "trigger_id": self.new_trigger_id(body["user_id"])})

    async def _post_new_response_url(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        url = self.new_response_url(body.get("user_id"), body.get("channel_id"))
        return web.json_response({"ok": True, "response_url": url})

    async def _get_ground_truth(self, request: web.Request) -> web.Response:
        q = request.query
        gt = self.workspace.ground_truth(
            float(q.get("days", "7")),
            float(q["now"]) if "now" in q else None,
            lookback_days=float(q.get("lookback_days", "14")),
            min_text_chars=int(q.get("min_text_chars", "8")),
            include_bots=q.get("include_bots", "false").lower() in ("1", "true"),
            auto_join=q.get("auto_join", "true").lower() in ("1", "true"),
            channel_ids=q["channel_ids"].split(",") if q.get("channel_ids") else None,
        )
        return web.json_response(
            {
                "must_store": sorted(gt.must_store),
                "must_not_store": sorted(gt.must_not_store),
                "channels_in_scope": gt.channels_in_scope,
                "channels_skipped": gt.channels_skipped,
                "threads_with_replies": len(gt.threads_with_replies),
                "oldest": gt.oldest,
                "now": gt.now,
            }
        )


def _broken_answer(fault: Fault, real: dict[str, Any], headers: dict[str, str]) -> web.Response:
    """The HTTP 200 answer a body fault (malformed, truncated, non_json) puts in place of `real`."""
    if fault.kind == "malformed":
        if fault.body is not None:
            shaped: Any = fault.body
        else:
            shaped = {k: v for k, v in real.items() if k not in fault.drop}
            shaped.update(fault.replace)
        return web.Response(
            text=json.dumps(shaped), content_type="application/json", headers=headers
        )
    if fault.kind == "truncated":
        text = json.dumps(real)
        return web.Response(
            text=text[: max(1, len(text) // 2)], content_type="application/json", headers=headers
        )
    page = "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
    return web.Response(text=page, content_type=fault.content_type, headers=headers)
