"""The Socket Mode front: Bolt's aiohttp Socket Mode handler, with each envelope counted as a
request in progress until its acknowledgement is sent (see `app.foreground`)."""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from app.foreground import foreground


class CountedSocketModeHandler(AsyncSocketModeHandler):
    """Deferred work waits while an envelope is being dispatched and acknowledged."""

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        gate = foreground()
        gate.begin()
        try:
            # Bolt types this parameter two ways (its base class and its aiohttp handler).
            await super().handle(client, req)  # type: ignore[arg-type]
        finally:
            gate.end()
