"""Uninstalling the app from one workspace: its tokens stop working (`token_revoked`), the
others' do not, and `tokens_revoked` and `app_uninstalled` reach the app as signed HTTP POSTs
(or over Socket Mode) with the workspace's own envelope; an org-wide uninstall speaks for the
enterprise; `apps.uninstall` and the control route do the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from tests.fakeslack.helpers import refused
from tests.fakeslack.multi_helpers import ENTERPRISE, client_for, receiving, three_workspaces

FAST: dict[str, Any] = {"retry_delays": (0.05, 0.05, 0.05)}


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def multi(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    async with FakeSlack.serving(workspaces, rate_limits=False) as server:
        yield server


async def test_uninstall_revokes_one_workspace_and_posts_its_events(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    a, b, c = workspaces
    tokens = {ws.team_id: multi.install(ws.team_id)["access_token"] for ws in workspaces}
    async with receiving(a.signing_secret) as receiver:
        multi.configure_events(mode="http", url=receiver.url, **FAST)
        envelopes = multi.uninstall(b.team_id)
        counters = await multi.events_settled(5)
    assert counters["acked"] == 2 and counters["failed"] == 0
    assert all(receiver.valid)
    assert [body["event"]["type"] for body in receiver.bodies] == [
        "tokens_revoked",
        "app_uninstalled",
    ]
    revoked, uninstalled = receiver.bodies
    assert revoked["event"]["tokens"] == {"oauth": [], "bot": [b.bot_user_id]}
    for body in receiver.bodies:
        assert body["type"] == "event_callback"
        assert body["team_id"] == b.team_id
        assert body["api_app_id"] == b.app_id
        assert body["event_id"].startswith("Ev")
        assert isinstance(body["event_time"], int)
        assert body["authorizations"][0]["team_id"] == b.team_id
        assert body["authorizations"][0]["user_id"] == b.bot_user_id
    assert [e["event_id"] for e in envelopes] == [revoked["event_id"], uninstalled["event_id"]]
    assert await refused(client_for(multi, tokens[b.team_id]).auth_test()) == "token_revoked"
    for ws in (a, c):
        assert (await client_for(multi, tokens[ws.team_id]).auth_test())["team_id"] == ws.team_id
    assert not multi.installed(b.team_id) and multi.installed(a.team_id)
    with pytest.raises(LookupError):
        multi.uninstall(b.team_id)  # nothing left to uninstall
    # A reinstall gives a new, working token.
    again = multi.install(b.team_id)["access_token"]
    assert again != tokens[b.team_id]
    assert (await client_for(multi, again).auth_test())["team_id"] == b.team_id


async def test_the_control_route_and_apps_uninstall(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    a, b, _ = workspaces
    token_a = multi.install(a.team_id)["access_token"]
    token_b = multi.install(b.team_id)["access_token"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{multi.url}/_fake/teams/{a.team_id}/uninstall", json={"events": ["app_uninstalled"]}
        ) as response,
    ):
        body = await response.json()
    assert body["ok"] is True and len(body["event_ids"]) == 1
    assert [e["event"]["type"] for e in multi.event_envelopes] == ["app_uninstalled"]
    assert await refused(client_for(multi, token_a).auth_test()) == "token_revoked"
    # apps.uninstall: the install's token plus the app's credentials.
    config = multi.oauth_config
    client_b = client_for(multi, token_b)
    wrong = client_b.apps_uninstall(client_id=config.client_id, client_secret="nope")
    assert await refused(wrong) == "bad_client_secret"
    answer = await AsyncWebClient(token=token_b, base_url=multi.base_url).apps_uninstall(
        client_id=config.client_id, client_secret=config.client_secret
    )
    assert answer["ok"] is True
    assert await refused(client_b.auth_test()) == "token_revoked"
    types = [(e["team_id"], e["event"]["type"]) for e in multi.event_envelopes]
    assert types[1:] == [(b.team_id, "tokens_revoked"), (b.team_id, "app_uninstalled")]


async def test_the_single_workspace_static_token_is_revoked_by_an_uninstall(
    workspaces: list[Workspace],
) -> None:
    async with FakeSlack(workspaces[0], rate_limits=False) as fake:
        client = client_for(fake, fake.bot_token)
        assert (await client.auth_test())["ok"]
        (revoked, uninstalled) = fake.uninstall(fake.team_id)
        assert revoked["team_id"] == uninstalled["team_id"] == fake.team_id
        assert await refused(client.auth_test()) == "token_revoked"


async def test_uninstall_events_over_socket_mode(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    team_id = workspaces[2].team_id
    multi.install(team_id)
    multi.configure_events(mode="socket", ack_timeout=1.0, **FAST)
    seen: list[dict[str, Any]] = []

    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        seen.append(req.payload)
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))

    client = SocketModeClient(
        app_token=multi.app_token, web_client=AsyncWebClient(base_url=multi.base_url)
    )
    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    try:
        await multi.wait_socket_connections(1)
        multi.uninstall(team_id)
        counters = await multi.events_settled(5)
    finally:
        await client.close()
    assert counters["acked"] == 2
    assert [(p["team_id"], p["event"]["type"]) for p in seen] == [
        (team_id, "tokens_revoked"),
        (team_id, "app_uninstalled"),
    ]


async def test_an_org_wide_uninstall_names_the_enterprise() -> None:
    workspaces = three_workspaces(enterprise=True)
    async with FakeSlack.serving(workspaces, enterprise=ENTERPRISE, rate_limits=False) as fake:
        enterprise_id, _ = ENTERPRISE
        token = fake.install(enterprise_id, org=True)["access_token"]
        envelopes = fake.uninstall(enterprise_id)
        for env in envelopes:
            assert env["team_id"] is None
            assert env["enterprise_id"] == enterprise_id
            assert env["authorizations"][0]["is_enterprise_install"] is True
            assert env["authorizations"][0]["enterprise_id"] == enterprise_id
        assert await refused(client_for(fake, token).auth_test()) == "token_revoked"
        # Its workspaces may now be installed one by one.
        assert fake.install(workspaces[1].team_id)["team"]["id"] == workspaces[1].team_id
