"""`WorkspaceClients`: the Web API client of each workspace for work no request carries (run DMs,
Home refreshes during a run). A listener uses the client Bolt made for its request; background
work asks here, so each workspace's DMs go out with that workspace's current token (a rotating
token refreshed meanwhile included: `scheduler.backfill.tokens.BotTokens`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from scheduler.backfill.tokens import BotTokens

ClientMaker = Callable[[str], Awaitable[AsyncWebClient]]


class WorkspaceClients:
    """A workspace's client, made when asked (cheap: the pooled session is shared)."""

    def __init__(self, make: ClientMaker) -> None:
        self._make = make

    @classmethod
    def of(cls, client: AsyncWebClient) -> WorkspaceClients:
        """One client for every workspace asked for (one workspace, or tests)."""

        async def same(_workspace_id: str) -> AsyncWebClient:
            return client

        return cls(same)

    @classmethod
    def per_workspace(
        cls,
        tokens: BotTokens,
        *,
        base_url: str,
        session: Callable[[], aiohttp.ClientSession | None] = lambda: None,
    ) -> WorkspaceClients:
        """Each workspace's client with its current token, on the pooled `session`. Like the
        listeners' client it honours `Retry-After` on the odd 429 (DMs and views are not paced)."""

        async def make(workspace_id: str) -> AsyncWebClient:
            client = AsyncWebClient(
                token=await tokens.current(workspace_id), base_url=base_url, session=session()
            )
            client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
            return client

        return cls(make)

    async def for_workspace(self, workspace_id: str) -> AsyncWebClient:
        """Raises `PermanentSlackError` (`not_installed`) when the workspace has no usable token."""
        return await self._make(workspace_id)
