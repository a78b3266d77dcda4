"""A Tier-3 run against a time-compressed, rate-limited fakeslack (in its own process): wall time
divided by the floor set by the busiest method, max over methods of calls ÷ (rate per compressed
second). 1.0 is perfect use of Slack's budget; history and replies have separate budgets and run
concurrently, so the floor is the larger, not the sum.

The compression is chosen so that Slack's budget, not the local writer, is the binding constraint,
as against real Slack: at real Tier 3 `conversations.replies` allows 50 calls a minute (~10 kept
messages per call here, so ~8 messages/s to write) while the writer does hundreds per second. At
`COMPRESSION` = 10 a "minute" lasts 6 s and the writer needs ~90 messages/s, several times below
what it sustains unthrottled (see bench_ingest); at 60x it would need ~500/s, where the writer
(Chroma) binds and the figure would measure the writer, not the pacing. Real page sizes (200).
"""

from __future__ import annotations

import asyncio
import time

from _common import NOW, fake_get, fakeslack_process, make_engine, stores

from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

COMPRESSION = 5.0


async def main() -> None:
    profile = INTERNAL.scaled(60.0 / COMPRESSION)
    async with (
        fakeslack_process(
            seed=3,
            messages=8000,
            channels=10,
            users=40,
            days=30,
            rate_limits=True,
            time_compression=COMPRESSION,
        ) as info,
        stores() as s,
    ):
        engine = make_engine(info, s, profile)
        started = time.perf_counter()
        result = await engine.run(RunRequest(info.team_id, 1, days=14, now=NOW))
        wall = time.perf_counter() - started
        assert result.error is None, result
        counters = await fake_get(info, "counters")
    floor = max(
        n / (profile.rate(method) / profile.seconds_per_minute)
        for method, n in result.calls.items()
    )
    print(f"compression: {COMPRESSION:g}")
    print(f"messages_stored: {result.messages_written}")
    for method, n in sorted(result.calls.items()):
        print(f"calls_{method}: {n}")
    print(f"wall_s: {wall:.2f}")
    print(f"floor_s: {floor:.2f}")
    print(f"wall_to_floor_ratio: {wall / floor:.3f}")
    print(f"http_429: {sum(c.get('ratelimited', 0) for c in counters.values())}")


if __name__ == "__main__":
    asyncio.run(main())
