"""slack_sdk's store interfaces over our database (`app.oauth_stores`), on SQLite and PostgreSQL:
what Bolt's OAuth flow, `authorize`, token rotation and revocation listeners call, with every
token encrypted before SQL; and the one-time OAuth states."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any, cast

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.oauth_stores import InstallationStore, OAuthStateStore
from db.models import OAuthState, utcnow
from db.oauth_states import consume_state, issue_state
from db.token_crypto import TokenCipher, generate_key
from tests.support.raw_dumps import dump_everything

Sessions = async_sessionmaker[AsyncSession]
CLIENT_SECRET = "client-secret-never-stored-0123456789"


def slack_install(
    team_id: str | None, enterprise_id: str | None = None, **kw: object
) -> Installation:
    """As Bolt builds it from oauth.v2.access (with token rotation on) and auth.test."""
    name = team_id or enterprise_id
    values: dict[str, object] = {
        "app_id": "A0APP",
        "enterprise_id": enterprise_id,
        "team_id": team_id,
        "team_name": f"Team {name}",
        "bot_token": f"xoxe.xoxb-1-{name}-bot-token-in-clear",
        "bot_id": "B0BOT",
        "bot_user_id": "U0BOT",
        "bot_scopes": "channels:history,chat:write,commands",
        "bot_refresh_token": f"xoxe-1-{name}-refresh-token-in-clear",
        "bot_token_expires_in": 43200,
        "user_id": "U0ADMIN",
        "token_type": "bot",
        "installed_at": 1_740_000_000.5,
    }
    values |= kw
    return Installation(**values)  # type: ignore[arg-type]


def same(found: Installation | None, saved: Installation) -> bool:
    assert found is not None
    fields = [
        "app_id",
        "enterprise_id",
        "team_id",
        "team_name",
        "bot_token",
        "bot_id",
        "bot_user_id",
        "bot_scopes",
        "bot_refresh_token",
        "bot_token_expires_at",
        "user_id",
        "is_enterprise_install",
        "token_type",
    ]
    for name in fields:
        assert getattr(found, name) == getattr(saved, name), name
    assert abs(found.installed_at - saved.installed_at) < 1e-3
    return True


async def test_oauth_store_save_find_delete_round_trip(
    sessions: Sessions, database_url: str
) -> None:
    store = InstallationStore(sessions, TokenCipher(generate_key()))
    saved = slack_install("T1")
    await store.async_save(saved)
    assert same(await store.async_find_installation(enterprise_id=None, team_id="T1"), saved)
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == saved.bot_token
    assert bot.bot_refresh_token == saved.bot_refresh_token
    assert bot.bot_token_expires_at == saved.bot_token_expires_at
    assert bot.bot_scopes == ["channels:history", "chat:write", "commands"]
    # Another user than the installer has no installation of their own (no user tokens).
    assert same(
        await store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U0ADMIN"),
        saved,
    )
    assert (
        await store.async_find_installation(enterprise_id=None, team_id="T1", user_id="U0OTHER")
        is None
    )
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None

    # Bolt's token rotation saves the refreshed installation: the same row changes.
    refreshed = slack_install(
        "T1", bot_token="xoxe.xoxb-1-T1-rotated", bot_refresh_token="xoxe-1-T1-rotated"
    )
    await store.async_save(refreshed)
    assert same(await store.async_find_installation(enterprise_id=None, team_id="T1"), refreshed)

    # tokens_revoked with a user id: we hold no user token, nothing changes.
    await store.async_delete_installation(enterprise_id=None, team_id="T1", user_id="U0ADMIN")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is not None
    await store.async_delete_bot(enterprise_id=None, team_id="T1")  # tokens_revoked, bot
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None
    assert await store.async_find_installation(enterprise_id=None, team_id="T1") is None

    await store.async_save(slack_install("T2"))
    await store.async_delete_all(enterprise_id=None, team_id="T2")  # app_uninstalled
    assert await store.async_find_installation(enterprise_id=None, team_id="T2") is None

    dump = await dump_everything(database_url)
    assert "Team T1" in dump
    assert "in-clear" not in dump and "rotated" not in dump and CLIENT_SECRET not in dump


async def test_oauth_store_enterprise_org_install(sessions: Sessions, database_url: str) -> None:
    store = InstallationStore(sessions, TokenCipher(generate_key()))
    org = slack_install(None, "E1", is_enterprise_install=True, enterprise_url="https://e1.slack")
    await store.async_save(org)
    for team, is_org in (("T5", True), ("T6", True), ("T5", False), (None, True)):
        found = await store.async_find_installation(
            enterprise_id="E1", team_id=team, is_enterprise_install=is_org
        )
        assert same(found, org), (team, is_org)
        bot = await store.async_find_bot(
            enterprise_id="E1", team_id=team, is_enterprise_install=is_org
        )
        assert bot is not None and bot.bot_token == org.bot_token and bot.is_enterprise_install
    assert await store.async_find_bot(enterprise_id="E2", team_id="T5") is None

    # Bolt's bot-only rotation path saves a Bot: the installer stays as stored.
    bot = await store.async_find_bot(enterprise_id="E1", team_id="T5", is_enterprise_install=True)
    assert bot is not None
    bot.bot_token = "xoxe.xoxb-1-E1-refreshed-by-bot-path"
    await store.async_save_bot(bot)
    found = await store.async_find_installation(enterprise_id="E1", team_id="T5")
    assert found is not None and found.bot_token == bot.bot_token
    assert (found.user_id, found.enterprise_url) == ("U0ADMIN", "https://e1.slack")

    # app_uninstalled from a team of the org: Bolt passes that team's id.
    await store.async_delete_all(enterprise_id="E1", team_id="T5")
    assert await store.async_find_bot(enterprise_id="E1", team_id="T6") is None
    dump = await dump_everything(database_url)
    assert "in-clear" not in dump and "refreshed-by-bot-path" not in dump


async def test_oauth_state_is_consumed_once(sessions: Sessions, database_url: str) -> None:
    store = OAuthStateStore(sessions, expiration_seconds=600)
    state = await store.async_issue()
    other = await store.async_issue()
    assert state != other and len(state) >= 32
    assert await store.async_consume(state)
    assert not await store.async_consume(state)  # a replayed redirect
    assert not await store.async_consume("never-issued")
    assert await store.async_consume(other)
    assert state not in await dump_everything(database_url)  # only its hash was stored


async def test_oauth_state_expires(sessions: Sessions) -> None:
    past = utcnow() - timedelta(seconds=601)
    async with sessions.begin() as session:
        old = await issue_state(session, lifetime_s=600, now=past)
    store = OAuthStateStore(sessions, expiration_seconds=1)
    assert not await store.async_consume(old)
    fresh = await store.async_issue()
    await asyncio.sleep(1.1)
    assert not await store.async_consume(fresh)
    async with sessions.begin() as session:
        # Issuing sweeps the expired ones away.
        await issue_state(session, lifetime_s=600)
        left = (await session.execute(select(OAuthState.expire_at))).scalars().all()
        assert len(left) == 1 and left[0] > utcnow()
        assert not await consume_state(session, old)


class _SlackStub:
    """The two Web API methods Bolt's `authorize` calls: the refresh and auth.test."""

    def __init__(self) -> None:
        self.refreshed_with: list[str] = []

    async def oauth_v2_access(self, **kwargs: Any) -> dict[str, Any]:
        self.refreshed_with.append(kwargs["refresh_token"])
        n = len(self.refreshed_with)
        return {
            "ok": True,
            "token_type": "bot",
            "access_token": f"xoxe.xoxb-1-T1-refreshed-{n}",
            "refresh_token": f"xoxe-1-T1-next-refresh-{n}",
            "expires_in": 43200,
        }

    async def auth_test(self, token: str) -> dict[str, Any]:
        return {"ok": True, "team_id": "T1", "user_id": "U0BOT", "bot_id": "B0BOT"}


