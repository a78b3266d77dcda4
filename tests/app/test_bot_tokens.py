"""Installed workspaces' bot tokens for background work (`app.bot_tokens.InstalledBotTokens`) and
the engine reading each workspace through its own gateway (`scheduler.backfill.gateways`), against
fakeslack's OAuth with token rotation, on SQLite and PostgreSQL: a token expiring soon is refreshed
before use, a token Slack expires in the middle of a run is refreshed and the run completes, one
refresh for concurrent callers, and a workspace without an install ends its run at once."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.bot_tokens import HOLD_SECONDS, InstalledBotTokens
from db.installations import find_workspace_installation, revoke_installation
from db.models import utcnow
from db.records import Installation, Progress
from db.token_crypto import TokenCipher, generate_key
from fakeslack import FakeSlack, OAuthConfig, Workspace
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest
from scheduler.backfill.errors import PermanentSlackError, SlackUnavailable
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.gateways import Gateways
from scheduler.backfill.profiles import INTERNAL
from scheduler.backfill.tokens import NOT_INSTALLED, WorkspaceToken
from scheduler.outcomes import PERMANENT_REASONS
from tests.engine.engine_harness import Stores, open_stores
from tests.fakeslack.helpers import NOW
from tests.fakeslack.multi_helpers import three_workspaces
from tests.support.installs import bot_tokens, install

Sessions = async_sessionmaker[AsyncSession]
FAST = dataclasses.replace(INTERNAL.scaled(0.05), history_page_size=20, replies_page_size=200)
TWELVE_HOURS = 12 * 3600.0  # a rotating token's life at Slack


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def rotating(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    config = OAuthConfig(token_rotation=True, token_ttl=TWELVE_HOURS)
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=config) as server:
        yield server


@pytest.fixture
async def stores(database_url: str, tmp_path: Path) -> AsyncIterator[Stores]:
    async with open_stores(database_url, tmp_path / "chroma") as opened:
        yield opened


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher(generate_key())


def gateways(fake: FakeSlack, tokens: InstalledBotTokens) -> Gateways:
    def gateway(token: WorkspaceToken) -> SlackGateway:
        return SlackGateway(token, base_url=fake.base_url, profile=FAST, backoff_base=0.02)

    return Gateways.per_workspace(tokens, gateway)


def refreshes(fake: FakeSlack) -> int:
    return sum(
        1 for c in fake.calls_of("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"
    )


async def works(fake: FakeSlack, token: str) -> bool:
    try:
        await AsyncWebClient(token=token, base_url=fake.base_url).auth_test()
    except SlackApiError:
        return False
    return True


async def stored_token(stores: Stores, cipher: TokenCipher, team_id: str) -> Installation:
    async with stores.sessions() as session:
        found = await find_workspace_installation(session, cipher, team_id)
    assert found is not None
    return found


async def test_a_token_expiring_soon_is_refreshed_before_use_and_then_kept(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    team = workspaces[1].team_id
    # Installed 11.5 hours ago: half an hour left, within the two-hour margin.
    first = await install(rotating, stores.sessions, cipher, team, stored_expiry_s=1800)
    tokens = bot_tokens(rotating, stores.sessions, cipher, refresh_before_minutes=120)
    token = await tokens.current(team)
    assert token != first and await works(rotating, token)
    assert refreshes(rotating) == 1
    saved = await stored_token(stores, cipher, team)
    assert saved.bot_token == token  # stored (encrypted) for the other processes
    assert saved.bot_token_expires_at is not None
    assert saved.bot_token_expires_at > utcnow() + timedelta(hours=11)
    # Held until it too comes within the margin: no refresh per call, nor in another process.
    assert await tokens.current(team) == token
    other = bot_tokens(rotating, stores.sessions, cipher, refresh_before_minutes=120)
    assert await other.current(team) == token
    assert refreshes(rotating) == 1


async def test_a_token_expired_in_the_middle_of_a_run_is_refreshed_and_the_run_completes(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    ws = workspaces[1]
    first = await install(rotating, stores.sessions, cipher, ws.team_id)
    tokens = bot_tokens(rotating, stores.sessions, cipher, refresh_before_minutes=0)
    engine = BackfillEngine(gateways(rotating, tokens), stores.sessions, stores.vectors)
    expired: list[int] = []

    async def progress(snapshot: Progress) -> None:
        # Once the run has stored a page: Slack ends the token (its 12 hours are over).
        if not expired and snapshot.messages_stored > 0:
            expired.append(rotating.expire_tokens(ws.team_id))

    result = await engine.run(RunRequest(ws.team_id, 1, days=60, now=NOW), progress=progress)
    assert expired == [1]
    assert result.error is None and not result.cancelled
    assert result.channels_processed > 0 and result.messages_written > 0
    assert refreshes(rotating) == 1
    # A call with a token fakeslack no longer serves lands in the first workspace's log.
    rejected = [c for c in rotating.calls if c.error == "token_expired"]
    assert len(rejected) == 1  # one call met the expired token, and was made again once
    after = [c for c in rotating.team(ws.team_id).calls if c.t_mono > rejected[0].t_mono]
    assert after and all(c.status == 200 and c.error is None for c in after)
    saved = await stored_token(stores, cipher, ws.team_id)
    assert saved.bot_token != first and await works(rotating, str(saved.bot_token))
    assert not await works(rotating, first)

    # The same run again stores nothing new: the first one read everything.
    again = await engine.run(RunRequest(ws.team_id, 2, days=60, now=NOW))
    assert again.error is None and again.messages_written == 0


async def test_concurrent_callers_refresh_once(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    team = workspaces[2].team_id
    first = await install(rotating, stores.sessions, cipher, team)
    tokens = bot_tokens(rotating, stores.sessions, cipher, refresh_before_minutes=0)
    assert await tokens.current(team) == first
    rotating.expire_tokens(team)
    renewed = await asyncio.gather(*(tokens.renew(team, first, "token_expired") for _ in range(5)))
    assert len(set(renewed)) == 1 and renewed[0] != first
    assert refreshes(rotating) == 1  # a refresh token works once: one caller used it

    # Another process holding the old token takes the one this process saved: no refresh.
    other = bot_tokens(rotating, stores.sessions, cipher, refresh_before_minutes=0)
    assert await other.renew(team, first, "token_expired") == renewed[0]
    assert refreshes(rotating) == 1


async def test_a_workspace_without_a_usable_install_ends_its_run_at_once(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    ws = workspaces[1]
    await install(rotating, stores.sessions, cipher, ws.team_id)
    tokens = bot_tokens(rotating, stores.sessions, cipher)
    engine = BackfillEngine(
        gateways(rotating, tokens), stores.sessions, stores.vectors, EngineConfig()
    )
    never = workspaces[2].team_id  # never installed
    result = await engine.run(RunRequest(never, 1, days=60, now=NOW))
    assert (result.error, result.error_kind) == (NOT_INSTALLED, "permanent")
    assert rotating.team(never).calls == []  # nothing asked of Slack without a token

    async with stores.sessions.begin() as session:
        await revoke_installation(
            session, enterprise_id=None, team_id=ws.team_id, reason="app_uninstalled"
        )
    tokens.forget(ws.team_id)
    with pytest.raises(PermanentSlackError) as refused:
        await tokens.current(ws.team_id)
    assert refused.value.error == NOT_INSTALLED
    result = await engine.run(RunRequest(ws.team_id, 2, days=60, now=NOW))
    assert (result.error, result.error_kind) == (NOT_INSTALLED, "permanent")
    assert "Reinstall" in PERMANENT_REASONS[NOT_INSTALLED]
    assert "xox" not in repr(tokens)


async def test_slack_unreachable_for_a_refresh_keeps_a_token_that_still_works(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    team = workspaces[1].team_id
    first = await install(rotating, stores.sessions, cipher, team, stored_expiry_s=1800)
    config = rotating.oauth_config
    nowhere = AsyncTokenRotator(
        client_id=config.client_id,
        client_secret=config.client_secret,
        client=AsyncWebClient(base_url="http://127.0.0.1:9/api/", timeout=2),
    )
    tokens = InstalledBotTokens(stores.sessions, cipher, nowhere, refresh_before_minutes=120)
    # Half an hour left: used as it is until the refresh gets through.
    assert await tokens.current(team) == first
    # Slack says it expired and no new one can be had: the run's call fails as transient.
    with pytest.raises(SlackUnavailable) as unreachable:
        await tokens.renew(team, first, "token_expired")
    assert unreachable.value.method == "oauth.v2.access"


async def test_a_process_holding_a_revoked_token_takes_the_reinstalled_one(
    workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    """Another process handled the uninstall and the reinstall: this one still holds the old
    token; Slack refuses it (`token_revoked`), the stored new one is read and the run goes on."""
    ws = workspaces[1]
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=OAuthConfig()) as fake:
        old = await install(fake, stores.sessions, cipher, ws.team_id)
        tokens = bot_tokens(fake, stores.sessions, cipher)
        assert await tokens.current(ws.team_id) == old  # held
        fake.uninstall(ws.team_id)
        new = await install(fake, stores.sessions, cipher, ws.team_id)  # the redirect stores it
        assert new != old
        engine = BackfillEngine(gateways(fake, tokens), stores.sessions, stores.vectors)
        result = await engine.run(RunRequest(ws.team_id, 1, days=60, now=NOW))
        assert result.error is None and result.messages_written > 0
        refused = [c for c in fake.calls if c.error == "token_revoked"]
        assert len(refused) == 1  # the held token, once; then the stored one
        assert await tokens.current(ws.team_id) == new


async def test_a_held_token_is_read_again_after_a_while(
    rotating: FakeSlack, workspaces: list[Workspace], stores: Stores, cipher: TokenCipher
) -> None:
    """A reinstall stored by another process reaches this one within `HOLD_SECONDS`, without
    any refusal from Slack first."""
    team = workspaces[1].team_id
    now = [time.time()]
    first = await install(rotating, stores.sessions, cipher, team)
    tokens = bot_tokens(
        rotating, stores.sessions, cipher, refresh_before_minutes=0, clock=lambda: now[0]
    )
    assert await tokens.current(team) == first
    second = await install(rotating, stores.sessions, cipher, team)  # another process's
    assert await tokens.current(team) == first  # held
    now[0] += HOLD_SECONDS
    assert await tokens.current(team) == second
