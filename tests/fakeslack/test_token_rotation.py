"""fakeslack's token rotation: `xoxe.xoxb-` tokens that expire (`token_expired`), single-use
refresh tokens, at most two live access tokens, expiry on demand (Python and control route),
rate buckets that survive a refresh, and slack_sdk's own `AsyncTokenRotator` against it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, OAuthConfig, Workspace
from tests.fakeslack.helpers import refused
from tests.fakeslack.multi_helpers import client_for, three_workspaces


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def rotating(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    config = OAuthConfig(token_rotation=True, token_ttl=1.0)
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=config) as server:
        yield server


async def refresh(fake: FakeSlack, refresh_token: str) -> dict[str, object]:
    config = fake.oauth_config
    answer = await AsyncWebClient(base_url=fake.base_url).oauth_v2_access(
        client_id=config.client_id,
        client_secret=config.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )
    return dict(answer.data)  # type: ignore[arg-type]


async def test_a_rotating_token_expires_and_a_refresh_gives_a_new_pair(
    rotating: FakeSlack, workspaces: list[Workspace]
) -> None:
    ws = workspaces[1]
    answer = rotating.install(ws.team_id)
    token, refresh_token = answer["access_token"], answer["refresh_token"]
    assert token.startswith("xoxe.xoxb-1-")
    assert refresh_token.startswith("xoxe-1-")
    assert answer["expires_in"] == 1
    client = client_for(rotating, token)
    me = await client.auth_test()
    assert me["team_id"] == ws.team_id and 0 <= me["expires_in"] <= 1
    await asyncio.sleep(1.1)
    assert await refused(client.auth_test()) == "token_expired"
    assert await refused(client.conversations_list()) == "token_expired"
    renewed = await refresh(rotating, refresh_token)
    assert renewed["token_type"] == "bot" and renewed["expires_in"] == 1
    assert renewed["access_token"] != token and renewed["refresh_token"] != refresh_token
    assert renewed["team"] == {"id": ws.team_id, "name": ws.team_name}
    new_client = client_for(rotating, str(renewed["access_token"]))
    assert (await new_client.auth_test())["team_id"] == ws.team_id
    assert rotating.token_for(ws.team_id) == renewed["access_token"]
    # The refresh token was single use.
    with pytest.raises(Exception, match="invalid_refresh_token"):
        await refresh(rotating, refresh_token)


async def test_expiring_on_demand_and_at_most_two_live_tokens(workspaces: list[Workspace]) -> None:
    config = OAuthConfig(token_rotation=True)  # Slack's 12 hours
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=config) as fake:
        a, b, _ = workspaces
        first = fake.install(a.team_id)
        other = fake.install(b.team_id)
        assert first["expires_in"] == 43200
        assert fake.expire_tokens(a.team_id) == 1
        assert await refused(client_for(fake, first["access_token"]).auth_test()) == "token_expired"
        # Only that workspace's tokens.
        assert (await client_for(fake, other["access_token"]).auth_test())["ok"]
        second = await refresh(fake, first["refresh_token"])
        third = await refresh(fake, str(second["refresh_token"]))
        fourth = await refresh(fake, str(third["refresh_token"]))
        # Three issued since the expiry: the oldest of them is gone, the newest two work.
        assert await refused(client_for(fake, str(second["access_token"])).auth_test()) == (
            "token_expired"
        )
        for answer in (third, fourth):
            assert (await client_for(fake, str(answer["access_token"])).auth_test())["ok"]
        # The control route does the same for a fakeslack in another process.
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{fake.url}/_fake/teams/{a.team_id}/expire_tokens") as response,
        ):
            assert (await response.json()) == {"ok": True, "expired": 2}
        assert await refused(client_for(fake, str(fourth["access_token"])).auth_test()) == (
            "token_expired"
        )


async def test_a_refreshed_token_keeps_its_workspaces_rate_buckets(
    workspaces: list[Workspace],
) -> None:
    config = OAuthConfig(token_rotation=True)
    async with FakeSlack.serving(workspaces, rate_limits=True, oauth=config) as fake:
        team_id = workspaces[0].team_id
        answer = fake.install(team_id)
        client = client_for(fake, answer["access_token"])
        client.retry_handlers.clear()
        for _ in range(20):
            await client.conversations_list(limit=1)
        renewed = await refresh(fake, answer["refresh_token"])
        fresh = client_for(fake, str(renewed["access_token"]))
        fresh.retry_handlers.clear()
        assert await refused(fresh.conversations_list(limit=1)) == "ratelimited"


async def test_slack_sdks_token_rotator_refreshes_against_fakeslack(
    rotating: FakeSlack, workspaces: list[Workspace]
) -> None:
    ws = workspaces[2]
    answer = rotating.install(ws.team_id)
    config = rotating.oauth_config
    rotator = AsyncTokenRotator(
        client_id=config.client_id,
        client_secret=config.client_secret,
        client=AsyncWebClient(base_url=rotating.base_url),
    )
    installation = Installation(
        app_id=answer["app_id"],
        team_id=ws.team_id,
        user_id=answer["authed_user"]["id"],
        bot_token=answer["access_token"],
        bot_id=ws.bot_id,
        bot_user_id=answer["bot_user_id"],
        bot_refresh_token=answer["refresh_token"],
        bot_token_expires_in=answer["expires_in"],
    )
    rotated = await rotator.perform_token_rotation(
        installation=installation, minutes_before_expiration=120
    )
    assert rotated is not None and rotated.bot_token != answer["access_token"]
    assert (await client_for(rotating, str(rotated.bot_token)).auth_test())["team_id"] == ws.team_id
