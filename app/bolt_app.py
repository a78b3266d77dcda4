"""Build the Bolt `AsyncApp` from explicit settings, never from Bolt's environment fallbacks."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from app.http_sessions import RespondOverPool, SlackConnections
from app.settings import Settings
from handlers import register_all
from handlers.deps import Deps


def build_web_client(
    settings: Settings, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """The listeners' and notifier's Web API client, pointed at `SLACK_API_URL`, on the
    workspace's pooled `session` (Bolt hands it on to the client it makes per request). The engine
    has a paced gateway of its own; this one only honours `Retry-After` on the odd 429 (DMs, views)."""
    client = AsyncWebClient(
        token=settings.slack_bot_token, base_url=settings.slack_api_url, session=session
    )
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


class _DropEnvTokenWarning(logging.Filter):
    """Bolt warns that a `SLACK_BOT_TOKEN` it found in the environment is unused because we pass
    `client`: that is the point (we never rely on its environment fallback), so the line is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_DROP_ENV_TOKEN_WARNING = _DropEnvTokenWarning()  # one instance: addFilter ignores repeats


def build_bolt_app(
    settings: Settings, client: AsyncWebClient, deps: Deps, connections: SlackConnections
) -> AsyncApp:
    """`connections`: the workspace's pooled session, which every `respond()` posts over."""
    socket_mode = settings.socket_mode
    bolt_logger = logging.getLogger("backfill.bolt")
    bolt_logger.addFilter(_DROP_ENV_TOKEN_WARNING)
    app = AsyncApp(
        client=client,
        # Passed explicitly (even empty) so Bolt never reads SLACK_SIGNING_SECRET itself.
        signing_secret=settings.slack_signing_secret or "",
        # Socket Mode requests arrive over an authenticated websocket and carry no signature.
        request_verification_enabled=not socket_mode,
        # Listeners return right after ack() and leave slow work to app.foreground; Bolt
        # then answers without its 10 ms ack-polling loop per request (see that module).
        process_before_response=True,
        logger=bolt_logger,
        name="backfill",
    )
    app.use(RespondOverPool(connections))  # first: every later middleware sees it
    register_all(app, deps)
    return app
