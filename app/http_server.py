"""The HTTP front: `POST /slack/events` into Bolt and `GET /healthz`, on aiohttp."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from handlers.foreground import foreground

EVENTS_PATH = "/slack/events"


def build_web_app(bolt: AsyncApp | None, *, mode: str) -> web.Application:
    """`bolt` is None in Socket Mode, where only the health check is served over HTTP."""

    async def slack_events(request: web.Request) -> web.Response:
        assert bolt is not None
        gate = foreground()
        gate.begin()  # deferred work waits until this request is answered
        try:
            bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(bolt_response)
        finally:
            gate.end()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "mode": mode})

    web_app = web.Application()
    web_app.router.add_get("/healthz", healthz)
    if bolt is not None:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    return web_app


async def start_http(web_app: web.Application, port: int, host: str = "0.0.0.0") -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
