"""A Tier-3 run against a time-compressed, rate-limited fakeslack: wall time divided by the floor
set by the busiest method (max over methods of calls ÷ rate per compressed second). 1.0 is perfect
use of the budget; history and replies run concurrently, so the floor is the larger, not the sum."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from _common import NOW, engine_for

import fakeslack
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

COMPRESSION = 60.0


async def main() -> None:
    ws = fakeslack.generate(3, users=40, channels=10, messages=6000, days=30, now=NOW)
    profile = dataclasses.replace(INTERNAL.scaled(60.0 / COMPRESSION), history_page_size=50)
    async with fakeslack.FakeSlack(ws, time_compression=COMPRESSION) as fake:
        async with engine_for(fake, profile) as (engine, _):
            started = time.perf_counter()
            result = await engine.run(RunRequest(ws.team_id, 1, days=14, now=NOW))
            wall = time.perf_counter() - started
        floor = max(
            n / (profile.rate(method) / profile.seconds_per_minute)
            for method, n in result.calls.items()
        )
        ratelimited = sum(c["ratelimited"] for c in fake.counters.values())
    print(f"history_calls: {result.calls.get('conversations.history', 0)}")
    print(f"replies_calls: {result.calls.get('conversations.replies', 0)}")
    print(f"wall_s: {wall:.2f}")
    print(f"floor_s: {floor:.2f}")
    print(f"wall_to_floor_ratio: {wall / floor:.2f}")
    print(f"http_429: {ratelimited}")


if __name__ == "__main__":
    asyncio.run(main())
