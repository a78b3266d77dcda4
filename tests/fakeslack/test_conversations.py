"""conversations.* and users.* through the real slack_sdk AsyncWebClient: pagination, windows,
threads, membership and the error strings Slack uses."""

from __future__ import annotations

import base64
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import Channel, FakeSlack, Workspace
from fakeslack.workspace import ts_key
from tests.fakeslack.helpers import channel_where, member_channel, refused, slack_refusal


async def test_auth_test_identifies_bot_and_team(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    r = await client.auth_test()
    assert r["team_id"] == workspace.team_id and workspace.team_id.startswith("T0FAKE")
    assert r["user_id"] == workspace.bot_user_id and r["bot_id"] == workspace.bot_id


async def test_history_paginator_walks_every_top_level_message_newest_first(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    seen: list[dict] = []
    pages = 0
    async for page in await client.conversations_history(channel=ch.id, limit=37):
        pages += 1
        assert len(page["messages"]) <= 37
        seen += page["messages"]
    expected = sorted(ch.top.keys, reverse=True)
    assert [ts_key(m["ts"]) for m in seen] == expected
    assert pages == -(-len(expected) // 37)
    # Replies are not in history, except broadcasts.
    for m in seen:
        if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
            assert m["subtype"] == "thread_broadcast"


async def test_history_parents_carry_thread_metadata(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    parent_ts = next(ts for ts, rs in ch.replies.items() if len(rs) >= 2)
    r = await client.conversations_history(channel=ch.id, latest=parent_ts, inclusive=True, limit=1)
    (parent,) = r["messages"]
    replies = ch.thread_replies(parent_ts)
    assert parent["ts"] == parent["thread_ts"] == parent_ts
    assert parent["reply_count"] == len(replies)
    assert parent["latest_reply"] == replies[-1]["ts"]
    users = list(dict.fromkeys(m["user"] for m in replies))
    assert parent["reply_users"] == users and parent["reply_users_count"] == len(users)


async def test_history_window_is_exclusive_unless_inclusive(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    keys = ch.top.keys
    oldest, latest = ch.top.msgs[10]["ts"], ch.top.msgs[20]["ts"]
    r = await client.conversations_history(channel=ch.id, oldest=oldest, latest=latest)
    assert [m["ts"] for m in r["messages"]] == [ch.top.msgs[i]["ts"] for i in range(19, 10, -1)]
    r = await client.conversations_history(
        channel=ch.id, oldest=oldest, latest=latest, inclusive=True
    )
    assert len(r["messages"]) == 11 and r["messages"][0]["ts"] == latest
    assert r["messages"][-1]["ts"] == oldest
    # A float-ish oldest with fewer decimals is accepted too.
    r = await client.conversations_history(channel=ch.id, oldest=str(keys[-1] // 1_000_000 + 1))
    assert r["messages"] == [] and r["has_more"] is False


async def test_history_default_limit_is_100(client: AsyncWebClient, workspace: Workspace) -> None:
    ch = member_channel(workspace)
    assert len(ch.top) > 100
    r = await client.conversations_history(channel=ch.id)
    assert len(r["messages"]) == 100 and r["has_more"] is True
    assert r["response_metadata"]["next_cursor"]


async def test_tampered_cursor_is_invalid_cursor(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    r = await client.conversations_history(channel=ch.id, limit=5)
    cursor = r["response_metadata"]["next_cursor"]
    raw = base64.b64decode(cursor).decode()
    kind, ts, sig = raw.split(":")
    forged = base64.b64encode(f"{kind}:{ts[:-1]}9:{sig}".encode()).decode()
    for bad in (forged, "not-base64!!", cursor[:-4]):
        assert (
            await refused(client.conversations_history(channel=ch.id, cursor=bad))
            == "invalid_cursor"
        )
    # A cursor from one channel does not work on another.
    other = member_channel(workspace, private=True)
    err = await slack_refusal(client.conversations_history(channel=other.id, cursor=cursor))
    assert err["error"] == "invalid_cursor"


def longest_thread(ws: Workspace) -> tuple[Channel, str, list[dict[str, Any]]]:
    """The busiest member channel, its thread with the most replies, and those replies."""
    ch = member_channel(ws)
    parent_ts = max(ch.replies, key=lambda t: len(ch.replies[t]))
    return ch, parent_ts, ch.thread_replies(parent_ts)


async def test_replies_parent_first_then_oldest_first_with_pagination(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch, parent_ts, replies = longest_thread(workspace)
    assert len(replies) >= 3
    got: list[dict] = []
    async for page in await client.conversations_replies(channel=ch.id, ts=parent_ts, limit=2):
        got += page["messages"]
    assert got[0]["ts"] == parent_ts and got[0]["reply_count"] == len(replies)
    assert [m["ts"] for m in got[1:]] == [m["ts"] for m in replies]
    assert all(m["thread_ts"] == parent_ts for m in got)
    # Any message of the thread finds the whole thread.
    r = await client.conversations_replies(channel=ch.id, ts=replies[-1]["ts"])
    assert r["messages"][0]["ts"] == parent_ts and len(r["messages"]) == len(replies) + 1


async def test_replies_honour_oldest_but_keep_the_parent(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch, parent_ts, replies = longest_thread(workspace)
    r = await client.conversations_replies(channel=ch.id, ts=parent_ts, oldest=replies[0]["ts"])
    assert r["messages"][0]["ts"] == parent_ts
    assert [m["ts"] for m in r["messages"][1:]] == [m["ts"] for m in replies[1:]]
    r = await client.conversations_replies(
        channel=ch.id, ts=parent_ts, oldest=replies[0]["ts"], inclusive=True
    )
    assert len(r["messages"]) == len(replies) + 1


async def test_replies_errors(client: AsyncWebClient, workspace: Workspace) -> None:
    ch = member_channel(workspace)
    assert (
        await refused(client.conversations_replies(channel=ch.id, ts="1000000000.000001"))
        == "thread_not_found"
    )
    join = next(m for m in ch.by_ts.values() if m.get("subtype") == "channel_join")
    assert (
        await refused(client.conversations_replies(channel=ch.id, ts=join["ts"]))
        == "thread_not_found"
    )
    lone = next(m for m in ch.top.msgs if m["ts"] not in ch.replies and not m.get("subtype"))
    r = await client.conversations_replies(channel=ch.id, ts=lone["ts"])
    assert [m["ts"] for m in r["messages"]] == [lone["ts"]]


async def test_membership_and_channel_errors(client: AsyncWebClient, workspace: Workspace) -> None:
    public_out = channel_where(workspace, private=False, archived=False, member=False)
    private_out = channel_where(workspace, private=True, member=False)
    archived = channel_where(workspace, archived=True, member=False)
    assert await refused(client.conversations_history(channel=public_out.id)) == "not_in_channel"
    assert (
        await refused(client.conversations_history(channel=private_out.id)) == "channel_not_found"
    )
    assert await refused(client.conversations_history(channel="C0NOPE00000")) == "channel_not_found"
    assert (
        await refused(client.api_call("conversations.history", http_verb="GET", params={}))
        == "channel_not_found"
    )
    assert await refused(client.conversations_info(channel=private_out.id)) == "channel_not_found"
    assert (
        await refused(client.conversations_join(channel=private_out.id))
        == "method_not_supported_for_channel_type"
    )
    assert await refused(client.conversations_join(channel=archived.id)) == "is_archived"
    # Join makes history readable and posts a channel_join message.
    r = await client.conversations_join(channel=public_out.id)
    assert r["channel"]["is_member"] is True
    history = await client.conversations_history(channel=public_out.id, limit=1)
    assert history["messages"][0]["subtype"] == "channel_join"
    again = await client.conversations_join(channel=public_out.id)
    assert again["warning"] == "already_in_channel"


async def test_list_shows_public_and_member_private_with_types_and_archived(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    seen: list[dict] = []
    async for page in await client.conversations_list(
        types="public_channel,private_channel", limit=3
    ):
        assert len(page["channels"]) <= 3
        seen += page["channels"]
    expected = {
        c.id
        for c in workspace.channels.values()
        if not c.is_private or workspace.bot_user_id in c.members
    }
    assert {c["id"] for c in seen} == expected and len(seen) == len(expected)
    by_id = {c["id"]: c for c in seen}
    for cid, c in by_id.items():
        assert c["is_member"] == (workspace.bot_user_id in workspace.channels[cid].members)
    public_only = (await client.conversations_list(limit=999))["channels"]
    assert all(not c["is_private"] for c in public_only)
    live = (
        await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True
        )
    )["channels"]
    assert live and all(not c["is_archived"] for c in live)
    assert await refused(client.conversations_list(types="bogus")) == "invalid_types"


async def test_missing_scope_reports_needed_and_provided(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    fake.set_scopes(fake.scopes - {"groups:history", "users:read"})
    private = member_channel(workspace, private=True)
    err = await slack_refusal(client.conversations_history(channel=private.id))
    assert err["error"] == "missing_scope" and err["needed"] == "groups:history"
    assert "channels:history" in err["provided"].split(",")
    err = await slack_refusal(client.users_info(user=workspace.bot_user_id))
    assert err["needed"] == "users:read"
    # The public channel still works with channels:history.
    assert (await client.conversations_history(channel=member_channel(workspace).id, limit=1))["ok"]


async def test_auth_errors(fake: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-wrong", base_url=fake.base_url)
    assert await refused(bad.auth_test()) == "invalid_auth"
    none = AsyncWebClient(base_url=fake.base_url)
    assert await refused(none.auth_test()) == "not_authed"
    # The token may also come as a form field.
    form = AsyncWebClient(base_url=fake.base_url)
    r = await form.api_call("auth.test", data={"token": fake.bot_token})
    assert r["ok"] and r["team_id"] == fake.team_id
    last = fake.calls[-1]
    assert "token" not in last.args and last.method == "auth.test"
    assert last.status == 200 and last.ok and last.error is None and last.t_wall > 1e9
    first = fake.calls[0]
    assert first.error == "invalid_auth" and first.t_mono <= last.t_mono
    assert fake.counters["auth.test"] == {
        "calls": 3,
        "ok": 1,
        "errors": 2,
        "ratelimited": 0,
        "http_errors": 0,
        "resets": 0,
    }


async def test_users_info_and_list(client: AsyncWebClient, workspace: Workspace) -> None:
    owner = next(u for u in workspace.users.values() if u["is_primary_owner"])
    r = await client.users_info(user=owner["id"])
    assert r["user"]["is_owner"] and r["user"]["is_admin"] and r["user"]["tz"]
    assert await refused(client.users_info(user="U0NOBODY000")) == "user_not_found"
    members: list[dict] = []
    async for page in await client.users_list(limit=7):
        members += page["members"]
    assert [m["id"] for m in members] == list(workspace.users)
    assert any(m["deleted"] for m in members) and any(m["is_bot"] for m in members)
    assert any(m["profile"]["display_name"] == "" for m in members if not m["is_bot"])


async def test_late_reply_added_between_runs_is_visible(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    old_parent = ch.top.msgs[0]
    reply = workspace.add_reply(ch.id, old_parent["ts"], "A late answer to a very old question")
    r = await client.conversations_history(
        channel=ch.id, latest=old_parent["ts"], inclusive=True, limit=1
    )
    assert r["messages"][0]["latest_reply"] == reply["ts"]
    new = workspace.add_message(ch.id, "Brand new message after the first run")
    r = await client.conversations_history(channel=ch.id, limit=1)
    assert r["messages"][0]["ts"] == new["ts"]
