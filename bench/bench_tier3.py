"""A large Tier-3 run (over ten minutes of Slack's budget for the busiest method) against a
time-compressed, rate-limited fakeslack (its own process, sliding minutes enforced): wall time
divided by the sliding-window bound, max over methods of floor((calls − 1) ÷ allowance) minutes:
a method may make its allowance at once, so its last call can start no earlier than that many
whole minutes after its first. 1.0 is perfect use of Slack's budget (the pacer keeps a 1 % margin
on each minute, so about 1.01 is the best it can show); history and replies have separate
budgets and run side by side, so the bound is the larger, not the sum. 0 HTTP 429 expected.

The compression is chosen so that Slack's budget, not the local writer, is the binding
constraint, as against real Slack: at real Tier 3 `conversations.replies` allows 50 calls a
minute (~10 kept messages per call here, so ~8 messages/s to write) while the writer does
hundreds per second. At `COMPRESSION` = 10 a "minute" lasts 6 s and the writer needs ~90
messages/s, several times below what it sustains unthrottled (see bench_ingest); at 60x it would
need ~500/s, where the writer (Chroma) binds and the figure would measure the writer, not the
pacing. Real page sizes (200), SQLite and embedded Chroma (hashing).
"""

from __future__ import annotations

import asyncio
import time

from _common import NOW, fake_get, fakeslack_process, make_engine, stores

from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

COMPRESSION = 10.0


async def main() -> None:
    profile = INTERNAL.scaled(60.0 / COMPRESSION)
    async with (
        fakeslack_process(
            seed=3,
            messages=16000,
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
    minute = profile.seconds_per_minute
    windows = {m: (n - 1) // profile.rate(m) for m, n in result.calls.items()}
    busiest = max(windows, key=lambda m: windows[m])
    bound = windows[busiest] * minute
    pacing = engine.gateways.for_workspace(info.team_id).pacer.stats()
    print(f"compression: {COMPRESSION:g} (a Slack minute lasts {minute:g} s)")
    print(f"messages_stored: {result.messages_written}")
    for method, n in sorted(result.calls.items()):
        print(f"calls_{method}: {n} (allowance {profile.rate(method)} a minute)")
    print(f"budget_minutes: {windows[busiest]} ({busiest})")
    print(f"wall_s: {wall:.2f}")
    print(f"window_bound_s: {bound:.2f}")
    print(f"wall_to_bound_ratio: {wall / bound:.3f} (target <= 1.05)")
    print(f"http_429: {sum(c.get('ratelimited', 0) for c in counters.values())}")
    print(f"methods_spaced_after_429: {sorted(m for m, st in pacing.items() if st.spaced)}")


if __name__ == "__main__":
    asyncio.run(main())