async def test_oauth_store_bolt_authorize_refreshes_an_expiring_token(
    sessions: Sessions, database_url: str
) -> None:
    """Bolt's own `authorize` with token rotation, on our store: the token that expires within
    its margin is refreshed once, the new pair is saved (encrypted) and used, the next request
    uses it without refreshing again."""
    store = InstallationStore(sessions, TokenCipher(generate_key()))
    await store.async_save(slack_install("T1", bot_token_expires_in=60))  # expires in a minute
    slack = _SlackStub()
    authorize = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("test"),
        installation_store=store,
        client_id="111.222",
        client_secret=CLIENT_SECRET,
    )
    authorize.token_rotator = AsyncTokenRotator(
        client_id="111.222",
        client_secret=CLIENT_SECRET,
        client=cast(AsyncWebClient, slack),
    )
    context = AsyncBoltContext({"client": slack, "is_enterprise_install": False})
    for _ in range(2):
        result = await authorize(context=context, enterprise_id=None, team_id="T1", user_id="U1")
        assert result is not None and result.bot_token == "xoxe.xoxb-1-T1-refreshed-1"
    assert slack.refreshed_with == ["xoxe-1-T1-refresh-token-in-clear"]
    stored = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert stored is not None and stored.bot_refresh_token == "xoxe-1-T1-next-refresh-1"
    assert stored.bot_token_expires_at is not None
    assert stored.bot_token_expires_at > time.time() + 43000
    dump = await dump_everything(database_url)
    assert "refreshed-1" not in dump and "next-refresh-1" not in dump
