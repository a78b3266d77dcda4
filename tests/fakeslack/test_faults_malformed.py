"""Body faults, seen through the real slack_sdk client over HTTP: a malformed `ok: true` answer
(keys dropped or replaced, or a whole other body) for a method and a channel, N times or always; a
truncated JSON body; a non-JSON page. Also how the SDK surfaces each, which the gateway relies on."""

from __future__ import annotations

import json

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack
from tests.fakeslack.helpers import member_channel

HISTORY = "conversations.history"


async def test_malformed_history_for_one_channel_n_times(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    target = member_channel(fake.workspace)
    other = next(
        c
        for c in fake.workspace.channels.values()
        if c.id != target.id and not c.is_im and fake.workspace.bot_user_id in c.members
    )
    fault = fake.faults.malformed(HISTORY, channel=target.id, count=2)
    assert fault.body == {"ok": True}
    assert (await client.conversations_history(channel=other.id))["messages"] is not None
    for _ in range(2):
        answer = await client.conversations_history(channel=target.id)
        assert answer.data == {"ok": True}  # the SDK accepts it: `ok` is all it checks
    assert "messages" in (await client.conversations_history(channel=target.id)).data
    calls = fake.calls_of(HISTORY)
    assert [c.error for c in calls] == [None, "fake_malformed", "fake_malformed", None]
    assert [c.ok for c in calls] == [True, False, False, True]
    assert fake.faults.snapshot()["pending"] == []


async def test_malformed_drop_and_replace_keep_the_rest(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    target = member_channel(fake.workspace)
    fake.faults.malformed(HISTORY, drop=["response_metadata"], replace={"has_more": "yes"})
    data = (await client.conversations_history(channel=target.id, limit=5)).data
    assert isinstance(data, dict)
    assert data["has_more"] == "yes" and "response_metadata" not in data
    assert len(data["messages"]) == 5


async def test_malformed_always_until_cleared_and_only_on_success(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.faults.malformed("users.info", count=None, body={"ok": True, "user": "nobody"})
    # An ok:false answer is left alone and does not consume the fault.
    with pytest.raises(SlackApiError):
        await client.users_info(user="U0NOBODY99")
    user_id = next(iter(fake.workspace.users))
    for _ in range(3):
        assert (await client.users_info(user=user_id)).data == {"ok": True, "user": "nobody"}
    assert len(fake.faults.snapshot()["pending"]) == 1
    fake.faults.clear()
    assert isinstance((await client.users_info(user=user_id))["user"], dict)


async def test_truncated_json_surfaces_as_slack_api_error_with_raw_response(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    target = member_channel(fake.workspace)
    fake.faults.truncated(HISTORY, channel=target.id)
    with pytest.raises(SlackApiError) as info:
        await client.conversations_history(channel=target.id)
    # The SDK hands over aiohttp's own response (no parsed data) and says the body was not JSON.
    assert "non-JSON" in str(info.value)
    assert getattr(info.value.response, "status", None) == 200
    assert fake.calls_of(HISTORY)[-1].error == "fake_truncated"
    assert (await client.conversations_history(channel=target.id))["ok"] is True


async def test_non_json_page_over_raw_http(fake: FakeSlack) -> None:
    fake.faults.non_json("auth.test", count=1)
    async with aiohttp.ClientSession() as http:
        url = fake.base_url + "auth.test"
        headers = {"Authorization": f"Bearer {fake.bot_token}"}
        async with http.post(url, headers=headers) as response:
            assert response.status == 200 and response.content_type == "text/html"
            assert "Bad Gateway" in await response.text()
        async with http.post(url, headers=headers) as response:
            assert json.loads(await response.text())["ok"] is True


async def test_body_faults_armed_over_http(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as http:
        specs = [
            {"kind": "malformed", "method": HISTORY, "channel": "C1", "drop": ["messages"]},
            {"kind": "truncated", "method": "users.list", "count": 3},
            {"kind": "non_json", "method": "auth.test"},
        ]
        async with http.post(fake.url + "/_fake/faults", json=specs) as response:
            assert response.status == 200
    pending = fake.faults.snapshot()["pending"]
    assert [(f["kind"], f["method"], f["channel"], f["remaining"]) for f in pending] == [
        ("malformed", HISTORY, "C1", 1),
        ("truncated", "users.list", None, 3),
        ("non_json", "auth.test", None, 1),
    ]
    assert pending[0]["drop"] == ["messages"] and pending[0]["body"] is None
