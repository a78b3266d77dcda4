"""Limits beyond Slack's documented minute: the leaky-bucket profile (`burst=N`, `--burst N`) that
tolerates only a burst of N calls per method and then the tier's rate, on top of the sliding
windows; and the control route that switches limits on and off."""

from __future__ import annotations

import asyncio
import random

import aiohttp
from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from fakeslack.ratelimit import LeakyBucketLimiter
from tests.fakeslack.helpers import member_channel
from tests.fakeslack.test_cli import _start
from tests.fakeslack.test_rate_limits import _burst

COMPRESSION = 60.0  # a "minute" lasts one real second


def test_leaky_bucket_burst_then_the_tier_rate() -> None:
    now = [0.0]
    bucket = LeakyBucketLimiter(10, clock=lambda: now[0])
    assert [bucket.try_acquire("k", 50) for _ in range(11)] == [0] * 10 + [2]  # 1.2 s, rounded up
    assert bucket.try_acquire("other", 50) == 0  # its own bucket
    now[0] = 1.2  # one call drained
    assert bucket.try_acquire("k", 50) == 0
    assert bucket.try_acquire("k", 50) == 2
    now[0] = 100.0
    assert [bucket.try_acquire("k", 50) for _ in range(11)] == [0] * 10 + [2]  # refilled
    bucket.reset()
    assert bucket.try_acquire("k", 50) == 0


def test_leaky_bucket_never_more_than_burst_plus_rate() -> None:
    """Over any span T, at most capacity + T x rate calls get through; rejected ones add nothing."""
    now = [0.0]
    bucket = LeakyBucketLimiter(10, time_compression=2.0, clock=lambda: now[0])  # 30 s minutes
    rng = random.Random(5)
    accepted: list[float] = []
    for _ in range(3000):
        now[0] += rng.choice([0.0, 0.0, 0.05, 0.3, 1.0])
        if bucket.try_acquire("k", 50) == 0:
            accepted.append(now[0])
    rate = 50 / 30.0
    for i, start in enumerate(accepted):
        for span in (0.0, 1.0, 5.0, 30.0):
            inside = sum(1 for t in accepted[i:] if t <= start + span)
            assert inside <= 10 + span * rate + 1e-9
    assert len(accepted) > 10 + 0.5 * rate * now[0]  # and it does let the tier's rate through


async def test_burst_profile_refuses_the_eleventh_call_then_drains(workspace: Workspace) -> None:
    ch = member_channel(workspace)
    async with FakeSlack(workspace, burst=10) as fake:  # real time: one call drains every 1.2 s
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)

        def history() -> object:
            return client.conversations_history(channel=ch.id, limit=1)

        assert await _burst(history, 11) == [200] * 10 + [429]
        assert fake.calls_of("conversations.history")[-1].status == 429
        # Another method has its own bucket; the refused call was not counted.
        assert await _burst(lambda: client.users_list(limit=1), 10) == [200] * 10
        assert fake.counters["conversations.history"]["ratelimited"] == 1
        await asyncio.sleep(1.3)  # one call drained
        assert await _burst(history, 2) == [200, 429]


async def test_burst_profile_keeps_the_sliding_minute(workspace: Workspace) -> None:
    """A bucket larger than the minute's allowance: the sliding window is what refuses."""
    async with FakeSlack(workspace, burst=100, time_compression=COMPRESSION) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        assert await _burst(lambda: client.conversations_list(limit=1), 21) == [200] * 20 + [429]


async def test_rate_limits_control_route(workspace: Workspace) -> None:
    async with FakeSlack(workspace, time_compression=COMPRESSION) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        async with aiohttp.ClientSession() as http:

            async def switch(body: object) -> tuple[int, dict[str, object]]:
                async with http.post(f"{fake.url}/_fake/rate_limits", json=body) as response:
                    return response.status, await response.json()

            assert (await switch({"enabled": False}))[0] == 200
            assert await _burst(lambda: client.conversations_list(limit=1), 30) == [200] * 30
            assert await switch({"enabled": True}) == (200, {"ok": True, "rate_limits": True})
            # Windows start empty: what passed while limits were off does not count.
            assert await _burst(lambda: client.conversations_list(limit=1), 21) == [200] * 20 + [
                429
            ]
            assert (await switch({"enabled": "yes"}))[0] == 400


def test_cli_burst_flag() -> None:
    proc, info = _start("--burst", "3")
    try:
        client = WebClient(token=info["bot_token"], base_url=info["url"])
        for _ in range(3):
            client.users_list(limit=1)
        try:
            client.users_list(limit=1)
        except Exception as exc:  # noqa: BLE001 - the SDK's SlackApiError, checked below
            assert exc.response.status_code == 429  # type: ignore[attr-defined]
            assert int(exc.response.headers["Retry-After"]) >= 1  # type: ignore[attr-defined]
        else:
            raise AssertionError("the 4th call of a burst of 3 went through")
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
