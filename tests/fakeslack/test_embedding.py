"""The embedding API: `async with` on the test's loop, a background thread with its own loop for
sync code, and workspace changes made between runs."""

from __future__ import annotations

import asyncio
import socket

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from tests.fakeslack.helpers import member_channel


def test_thread_mode_serves_sync_clients(workspace: Workspace) -> None:
    with FakeSlack(workspace, rate_limits=False) as fake:
        assert fake.base_url.endswith("/api/") and fake.port > 0
        port = fake.port
        client = WebClient(token=fake.bot_token, base_url=fake.base_url)
        assert client.auth_test()["team_id"] == fake.team_id == workspace.team_id
        ch = member_channel(workspace)
        fake.faults.api_error("internal_error", count=1, method="conversations.history")
        with pytest.raises(SlackApiError) as info:
            client.conversations_history(channel=ch.id)
        assert info.value.response["error"] == "internal_error"
        workspace.add_message(ch.id, "posted from the test thread while serving")
        assert client.conversations_history(channel=ch.id, limit=1)["messages"][0][
            "text"
        ].startswith("posted")
    # Stopped: the port no longer accepts connections.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def test_thread_mode_from_another_loop(workspace: Workspace) -> None:
    fake = FakeSlack(workspace).start_in_thread()
    try:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        results = await asyncio.gather(
            *(client.users_info(user=workspace.bot_user_id) for _ in range(10))
        )
        assert all(r["ok"] for r in results)
        assert fake.counters["users.info"]["calls"] == 10
    finally:
        fake.stop_thread()


async def test_two_servers_side_by_side(workspace: Workspace) -> None:
    async with FakeSlack(workspace) as a, FakeSlack(workspace) as b:
        assert a.port != b.port
        for fake in (a, b):
            client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
            assert (await client.auth_test())["ok"]
        assert len(a.calls) == len(b.calls) == 1
