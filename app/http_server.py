"""The HTTP front: `POST /slack/events` into Bolt, `GET /healthz`, `/readyz` and `/metrics`, on
aiohttp.

Before Bolt sees a request, `SlackFront` admits it: the signature (and only then the body's shape,
see `app.request_check`), then the replay ledger. A refusal is a 400 or 401 with the reason in
plain words and one throttled log line, never a traceback. Bolt's own verification stays on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from app.foreground import foreground
from app.metrics import CONTENT_TYPE, Metrics
from app.readiness import Readiness
from app.request_check import Refusal, check_signature, parse_request
from app.throttled_log import ThrottledLog
from db.replays import ReplayLedger
from scheduler.mirror_rules import CHANNEL_EVENTS

EVENTS_PATH = "/slack/events"
# The replay check is one small insert; past this the request goes on unchecked (fail open: a
# request acted on during a database outage could not change anything anyway) and it is logged.
REPLAY_CHECK_TIMEOUT_S = 1.0
_SIGNATURE_HEADERS = ("X-Slack-Signature", "X-Slack-Request-Timestamp")
log = logging.getLogger(__name__)


@dataclass
class SlackFront:
    """Admits requests for Bolt: verified, well-formed, and not seen before."""

    verifier: SignatureVerifier
    replays: ReplayLedger
    log: ThrottledLog = field(default_factory=lambda: ThrottledLog(log))

    async def admit(self, request: web.Request) -> AsyncBoltRequest | web.Response:
        for name in _SIGNATURE_HEADERS:
            if len(request.headers.getall(name, [])) > 1:
                return self.refuse(Refusal(400, "duplicate-header", f"{name} is given twice"))
        raw = await request.read()  # aiohttp answers 413 itself past client_max_size
        signed = check_signature(self.verifier, request.headers, raw)
        if isinstance(signed, Refusal):
            return self.refuse(signed)
        parsed = parse_request(signed, request.headers, request.query_string)
        if isinstance(parsed, Refusal):
            return self.refuse(parsed)
        # Slack's own event retries carry the same event again (new signature or not); the live
        # mirror drops repeats by `event_id`, so events are never refused here.
        is_event = parsed.body.get("type") == "event_callback"
        if not is_event and not await self._first_sight(signed.signature, signed.valid_until):
            return self.refuse(Refusal(401, "replay", "this signed request was already received"))
        return parsed

    async def _first_sight(self, signature: str, valid_until: int) -> bool:
        try:
            async with asyncio.timeout(REPLAY_CHECK_TIMEOUT_S):
                return await self.replays.first_sight(signature, valid_until)
        except Exception as exc:  # noqa: BLE001 - TimeoutError or the database away
            self.log.emit(
                "replay-check-failed",
                "could not check a request for replay (%s); it was let through",
                type(exc).__name__,
            )
            return True

    def refuse(self, refusal: Refusal) -> web.Response:
        self.log.emit(
            refusal.kind,
            "refused a request to %s with %d: %s",
            EVENTS_PATH,
            refusal.status,
            refusal.reason,
        )
        # Retrying cannot make a refused request acceptable: ask Slack not to.
        return web.json_response(
            {"ok": False, "error": refusal.reason},
            status=refusal.status,
            headers={"X-Slack-No-Retry": "1"},
        )


async def _mirror_event(request: web.Request) -> bool:
    """Whether the request is one of the live mirror's events (a message or channel event): the
    body is read once here (aiohttp keeps it for the checks that follow) and only looked at."""
    if request.content_type != "application/json":
        return False
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return False  # the front refuses it with the reason
    if not isinstance(body, dict) or body.get("type") != "event_callback":
        return False
    event = body.get("event")
    kind = event.get("type") if isinstance(event, dict) else None
    return isinstance(kind, str) and (kind == "message" or kind in CHANNEL_EVENTS)


def build_web_app(
    bolt: AsyncApp | None,
    *,
    mode: str,
    front: SlackFront | None = None,
    readiness: Readiness | None = None,
    metrics: Metrics | None = None,
    oauth_flow: AsyncOAuthFlow | None = None,
) -> web.Application:
    """`bolt` is None in Socket Mode, where only the health checks (and `/metrics`, given
    `metrics`) are served over HTTP. The app always passes `front` in HTTP mode; without one,
    requests go to Bolt as they come."""
    dispatch_log = front.log if front is not None else ThrottledLog(log)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        if await _mirror_event(request):
            # One inbox insert, nobody waiting on a reply: it does not hold back the engine and
            # the listeners' slow halves (under a steady stream of events they would never run).
            return await _answer(request)
        gate = foreground()
        gate.begin()  # deferred work waits until this request is answered
        try:
            return await _answer(request)
        finally:
            gate.end()

    async def _answer(request: web.Request) -> web.StreamResponse:
        assert bolt is not None
        started = time.perf_counter()
        try:
            if front is None:
                admitted: AsyncBoltRequest | web.Response = await to_bolt_request(request)
            else:
                admitted = await front.admit(request)
            if isinstance(admitted, web.Response):
                return admitted
            try:
                bolt_response = await bolt.async_dispatch(admitted)
                return await to_aiohttp_response(bolt_response)
            except Exception as exc:  # noqa: BLE001 - the last-resort net, see below
                # Bolt turns listener errors into responses itself; what still escapes is a bug
                # in an error path. One line per kind and minute, not a traceback per request.
                dispatch_log.emit(
                    f"dispatch:{type(exc).__name__}",
                    "a Slack request failed inside Bolt (%s: %s)",
                    type(exc).__name__,
                    str(exc)[:200],
                )
                return web.json_response(
                    {"ok": False, "error": "the request failed on our side"}, status=500
                )
        finally:
            if metrics is not None:
                metrics.on_request(time.perf_counter() - started)

    async def install(request: web.Request) -> web.StreamResponse:
        # Bolt's install page and redirect (multi-workspace mode): a browser, not Slack, asks.
        assert oauth_flow is not None
        asked = await to_bolt_request(request)
        if request.path == oauth_flow.install_path:
            return await to_aiohttp_response(await oauth_flow.handle_installation(asked))
        return await to_aiohttp_response(await oauth_flow.handle_callback(asked))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "mode": mode})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.problems() if readiness is not None else []
        if problems:
            return web.json_response(
                {"status": "not ready", "mode": mode, "problems": problems}, status=503
            )
        return web.json_response({"status": "ready", "mode": mode})

    async def metrics_text(_: web.Request) -> web.Response:
        assert metrics is not None
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    if metrics is not None:
        web_app.router.add_get("/metrics", metrics_text)
    if bolt is not None:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    if oauth_flow is not None:
        web_app.router.add_get(oauth_flow.install_path, install)
        web_app.router.add_get(oauth_flow.redirect_uri_path, install)
    return web_app


async def start_http(web_app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
