"""Rate limits: sliding windows per (token, team, method), tiers, chat.postMessage per channel, the
non_marketplace profile, Retry-After and slack_sdk's retry handler; time_compression = speed."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from fakeslack.ratelimit import SlidingWindowLimiter
from tests.fakeslack.helpers import member_channel

COMPRESSION = 60.0  # a "minute" lasts one real second


async def _burst(coro_factory, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Status of n sequential calls (200 or 429)."""
    out = []
    for _ in range(n):
        try:
            await coro_factory()
            out.append(200)
        except SlackApiError as exc:
            assert exc.response.status_code == 429, exc.response.data
            assert exc.response.data == {"ok": False, "error": "ratelimited"}
            retry_after = exc.response.headers["Retry-After"]
            assert retry_after.isdigit() and int(retry_after) >= 1
            out.append(429)
    return out


def test_sliding_window_log_never_exceeds_n_in_any_window() -> None:
    now = [0.0]
    limiter = SlidingWindowLimiter(time_compression=1.0, clock=lambda: now[0])
    accepted: list[float] = []
    for step in range(600):
        now[0] = step * 0.37
        if limiter.try_acquire("k", 20) == 0:
            accepted.append(now[0])
    for i, t in enumerate(accepted):
        in_window = [a for a in accepted[i:] if a < t + 60]
        assert len(in_window) <= 20
    # Rejections are not logged: after the window passes, a full quota is available again.
    now[0] += 61
    assert all(limiter.try_acquire("k", 20) == 0 for _ in range(20))
    assert limiter.try_acquire("k", 20) == 60


async def test_tier_windows_hold_and_methods_have_separate_buckets(workspace: Workspace) -> None:
    async with FakeSlack(workspace, time_compression=COMPRESSION) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        t0 = time.monotonic()
        assert (
            await _burst(lambda: client.conversations_list(limit=1), 23) == [200] * 20 + [429] * 3
        )
        # users.list is Tier 2 too, but has its own bucket; users.info is Tier 4 (100/min).
        assert await _burst(lambda: client.users_list(limit=1), 20) == [200] * 20
        assert await _burst(lambda: client.users_info(user=workspace.bot_user_id), 101) == [
            200
        ] * 100 + [429]
        assert time.monotonic() - t0 < 1.0, "the burst must fit in one compressed minute"
        assert fake.counters["conversations.list"]["ratelimited"] == 3
        assert fake.counters["conversations.list"]["ok"] == 20
        await asyncio.sleep(1.05)
        # The window slid past: allowed again; the three 429s did not count.
        assert await _burst(lambda: client.conversations_list(limit=1), 21) == [200] * 20 + [429]


async def test_tier3_history_is_50_per_minute(workspace: Workspace) -> None:
    ch = member_channel(workspace)
    async with FakeSlack(workspace, time_compression=COMPRESSION) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        statuses = await _burst(lambda: client.conversations_history(channel=ch.id, limit=1), 51)
        assert statuses == [200] * 50 + [429]


async def test_other_token_has_its_own_bucket(workspace: Workspace) -> None:
    async with FakeSlack(workspace, time_compression=COMPRESSION) as fake:
        fake.add_token("xoxb-second-app")
        a = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        b = AsyncWebClient(token="xoxb-second-app", base_url=fake.base_url)
        assert await _burst(lambda: a.conversations_list(limit=1), 21) == [200] * 20 + [429]
        assert await _burst(lambda: b.conversations_list(limit=1), 1) == [200]


async def test_retry_after_is_read_by_the_sdk_retry_handler(workspace: Workspace) -> None:
    async with FakeSlack(workspace, time_compression=COMPRESSION) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
        for _ in range(20):
            await client.conversations_list(limit=1)
        t0 = time.monotonic()
        r = await client.conversations_list(limit=1)  # 429 once, then the handler waits and retries
        assert r["ok"] and time.monotonic() - t0 >= 0.5
        assert fake.counters["conversations.list"]["ratelimited"] >= 1
        assert fake.counters["conversations.list"]["ok"] == 21


async def test_post_message_is_one_per_second_per_channel(workspace: Workspace) -> None:
    user_a, user_b = [
        u["id"] for u in workspace.users.values() if not u["is_bot"] and not u["deleted"]
    ][:2]
    async with FakeSlack(workspace) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        await client.chat_postMessage(channel=user_a, text="first")
        with pytest.raises(SlackApiError) as info:
            await client.chat_postMessage(channel=user_a, text="too soon")
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"] == "1"
        # Another channel is another bucket; the DM id and the user id are the same channel.
        await client.chat_postMessage(channel=user_b, text="other channel")
        dm = (await client.conversations_open(users=user_a))["channel"]["id"]
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel=dm, text="still too soon")
        await asyncio.sleep(1.05)
        assert (await client.chat_postMessage(channel=dm, text="later"))["ok"]


async def test_non_marketplace_profile_one_per_minute_and_pages_of_15(workspace: Workspace) -> None:
    ch = member_channel(workspace)
    async with FakeSlack(
        workspace, profile="non_marketplace", time_compression=COMPRESSION
    ) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        r = await client.conversations_history(channel=ch.id)
        assert len(r["messages"]) == 15 and r["has_more"]
        statuses = await _burst(lambda: client.conversations_history(channel=ch.id, limit=200), 1)
        assert statuses == [429]
        parent_ts = max(ch.replies, key=lambda t: len(ch.replies[t]))
        r = await client.conversations_replies(channel=ch.id, ts=parent_ts, limit=200)  # own bucket
        assert len(r["messages"]) <= 15
        await asyncio.sleep(1.05)
        r = await client.conversations_history(channel=ch.id, limit=200)  # larger limit is capped
        assert len(r["messages"]) == 15


async def test_rate_limits_can_be_disabled(workspace: Workspace) -> None:
    async with FakeSlack(workspace, rate_limits=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        assert await _burst(lambda: client.conversations_list(limit=1), 60) == [200] * 60
