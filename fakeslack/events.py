"""Events API delivery: the envelope around each inner event, and Slack's way of sending it.

HTTP (`mode="http"`): one signed JSON POST per event to the Request URL (`v0` signature with the
workspace's signing secret, a fresh timestamp per attempt). An answer outside 2xx is an
`http_error`, no answer within `ack_timeout` (Slack: 3 s) an `http_timeout`, a refused or broken
connection `connection_failed`; each is retried up to `len(retry_delays)` times (Slack: 3, after
about 0 s, 1 min and 5 min; here short by default so tests need not wait) with the same body,
`X-Slack-Retry-Num: 1..3` and `X-Slack-Retry-Reason`. A non-2xx answer with `X-Slack-No-Retry: 1`
stops that event's retries. Redirects are not followed (an `http_error`).

Socket Mode (`mode="socket"`): the same body in an `events_api` envelope through
`SocketModeServer.deliver`; an envelope not acked within `ack_timeout` goes again with
`retry_attempt` 1..3 and `retry_reason` (`timeout`; Slack's own values are unverified).

Delivery runs in the background on the server's loop (`concurrency` at once, as Slack sends each
event on its own), so posting thousands of changes returns at once; `settled()` waits until every
delivery is acked or given up, retries included. Options for the hard cases: `shuffle_window`
(each delivery picks at random among the next N queued: out of order), `duplicate_rate` (the same
envelope, same `event_id`, delivered a second time, `duplicate_delay` s later, not as a retry).
One module, though past 400 lines: the queue, the retry schedule and the counters are one piece
of state per delivery, which `settled()` reads. Stdlib and aiohttp only.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import logging
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import aiohttp
from aiohttp import web

from fakeslack.outgoing import signature_headers
from fakeslack.socket_mode import SocketModeServer, SocketModeTimeout
from fakeslack.workspace import stable_id

log = logging.getLogger("fakeslack.events")

MODES = ("off", "http", "socket")
VERIFICATION_TOKEN = "deprecated-verification-token"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
COUNTERS = ("queued", "delivered", "acked", "retried", "failed", "duplicated")


@dataclass(frozen=True)
class EventsConfig:
    """How events reach the app. `mode` "off" (the default) builds and records envelopes but
    sends none; "http" needs `url` (the app's Request URL)."""

    mode: str = "off"
    url: str | None = None
    ack_timeout: float = 3.0
    retry_delays: tuple[float, ...] = (0.1, 0.5, 1.0)
    concurrency: int = 16
    shuffle_window: int = 1
    duplicate_rate: float = 0.0
    duplicate_delay: float = 1.1  # > 1 s: a new signature timestamp, so not a replayed request
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"events mode must be one of {', '.join(MODES)}")
        if self.mode == "http" and not self.url:
            raise ValueError("HTTP event delivery needs a url")
        if self.ack_timeout <= 0 or self.concurrency < 1 or self.shuffle_window < 1:
            raise ValueError("ack_timeout > 0, concurrency >= 1 and shuffle_window >= 1")
        if not 0.0 <= self.duplicate_rate <= 1.0:
            raise ValueError("duplicate_rate is a probability")
        if any(d < 0 for d in self.retry_delays):
            raise ValueError("retry delays are >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base: EventsConfig | None = None) -> EventsConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown event settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "retry_delays" in values:
            values["retry_delays"] = tuple(float(d) for d in values["retry_delays"])
        return replace(base or cls(), **values)


@dataclass
class _Delivery:
    envelope: dict[str, Any]
    attempt: int = 0  # 0 = the original, then the retry number
    reason: str = ""  # why the previous attempt failed (the retry's reason)
    duplicate: bool = False


@dataclass
class _Result:
    ok: bool
    reason: str = ""
    status: int | None = None
    no_retry: bool = False


@dataclass(frozen=True)
class Identity:
    """Who the app is for an envelope: `authorizations[0]` and the enterprise fields. `team_id`
    None is an org-level event of an org-wide install (as `team_access_granted` has)."""

    team_id: str | None
    bot_user_id: str
    enterprise_id: str | None = None
    is_enterprise_install: bool = False


def _no_identity(team_id: str) -> Identity | None:
    return None


@dataclass(eq=False, repr=False)
class EventDelivery:
    """Envelopes out to the app, for one workspace (and foreign ones, for the same app)."""

    team_id: str
    app_id: str
    bot_user_id: str
    signing_secret: Callable[[], str]
    socket: SocketModeServer
    config: EventsConfig = field(default_factory=EventsConfig)
    envelopes: list[dict[str, Any]] = field(default_factory=list)  # every one built, in order
    attempts: list[dict[str, Any]] = field(default_factory=list)  # every POST / envelope sent
    # The app's identity in each workspace it serves (several, with OAuth installs); None for
    # a workspace it does not know, whose envelopes get a made-up bot user as before.
    identities: Callable[[str], Identity | None] = _no_identity

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[_Delivery] = deque()
        self._outstanding = 0  # queued + in flight + waiting to retry or to be duplicated
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._ids = itertools.count(1)
        # Event ids are unique across workspaces: a random prefix per emulator, then a count.
        self._prefix = secrets.token_hex(4).upper()
        self._rng = random.Random(self.config.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    # -- settings -----------------------------------------------------------------------------
    def configure(self, **settings: Any) -> EventsConfig:
        """Change settings (e.g. `mode="http", url=...` once the app listens); queued deliveries
        keep going with the new ones."""
        config = EventsConfig.from_dict(settings, self.config)
        with self._lock:
            reseed = config.seed != self.config.seed
            self.config = config
            if reseed:
                self._rng = random.Random(config.seed)
        self._ensure_workers()
        self._kick()
        return config

    # -- envelopes ----------------------------------------------------------------------------
    def envelope(
        self, event: dict[str, Any], team_id: str | None = None, identity: Identity | None = None
    ) -> dict[str, Any]:
        """The `event_callback` body Slack sends for `event` (a new `Ev…` id each time);
        `identity` overrides who the app is (e.g. an org-level event, `team_id` null)."""
        if identity is None:
            team = team_id or self.team_id
            identity = self.identities(team) or Identity(
                team, self.bot_user_id if team == self.team_id else stable_id("U", team, "bot")
            )
        team_or_none = identity.team_id
        enterprise = identity.enterprise_id
        event_ts = event.get("event_ts")
        when = float(event_ts) if isinstance(event_ts, str) else time.time()
        number = next(self._ids)
        scope = team_or_none or enterprise or ""
        context = base64.urlsafe_b64encode(f"{scope}:{number}".encode()).decode().rstrip("=")
        envelope: dict[str, Any] = {
            "token": VERIFICATION_TOKEN,
            "team_id": team_or_none,
            "context_team_id": team_or_none,
            "context_enterprise_id": enterprise,
            "api_app_id": self.app_id,
            "event": copy.deepcopy(event),  # as it was when it happened
            "type": "event_callback",
            "event_id": f"Ev{self._prefix}{number:06X}",
            "event_time": int(when),
            "event_context": f"4-{context}",
            "authorizations": [
                {
                    "enterprise_id": enterprise,
                    "team_id": team_or_none,
                    "user_id": identity.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": identity.is_enterprise_install,
                }
            ],
            "is_ext_shared_channel": False,
        }
        if enterprise is not None:  # Grid envelopes name the enterprise at the top too
            envelope["enterprise_id"] = enterprise
        return envelope

    def emit(
        self,
        events: list[dict[str, Any]],
        team_id: str | None = None,
        identity: Identity | None = None,
    ) -> list[dict[str, Any]]:
        """Wrap each event in an envelope and queue it for delivery (from any thread)."""
        out = []
        for event in events:
            env = self.envelope(event, team_id, identity)
            with self._lock:
                self.envelopes.append(env)
                if self.config.mode == "off":
                    out.append(env)
                    continue
                self._put(_Delivery(env))
                if self._rng.random() < self.config.duplicate_rate:
                    self._counts["duplicated"] += 1
                    self._outstanding += 1
                    self._later(self.config.duplicate_delay, _Delivery(env, duplicate=True))
            out.append(env)
        self._kick()
        return out

    # -- counters -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Deliveries not yet acked nor given up (queued, in flight, waiting to retry)."""
        return self._outstanding

    @property
    def counters(self) -> dict[str, int]:
        """`queued` deliveries (duplicates included), `delivered` requests or envelopes sent
        (retries included), `acked` (2xx or an ack), `retried` sends, `failed` deliveries given
        up, `duplicated` extra deliveries, `pending`. Once settled, acked + failed == queued."""
        with self._lock:
            return {**self._counts, "pending": self._outstanding}

    async def settled(self, timeout: float = 10.0) -> dict[str, int]:
        """Wait until every delivery is acked or given up (retries included); the counters.
        Raises `TimeoutError`. Call on the server's loop."""
        deadline = time.monotonic() + timeout
        while self._outstanding:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self._outstanding} event deliveries still pending after {timeout} s"
                )
            await asyncio.sleep(0.01)
        return self.counters

    # -- the queue (under self._lock) -----------------------------------------------------------
    def _put(self, delivery: _Delivery) -> None:
        self._queue.append(delivery)
        self._counts["queued"] += 0 if delivery.attempt else 1
        if not delivery.attempt and not delivery.duplicate:
            self._outstanding += 1

    def _later(self, delay: float, delivery: _Delivery) -> None:
        loop = self._loop
        if loop is None:  # not serving yet: goes with the others once started
            self._put(delivery)
            return

        def put() -> None:
            with self._lock:
                self._queue.append(delivery)
                if delivery.duplicate and not delivery.attempt:
                    self._counts["queued"] += 1
            self._kick()

        loop.call_soon_threadsafe(loop.call_later, delay, put)

    def _take(self) -> _Delivery | None:
        with self._lock:
            if not self._queue:
                return None
            window = min(self.config.shuffle_window, len(self._queue))
            index = self._rng.randrange(window) if window > 1 else 0
            delivery = self._queue[index]
            del self._queue[index]
            return delivery

    def _kick(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    # -- workers --------------------------------------------------------------------------------
    def install(self, app: web.Application) -> None:
        app.router.add_get("/_fake/events", self._get_state)
        app.router.add_post("/_fake/events/config", self._post_config)
        app.router.add_get("/_fake/events/settled", self._get_settled)
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)

    async def _on_startup(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._http = aiohttp.ClientSession()
        self._ensure_workers()
        self._wake.set()

    async def _on_cleanup(self, app: web.Application) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._loop = self._wake = None

    def _ensure_workers(self) -> None:
        loop = self._loop
        if loop is None:
            return

        def top_up() -> None:
            self._workers = [t for t in self._workers if not t.done()]
            while len(self._workers) < self.config.concurrency:
                self._workers.append(loop.create_task(self._work()))

        loop.call_soon_threadsafe(top_up)

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            delivery = self._take()
            if delivery is None:
                await self._wake.wait()
                self._wake.clear()
                continue
            try:
                await self._send(delivery)
            except Exception:  # a bug here must not stop the worker or leave `pending` stuck
                log.exception("event delivery failed unexpectedly")
                self._finish(delivery, _Result(False, "unknown_error"))

    async def _send(self, delivery: _Delivery) -> None:
        config = self.config
        start = time.monotonic()
        if config.mode == "http" and config.url:
            result = await self._post(config.url, delivery, config.ack_timeout)
        elif config.mode == "socket":
            result = await self._socket_deliver(delivery, config.ack_timeout)
        else:  # switched off meanwhile: dropped, as Slack drops events nobody subscribes to
            result = _Result(False, "delivery_off", no_retry=True)
        env = delivery.envelope
        event = env["event"]
        self.attempts.append(
            {
                "event_id": env["event_id"],
                "team_id": env["team_id"],
                "event_type": event.get("subtype") or event.get("type"),
                "attempt": delivery.attempt,
                "retry_reason": delivery.reason,
                "duplicate": delivery.duplicate,
                "ok": result.ok,
                "outcome": "acked" if result.ok else result.reason,
                "status": result.status,
                "seconds": round(time.monotonic() - start, 4),
                "t_wall": time.time(),
            }
        )
        self._finish(delivery, result)

    def _finish(self, delivery: _Delivery, result: _Result) -> None:
        with self._lock:
            self._counts["delivered"] += 1
            if delivery.attempt:
                self._counts["retried"] += 1
            retries = self.config.retry_delays
            if result.ok:
                self._counts["acked"] += 1
                self._outstanding -= 1
                return
            if result.no_retry or delivery.attempt >= len(retries):
                self._counts["failed"] += 1
                self._outstanding -= 1
                log.info(
                    "event %s given up after %d retries: %s",
                    delivery.envelope["event_id"],
                    delivery.attempt,
                    result.reason,
                )
                return
            delay = retries[delivery.attempt]
            again = _Delivery(delivery.envelope, delivery.attempt + 1, result.reason)
            self._later(delay, again)

    async def _post(self, url: str, delivery: _Delivery, ack_timeout: float) -> _Result:
        assert self._http is not None
        body = json.dumps(delivery.envelope)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(body, self.signing_secret()),
        }
        if delivery.attempt:
            headers["X-Slack-Retry-Num"] = str(delivery.attempt)
            headers["X-Slack-Retry-Reason"] = delivery.reason
        try:
            async with self._http.post(
                url,
                data=body.encode(),
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=ack_timeout),
            ) as response:
                await response.read()
                status = response.status
                no_retry = response.headers.get("X-Slack-No-Retry") == "1"
        except TimeoutError:
            return _Result(False, "http_timeout")
        except aiohttp.ClientSSLError:
            return _Result(False, "ssl_error")
        except (aiohttp.ClientConnectionError, OSError):
            return _Result(False, "connection_failed")
        except aiohttp.ClientError:
            return _Result(False, "unknown_error")
        if 200 <= status < 300:
            return _Result(True, status=status)
        return _Result(False, "http_error", status, no_retry)

    async def _socket_deliver(self, delivery: _Delivery, ack_timeout: float) -> _Result:
        try:
            await self.socket.deliver(
                "events_api",
                delivery.envelope,
                timeout=ack_timeout,
                retry_attempt=delivery.attempt,
                retry_reason=delivery.reason,
            )
        except SocketModeTimeout:
            return _Result(False, "timeout")
        except (ConnectionError, RuntimeError):
            return _Result(False, "connection_failed")
        return _Result(True)

    # -- HTTP control routes ------------------------------------------------------------------
    async def _get_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"config": self.config.to_dict(), "counters": self.counters, "attempts": self.attempts}
        )

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise TypeError("want a JSON object of settings")
            config = self.configure(**body)
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "config": config.to_dict()})

    async def _get_settled(self, request: web.Request) -> web.Response:
        try:
            counters = await self.settled(float(request.query.get("timeout", "10")))
        except TimeoutError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=504)
        return web.json_response({"ok": True, "counters": counters})
