"""Installing the app on fakeslack workspaces as the OAuth redirect would, stored in our
installations table, and the installed workspaces' bot tokens (`app.bot_tokens`) for tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bot_tokens import InstalledBotTokens
from db.installations import save_installation
from db.models import utcnow
from db.records import Installation
from db.token_crypto import TokenCipher
from fakeslack import FakeSlack

Sessions = async_sessionmaker[AsyncSession]


async def install(
    fake: FakeSlack,
    sessions: Sessions,
    cipher: TokenCipher,
    team_id: str,
    *,
    stored_expiry_s: float | None = None,
) -> str:
    """Install the app on `team_id` as the OAuth redirect would, store it; the access token.
    `stored_expiry_s`: the seconds left the stored install says (as if installed long ago)."""
    answer = fake.install(team_id)
    expires_in = stored_expiry_s or answer.get("expires_in")
    record = Installation(
        enterprise_id=None,
        team_id=team_id,
        installer_user_id=answer["authed_user"]["id"],
        installed_at=utcnow(),
        team_name=answer["team"]["name"],
        app_id=answer["app_id"],
        bot_user_id=answer["bot_user_id"],
        bot_scopes=tuple(answer["scope"].split(",")),
        token_type="bot",
        bot_token=answer["access_token"],
        bot_refresh_token=answer.get("refresh_token"),
        bot_token_expires_at=utcnow() + timedelta(seconds=expires_in) if expires_in else None,
    )
    async with sessions.begin() as session:
        await save_installation(session, cipher, record)
    return str(answer["access_token"])


def bot_tokens(
    fake: FakeSlack, sessions: Sessions, cipher: TokenCipher, **kw: Any
) -> InstalledBotTokens:
    config = fake.oauth_config
    rotator = AsyncTokenRotator(
        client_id=config.client_id,
        client_secret=config.client_secret,
        client=AsyncWebClient(base_url=fake.base_url),
    )
    return InstalledBotTokens(sessions, cipher, rotator, **kw)
