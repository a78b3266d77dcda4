"""fakeslack's OAuth v2: the authorize redirect, `oauth.v2.access` (code exchange, credentials by
HTTP Basic or form, Slack's errors), Bolt's real `/slack/install` -> authorize ->
`/slack/oauth_redirect` chain over HTTP, and Enterprise Grid org-wide installs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import FileInstallationStore
from slack_sdk.oauth.state_store import FileOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, OAuthConfig, Workspace
from tests.fakeslack.helpers import member_channel, refused
from tests.fakeslack.multi_helpers import ENTERPRISE, client_for, three_workspaces

REDIRECT = "https://app.example.com/slack/oauth_redirect"


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def multi(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    config = OAuthConfig(redirect_urls=("https://app.example.com/slack/",))
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=config) as server:
        yield server


async def authorize(fake: FakeSlack, team_id: str, **params: str) -> aiohttp.ClientResponse:
    query = {
        "client_id": fake.oauth_config.client_id,
        "scope": "channels:read,channels:history,chat:write",
        "state": "s-123",
        "redirect_uri": REDIRECT,
        **params,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{fake.url}/oauth/v2/authorize",
            params=query,
            headers={"X-Fake-Team": team_id},
            allow_redirects=False,
        ) as response,
    ):
        await response.read()
        return response


def query_of(response: aiohttp.ClientResponse) -> dict[str, str]:
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_authorize_redirects_with_a_code_that_exchanges_for_a_bot_token(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    ws = workspaces[1]
    response = await authorize(multi, ws.team_id)
    assert response.status == 302
    params = query_of(response)
    assert params["state"] == "s-123"
    oauth = AsyncWebClient(base_url=multi.base_url)
    config = multi.oauth_config
    answer = await oauth.oauth_v2_access(
        client_id=config.client_id,
        client_secret=config.client_secret,
        code=params["code"],
        redirect_uri=REDIRECT,
    )
    token = answer["access_token"]
    assert token.startswith("xoxb-")
    assert answer["token_type"] == "bot"
    assert set(answer["scope"].split(",")) == {"channels:read", "channels:history", "chat:write"}
    assert answer["bot_user_id"] == ws.bot_user_id
    assert answer["app_id"] == ws.app_id
    assert answer["team"] == {"id": ws.team_id, "name": ws.team_name}
    assert answer["enterprise"] is None
    assert answer["is_enterprise_install"] is False
    assert answer["authed_user"]["id"] in ws.users
    assert "refresh_token" not in answer and "expires_in" not in answer
    client = client_for(multi, token)
    assert (await client.auth_test())["team_id"] == ws.team_id
    # The scopes granted are the token's: users:read was not asked for.
    assert await refused(client.users_list()) == "missing_scope"
    # A code works once.
    again = oauth.oauth_v2_access(
        client_id=config.client_id,
        client_secret=config.client_secret,
        code=params["code"],
        redirect_uri=REDIRECT,
    )
    assert await refused(again) == "invalid_code"
    # Without rotation, a reinstall answers the same token, with the scopes added up.
    answer2 = multi.install(ws.team_id, scopes=["users:read"])
    assert answer2["access_token"] == token
    assert "users:read" in answer2["scope"] and "chat:write" in answer2["scope"]
    assert (await client.users_list())["ok"]


async def test_oauth_v2_access_refuses_bad_credentials_codes_and_redirects(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    config = multi.oauth_config
    team_id = workspaces[0].team_id
    oauth = AsyncWebClient(base_url=multi.base_url)
    code = multi.install_code(team_id, redirect_uri=REDIRECT)

    async def exchange(**overrides: str) -> str:
        args = {
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "code": code,
            "redirect_uri": REDIRECT,
            **overrides,
        }
        return await refused(oauth.oauth_v2_access(**args))

    assert await exchange(client_id="999.999") == "invalid_client_id"
    assert await exchange(client_secret="nope") == "bad_client_secret"
    assert await exchange(code="made-up") == "invalid_code"
    assert await exchange(redirect_uri="https://app.example.com/slack/other") == "bad_redirect_uri"
    assert await exchange(grant_type="password") == "invalid_grant_type"
    assert await exchange(grant_type="refresh_token", refresh_token="xoxe-1-nope") == (
        "invalid_refresh_token"
    )
    # Credentials as form fields (no Basic auth) are accepted too; the code still works.
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{multi.base_url}oauth.v2.access",
            data={
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "code": code,
                "redirect_uri": REDIRECT,
            },
        ) as response,
    ):
        body = await response.json()
    assert body["ok"] is True and body["team"]["id"] == team_id
    # No secret nor code is kept in the call log.
    logged = [c.args for c in multi.calls_of("oauth.v2.access")]
    assert logged and all(
        "client_secret" not in a and "code" not in a and "refresh_token" not in a for a in logged
    )


async def test_authorize_refuses_a_wrong_client_or_redirect_and_reports_a_cancel(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    team_id = workspaces[0].team_id
    assert (await authorize(multi, team_id, client_id="123.456")).status == 400
    bad = await authorize(multi, team_id, redirect_uri="https://evil.example.com/cb")
    assert bad.status == 400
    cancelled = await authorize(multi, team_id, fake_deny="1")
    assert cancelled.status == 302
    assert query_of(cancelled) == {"error": "access_denied", "state": "s-123"}
    unknown = await authorize(multi, "T0NOWHERE")
    assert unknown.status == 400


async def test_bolts_install_page_and_oauth_redirect_install_a_workspace_over_http(
    multi: FakeSlack, workspaces: list[Workspace], tmp_path: Path
) -> None:
    ws = workspaces[2]
    config = multi.oauth_config
    installs = FileInstallationStore(
        base_dir=str(tmp_path / "installs"), client_id=config.client_id
    )
    app = AsyncApp(
        signing_secret=ws.signing_secret,
        client=AsyncWebClient(base_url=multi.base_url),
        oauth_settings=AsyncOAuthSettings(
            client_id=config.client_id,
            client_secret=config.client_secret,
            scopes=["channels:read", "channels:history", "chat:write", "users:read"],
            redirect_uri=REDIRECT,
            authorization_url=f"{multi.url}/oauth/v2/authorize",
            installation_store=installs,
            state_store=FileOAuthStateStore(
                expiration_seconds=600, base_dir=str(tmp_path / "states")
            ),
        ),
    )
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/slack/install") as page:
                html = await page.text()
                state = page.cookies["slack-app-oauth-state"].value
            assert page.status == 200
            link = re.search(r'href="([^"]+/oauth/v2/authorize[^"]+)"', html)
            assert link is not None
            url = link.group(1).replace("&amp;", "&")
            async with http.get(
                url, headers={"X-Fake-Team": ws.team_id}, allow_redirects=False
            ) as allowed:
                assert allowed.status == 302
                location = allowed.headers["Location"]
            # The browser goes back to the app: same path and query, at the app's address.
            redirect_query = urlsplit(location).query
            async with http.get(
                f"{base}/slack/oauth_redirect?{redirect_query}",
                headers={"Cookie": f"slack-app-oauth-state={state}"},
            ) as done:
                text = await done.text()
            assert done.status == 200, text
            assert "Thank you" in text
    finally:
        await runner.cleanup()
    stored = await installs.async_find_installation(enterprise_id=None, team_id=ws.team_id)
    assert stored is not None and stored.bot_token
    assert stored.bot_user_id == ws.bot_user_id
    channel = member_channel(ws)
    history = await client_for(multi, stored.bot_token).conversations_history(channel=channel.id)
    assert history["ok"]
    assert (
        await installs.async_find_installation(enterprise_id=None, team_id=workspaces[0].team_id)
        is None
    )


async def test_an_org_wide_install_serves_every_workspace_of_the_enterprise() -> None:
    workspaces = three_workspaces(enterprise=True)
    async with FakeSlack.serving(workspaces, enterprise=ENTERPRISE, rate_limits=False) as fake:
        enterprise_id, name = ENTERPRISE
        first, second, third = workspaces
        nowhere = await authorize(fake, first.team_id, fake_org_install="1", redirect_uri="")
        # No redirect_uri and none configured: Slack has nowhere to send the browser.
        assert nowhere.status == 400
        response = await authorize(fake, first.team_id, fake_org_install="1")
        config = fake.oauth_config
        answer = await AsyncWebClient(base_url=fake.base_url).oauth_v2_access(
            client_id=config.client_id,
            client_secret=config.client_secret,
            code=query_of(response)["code"],
            redirect_uri=REDIRECT,
        )
        assert answer["team"] is None
        assert answer["enterprise"] == {"id": enterprise_id, "name": name}
        assert answer["is_enterprise_install"] is True
        assert answer["bot_user_id"] == first.bot_user_id
        org = client_for(fake, answer["access_token"])
        me = await org.auth_test()
        assert (me["team_id"], me["enterprise_id"], me["is_enterprise_install"]) == (
            enterprise_id,
            enterprise_id,
            True,
        )
        assert await refused(org.conversations_list()) == "missing_argument"
        assert await refused(org.conversations_list(team_id="T0ELSEWHERE")) == (
            "team_access_not_granted"
        )
        for ws in workspaces:
            listed = await org.conversations_list(team_id=ws.team_id)
            assert {c["id"] for c in listed["channels"]} <= set(ws.channels)
            assert listed["channels"]
        # A channel names its workspace: no team_id needed.
        channel = member_channel(third)
        assert (await org.conversations_history(channel=channel.id))["ok"]
        assert fake.team(third.team_id).calls_of("conversations.history")
        assert not fake.team(second.team_id).calls_of("conversations.history")
        # A workspace install inside an org-installed enterprise is refused.
        with pytest.raises(Exception, match="cannot_install_an_org_installed_app"):
            fake.install(second.team_id)
        # Events name the enterprise and the workspace, authorised by the org install.
        env = fake.team(second.team_id).emit_event({"type": "app_mention", "text": "hi"})
        assert env["team_id"] == second.team_id
        assert env["enterprise_id"] == enterprise_id
        assert env["authorizations"][0] == {
            "enterprise_id": enterprise_id,
            "team_id": second.team_id,
            "user_id": first.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": True,
        }
