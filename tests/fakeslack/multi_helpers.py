"""Shared pieces of the multi-workspace fakeslack tests: three small workspaces of one app, a
client per token, and a receiver of signed event POSTs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, generate_workspaces
from tests.fakeslack.helpers import NOW

ENTERPRISE = ("E0GRID0001", "Grid Org")


def three_workspaces(*, enterprise: bool = False) -> list[Workspace]:
    return generate_workspaces(
        3, seed=40, users=8, channels=7, messages=150, now=NOW, enterprise=enterprise
    )


def client_for(fake: FakeSlack, token: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.base_url)


class Receiver:
    """The app's Request URL: answers 200 and keeps every body with its signature's verdict."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.bodies: list[dict[str, Any]] = []
        self.valid: list[bool] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.bodies.append(json.loads(raw))
        self.valid.append(
            self.verifier.is_valid(
                raw,
                request.headers.get("X-Slack-Request-Timestamp", ""),
                request.headers.get("X-Slack-Signature", ""),
            )
        )
        return web.Response(status=200)

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b["event"]["type"] == event_type]


@asynccontextmanager
async def receiving(secret: str) -> AsyncIterator[Receiver]:
    made = Receiver(secret)
    app = web.Application()
    app.router.add_post("/slack/events", made.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    made.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield made
    finally:
        await runner.cleanup()
