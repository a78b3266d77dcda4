"""chat.*, conversations.open, views.* and response_url: what the app posts is recorded and checked
the way Slack checks it (Block Kit limits, trigger ids, view hashes)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from fakeslack import FakeSlack, Workspace
from tests.fakeslack.helpers import (
    channel_where,
    member_channel,
    refused,
    slack_refusal,
    small_modal,
)


def _admin(ws: Workspace) -> str:
    return next(u["id"] for u in ws.users.values() if u["is_admin"] and not u["deleted"])


MODAL = small_modal("Run now", "Start", "run_modal", "Backfill?")
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Home"}}]}


async def test_conversations_open_gives_a_stable_dm_and_post_lands_there(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    first = (await client.conversations_open(users=user))["channel"]["id"]
    second = await client.conversations_open(users=user)
    assert first.startswith("D") and second["channel"]["id"] == first and second["already_open"]
    by_user = await client.chat_postMessage(channel=user, text="Backfill finished: 120 messages")
    by_dm = await client.chat_postMessage(
        channel=first,
        text="Second report",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}],
    )
    assert by_user["channel"] == by_dm["channel"] == first
    assert by_user["ts"] < by_dm["ts"]
    assert [m["text"] for m in fake.dms(user)] == [
        "Backfill finished: 120 messages",
        "Second report",
    ]
    assert fake.dms(user)[1]["blocks"][0]["type"] == "section"
    deleted = next(u["id"] for u in workspace.users.values() if u["deleted"])
    assert await refused(client.conversations_open(users=deleted)) == "user_disabled"
    assert await refused(client.conversations_open(users="U0NOBODY000")) == "user_not_found"


async def test_chat_update_needs_the_dm_id(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    posted = await client.chat_postMessage(channel=user, text="progress 10%")
    err = await slack_refusal(
        client.chat_update(channel=user, ts=posted["ts"], text="progress 50%")
    )
    assert err["error"] == "channel_not_found"
    err = await slack_refusal(
        client.chat_update(channel=posted["channel"], ts="1000000000.000001", text="x")
    )
    assert err["error"] == "message_not_found"
    r = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="progress 50%")
    assert r["ts"] == posted["ts"] and r["text"] == "progress 50%"
    assert [m["text"] for m in fake.dms(user)] == ["progress 50%"]
    assert [p["kind"] for p in fake.posts] == ["message", "update"]


async def test_post_message_errors_and_block_limits(
    client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    out = channel_where(workspace, private=False, archived=False, member=False)
    assert (
        await refused(client.api_call("chat.postMessage", json={"text": "hi"}))
        == "channel_not_found"
    )
    assert await refused(client.chat_postMessage(channel=out.id, text="hi")) == "not_in_channel"
    with pytest.warns(UserWarning):  # slack_sdk warns about the missing text, Slack refuses it
        assert await refused(client.chat_postMessage(channel=ch.id)) == "no_text"
    too_many = [{"type": "divider"}] * 51
    assert (
        await refused(client.chat_postMessage(channel=ch.id, text="x", blocks=too_many))
        == "invalid_blocks"
    )
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "a" * 3001}}]
    assert (
        await refused(client.chat_postMessage(channel=ch.id, text="x", blocks=long_section))
        == "invalid_blocks"
    )
    assert await refused(client.chat_postMessage(channel=ch.id, text="a" * 40001)) == "msg_too_long"
    ok = await client.chat_postMessage(channel=ch.id, text="x", blocks=[{"type": "divider"}] * 50)
    assert ok["ok"] and ok["message"]["bot_id"] == workspace.bot_id


async def test_post_ephemeral_is_recorded(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    user = _admin(workspace)
    r = await client.chat_postEphemeral(channel=ch.id, user=user, text="Only you can see this")
    assert r["message_ts"]
    (eph,) = fake.ephemerals(user)
    assert eph["channel"] == ch.id and eph["text"] == "Only you can see this"
    assert (
        await refused(client.chat_postEphemeral(channel=ch.id, user="U0NOBODY000", text="x"))
        == "user_not_found"
    )


async def test_trigger_id_valid_once_and_for_three_seconds(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    trigger = fake.new_trigger_id(user)
    r = await client.views_open(trigger_id=trigger, view=MODAL)
    view = r["view"]
    assert view["id"].startswith("V") and view["hash"] and view["root_view_id"] == view["id"]
    assert fake.modal_stack(user)[0]["id"] == view["id"]
    assert (
        await refused(client.views_open(trigger_id=trigger, view=MODAL)) == "exchanged_trigger_id"
    )
    assert (
        await refused(client.views_open(trigger_id="123.456.abc", view=MODAL))
        == "invalid_trigger_id"
    )
    fake.view_store.trigger_ttl = 0.05
    late = fake.new_trigger_id(user)
    await asyncio.sleep(0.1)
    assert await refused(client.views_open(trigger_id=late, view=MODAL)) == "expired_trigger_id"


async def test_views_update_push_and_hash_conflict(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    opened = (
        await client.views_open(
            trigger_id=fake.new_trigger_id(user), view={**MODAL, "external_id": "run-1"}
        )
    )["view"]
    updated = (
        await client.views_update(
            view_id=opened["id"],
            hash=opened["hash"],
            view={**MODAL, "title": {"type": "plain_text", "text": "Started"}},
        )
    )["view"]
    assert updated["id"] == opened["id"] and updated["title"]["text"] == "Started"
    err = await slack_refusal(
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=MODAL)
    )
    assert err["error"] == "hash_conflict"
    by_ext = (await client.views_update(external_id="run-1", view=MODAL))["view"]
    assert by_ext["id"] == opened["id"]
    assert await refused(client.views_update(view_id="V0NOPE", view=MODAL)) == "not_found"
    pushed = (await client.views_push(trigger_id=fake.new_trigger_id(user), view=MODAL))["view"]
    assert pushed["root_view_id"] == opened["id"] and pushed["previous_view_id"] == opened["id"]
    assert [e["kind"] for e in fake.view_events] == ["open", "update", "update", "push"]


async def test_view_validation(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    err = await slack_refusal(
        client.views_open(trigger_id=fake.new_trigger_id(user), view=long_title)
    )
    assert err["error"] == "invalid_arguments"
    many = {**MODAL, "blocks": [{"type": "divider"}] * 101}
    err = await slack_refusal(client.views_open(trigger_id=fake.new_trigger_id(user), view=many))
    assert err["error"] == "invalid_blocks"
    ok = {**MODAL, "blocks": [{"type": "divider"}] * 100}
    assert (await client.views_open(trigger_id=fake.new_trigger_id(user), view=ok))["ok"]


async def test_views_publish_keeps_one_home_per_user(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    user = _admin(workspace)
    first = (await client.views_publish(user_id=user, view=HOME))["view"]
    second = (await client.views_publish(user_id=user, view={**HOME, "private_metadata": "v2"}))[
        "view"
    ]
    assert second["id"] == first["id"] and second["hash"] != first["hash"]
    assert fake.home_view(user)["private_metadata"] == "v2"
    err = await slack_refusal(client.views_publish(user_id=user, view=HOME, hash=first["hash"]))
    assert err["error"] == "hash_conflict"
    assert fake.home_view("U0NOBODY000") is None


async def test_response_url_posts_are_recorded(fake: FakeSlack, workspace: Workspace) -> None:
    user = _admin(workspace)
    url = fake.new_response_url(user_id=user, channel_id="C0SOMEWHERE")
    resp = await AsyncWebhookClient(url).send(text="Backfill queued", response_type="ephemeral")
    assert resp.status_code == 200
    (post,) = fake.response_posts
    assert post["user"] == user and post["body"]["text"] == "Backfill queued"


async def test_control_routes_over_http(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.auth_test()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{fake.url}/_fake/calls") as r:
            calls = await r.json()
        assert [c["method"] for c in calls] == ["auth.test"] and "token" not in calls[0]["args"]
        async with http.get(f"{fake.url}/_fake/counters") as r:
            assert (await r.json())["auth.test"]["ok"] == 1
        async with http.post(
            f"{fake.url}/_fake/faults", json={"kind": "api_error", "error": "fatal_error"}
        ) as r:
            assert r.status == 200
        assert await refused(client.auth_test()) == "fatal_error"
        async with http.post(f"{fake.url}/_fake/faults", json={"kind": "nonsense"}) as r:
            assert r.status == 400
        async with http.post(f"{fake.url}/_fake/reset_recording") as r:
            assert r.status == 200
        assert fake.calls == [] and fake.counters == {}
        async with http.post(f"{fake.url}/_fake/trigger_id", json={"user_id": "U1"}) as r:
            assert (await r.json())["trigger_id"]
        async with http.get(f"{fake.url}/_fake/ground_truth", params={"days": "7"}) as r:
            gt = await r.json()
        assert gt["must_store"] and gt["must_not_store"]
