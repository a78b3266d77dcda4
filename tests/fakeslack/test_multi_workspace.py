"""Several workspaces in one fakeslack: each token reads its own workspace only, each workspace
has its own rate buckets and call log, its events carry its own team id, and the generator's
workspaces never share an id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from tests.fakeslack.helpers import member_channel, refused, small_modal
from tests.fakeslack.multi_helpers import client_for, three_workspaces


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def multi(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    async with FakeSlack.serving(workspaces, rate_limits=False) as server:
        yield server


def test_generated_workspaces_share_the_app_and_no_id() -> None:
    a, b, c = three_workspaces()
    assert len({a.team_id, b.team_id, c.team_id}) == 3
    assert (
        {a.app_id, a.signing_secret} == {b.app_id, b.signing_secret} == {c.app_id, c.signing_secret}
    )
    ids = [set(ws.users) | set(ws.channels) | {ws.team_id, ws.bot_id} for ws in (a, b, c)]
    assert not ids[0] & ids[1] and not ids[0] & ids[2] and not ids[1] & ids[2]
    assert all(ws.stats()["messages"] > 50 for ws in (a, b, c))
    # An enterprise's workspaces share the org-wide app's bot user, and only that.
    x, y, _ = three_workspaces(enterprise=True)
    assert x.bot_user_id == y.bot_user_id
    assert not (set(x.channels) & set(y.channels))


async def test_a_token_reads_its_own_workspace_and_never_another(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    tokens = {ws.team_id: multi.install(ws.team_id)["access_token"] for ws in workspaces}
    assert len(set(tokens.values())) == 3
    for ws in workspaces:
        client = client_for(multi, tokens[ws.team_id])
        me = await client.auth_test()
        assert (me["team_id"], me["user_id"], me["app_id"]) == (
            ws.team_id,
            ws.bot_user_id,
            workspaces[0].app_id,
        )
        listed = await client.conversations_list(types="public_channel,private_channel", limit=200)
        assert {c["id"] for c in listed["channels"]} <= set(ws.channels)
        assert listed["channels"]
        others = [o for o in workspaces if o is not ws]
        for other in others:
            channel = member_channel(other)
            assert (
                await refused(client.conversations_history(channel=channel.id))
                == "channel_not_found"
            )
            user = next(u for u in other.users if u != other.bot_user_id)
            assert await refused(client.users_info(user=user)) == "user_not_found"
        own = member_channel(ws)
        history = await client.conversations_history(channel=own.id, limit=5)
        assert history["messages"]


async def test_the_first_workspace_is_not_installed_until_oauth_says_so(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    first = workspaces[0]
    static = client_for(multi, first.bot_token)
    assert await refused(static.auth_test()) == "invalid_auth"
    with pytest.raises(LookupError):
        multi.token_for(first.team_id)
    multi.install(first.team_id)
    me = await client_for(multi, multi.token_for(first.team_id)).auth_test()
    assert me["team_id"] == first.team_id
    assert await refused(client_for(multi, "xoxb-never-issued").auth_test()) == "invalid_auth"


async def test_the_single_workspace_constructor_still_answers_its_static_token(
    workspaces: list[Workspace],
) -> None:
    async with FakeSlack(workspaces[0], rate_limits=False) as fake:
        me = await client_for(fake, fake.bot_token).auth_test()
        assert me["team_id"] == workspaces[0].team_id
        assert fake.token_for(fake.team_id) == fake.bot_token
        assert list(fake.teams) == [workspaces[0].team_id]


async def test_each_workspace_has_its_own_rate_buckets_and_call_log(
    workspaces: list[Workspace],
) -> None:
    async with FakeSlack.serving(workspaces, rate_limits=True) as fake:
        a, b, _ = workspaces
        busy = client_for(fake, fake.install(a.team_id)["access_token"])
        calm = client_for(fake, fake.install(b.team_id)["access_token"])
        busy.retry_handlers.clear()  # see the 429 rather than wait it out
        for _ in range(20):  # conversations.list: Tier 2, 20 a minute
            await busy.conversations_list(limit=1)
        assert await refused(busy.conversations_list(limit=1)) == "ratelimited"
        assert (await calm.conversations_list(limit=1))["ok"]
        team_a, team_b = fake.team(a.team_id), fake.team(b.team_id)
        assert team_a.counters["conversations.list"]["ratelimited"] == 1
        assert team_b.counters["conversations.list"] == {
            **team_b.counters["conversations.list"],
            "calls": 1,
            "ok": 1,
        }
        assert len(team_a.calls_of("conversations.list")) == 21
        assert all("token" not in c.args for c in team_a.calls)


async def test_posts_views_and_trigger_ids_stay_in_their_workspace(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    a, b, _ = workspaces
    client_a = client_for(multi, multi.install(a.team_id)["access_token"])
    client_b = client_for(multi, multi.install(b.team_id)["access_token"])
    person_a = next(u for u, d in a.users.items() if not d["is_bot"] and not d["deleted"])
    await client_a.chat_postMessage(channel=person_a, text="only in A")
    assert [m["text"] for m in multi.team(a.team_id).dms(person_a)] == ["only in A"]
    assert multi.team(b.team_id).posts == []
    assert (
        await refused(client_b.chat_postMessage(channel=person_a, text="x")) == "channel_not_found"
    )
    trigger = multi.team(a.team_id).new_trigger_id(person_a)
    modal = small_modal("Hi", "OK", "cb", "text")
    assert (
        await refused(client_b.views_open(trigger_id=trigger, view=modal)) == "invalid_trigger_id"
    )
    assert (await client_a.views_open(trigger_id=trigger, view=modal))["ok"]


async def test_each_workspaces_events_carry_its_team_and_bot(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    for ws in workspaces:
        team = multi.team(ws.team_id)
        team.post_message(member_channel(ws).id, f"hello from {ws.team_name}")
    envelopes = multi.event_envelopes
    assert [e["team_id"] for e in envelopes] == [ws.team_id for ws in workspaces]
    for env, ws in zip(envelopes, workspaces, strict=True):
        assert env["api_app_id"] == ws.app_id
        assert env["authorizations"][0]["team_id"] == ws.team_id
        assert env["authorizations"][0]["user_id"] == ws.bot_user_id
        assert env["event"]["channel"] in ws.channels
    assert len({e["event_id"] for e in envelopes}) == 3


async def test_control_routes_list_workspaces_and_install_them(
    multi: FakeSlack, workspaces: list[Workspace]
) -> None:
    a, b, _ = workspaces
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{multi.url}/_fake/oauth/install", json={"team_id": a.team_id}) as r:
            installed = await r.json()
        async with http.post(
            f"{multi.url}/_fake/oauth/code", json={"team_id": b.team_id, "scopes": ["chat:write"]}
        ) as r:
            code = (await r.json())["code"]
        async with http.post(f"{multi.url}/_fake/oauth/code", json={"team_id": "T0NONE"}) as r:
            assert r.status == 400
        async with http.get(f"{multi.url}/_fake/teams") as r:
            teams = await r.json()
    assert installed["team"]["id"] == a.team_id
    assert [(t["team_id"], t["installed"]) for t in teams] == [
        (a.team_id, True),
        (b.team_id, False),
        (workspaces[2].team_id, False),
    ]
    config = multi.oauth_config
    answer = await AsyncWebClient(base_url=multi.base_url).oauth_v2_access(
        client_id=config.client_id, client_secret=config.client_secret, code=code
    )
    assert answer["team"]["id"] == b.team_id and answer["scope"] == "chat:write"
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{multi.url}/_fake/calls", params={"team_id": b.team_id}) as r,
    ):
        assert await r.json() == []
    await client_for(multi, answer["access_token"]).auth_test()
    assert [c.method for c in multi.team(b.team_id).calls] == ["auth.test"]
