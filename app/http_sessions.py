"""The workspace's pooled HTTP connections to Slack: one aiohttp session shared by the engine's
gateway, the listeners' and notifier's Web API client and every `respond()` to a `response_url`.
Without one, slack_sdk opens (and closes) a session, so a TCP and TLS connection, for every call.

The process serves one workspace (its bot token's), so the runtime keeps one `SlackConnections`;
it opens its session on first use, inside the running loop, and closes it once at shutdown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from ssl import SSLContext
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

# slack_sdk's own per-call timeout; with a session it passes none, so the session carries it.
CALL_TIMEOUT_S = 30.0


class SlackConnections:
    """One workspace's aiohttp session to Slack: opened lazily in the running loop, closed once."""

    def __init__(self, *, timeout: float = CALL_TIMEOUT_S) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def session(self) -> aiohttp.ClientSession | None:
        """The shared session, opened on first use (a running loop is required). None once
        closed: slack_sdk's clients then open a session per call, as they did before pooling, so
        a straggler still gets through and nothing is left unclosed."""
        if self._closed:
            return None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close the session (and its connections); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()


class PooledRespond(AsyncRespond):
    """Bolt's `respond()` sent over the workspace's session. Bolt builds its `AsyncWebhookClient`
    without a session and offers no public way to give it one, so `RespondOverPool` puts this in
    each request's context instead (as Bolt's own assistant middleware replaces `say`). Same
    arguments and message as Bolt's; the webhook client is slack_sdk's public one."""

    def __init__(
        self,
        *,
        response_url: str | None,
        session: aiohttp.ClientSession,
        proxy: str | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        super().__init__(response_url=response_url, proxy=proxy, ssl=ssl)
        self.session = session

    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        client = AsyncWebhookClient(
            url=self.response_url, session=self.session, proxy=self.proxy, ssl=self.ssl
        )
        if isinstance(text, dict):  # a whole message, as Bolt accepts
            return await client.send_dict(dict(text))
        # `send_dict` drops the fields left None and renders Block Kit objects, as Bolt does.
        return await client.send_dict(
            {
                "text": text,
                "blocks": blocks or None,
                "attachments": attachments or None,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "thread_ts": thread_ts,
                "metadata": metadata,
            }
        )


class RespondOverPool(AsyncMiddleware):
    """Global middleware, registered first: every request with a `response_url` gets a
    `PooledRespond` as its `respond`, for listeners, listener middleware and the error handler."""

    def __init__(self, connections: SlackConnections) -> None:
        self.connections = connections

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        url = req.context.response_url
        session = self.connections.session() if url is not None else None
        if session is not None:  # None after shutdown: Bolt's own respond, one session per post
            client = req.context.client
            req.context["respond"] = PooledRespond(
                response_url=url, session=session, proxy=client.proxy, ssl=client.ssl
            )
        await next()
        return resp
