"""Build the Bolt `AsyncApp` from explicit settings, never from Bolt's environment fallbacks."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bot_tokens import REFRESH_BEFORE_MINUTES
from app.http_sessions import RespondOverPool, SlackConnections
from app.oauth_stores import InstallationStore, OAuthStateStore
from app.settings import Settings
from blocks.replies import not_installed_reply
from db.token_crypto import TokenCipher
from handlers import register_all
from handlers.deps import ServedWorkspaces

# The bot scopes an install asks for: manifest.yml's (`tests/app/test_manifest.py` holds them equal).
BOT_SCOPES = (
    "commands",
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "channels:join",
    "users:read",
    "chat:write",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


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


def authorization_url(api_url: str) -> str:
    """Slack's install page for the browser, on the host of `SLACK_API_URL` (Slack's own,
    `https://slack.com/oauth/v2/authorize`, or an emulator's)."""
    base = api_url.rstrip("/")
    base = base.removesuffix("/api")
    return f"{base}/oauth/v2/authorize"


def oauth_settings(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], cipher: TokenCipher
) -> AsyncOAuthSettings:
    """Bolt's OAuth flow (`/slack/install`, `/slack/oauth_redirect`) and per-request
    `authorize` over our installations table (tokens encrypted) and one-time states. Token
    rotation's refresh margin is the background work's (`app.bot_tokens`), so both agree."""
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    return AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorization_url(settings.slack_api_url),
        installation_store=InstallationStore(sessions, cipher),
        state_store=OAuthStateStore(sessions),
        token_rotation_expiration_minutes=REFRESH_BEFORE_MINUTES,
    )


def build_bolt_app(
    settings: Settings,
    client: AsyncWebClient,
    served: ServedWorkspaces,
    connections: SlackConnections,
    *,
    oauth: AsyncOAuthSettings | None = None,
) -> AsyncApp:
    """`served`: the workspaces served and their listeners' deps. `connections`: the pooled
    session, which every `respond()` posts over. `oauth` (multi-workspace mode): each request is
    authorized for its own workspace by Bolt's `authorize`, and `client` holds no token."""
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
        oauth_settings=oauth,
        # What Bolt's `authorize` tells a workspace without an install: the same words as ours.
        user_facing_authorize_error_message=not_installed_reply().text,
    )
    app.use(RespondOverPool(connections))  # first: every later middleware sees it
    register_all(app, served)
    return app
