"""A small run, "Run now" on a few channels: fewer calls per method than one minute of Tier 3
allows, against fakeslack (its own process) enforcing Tier limits as real-time sliding minutes
(no time compression), the engine on the internal profile with Slack's real 60 s minutes.

Figures, measured in the same run:
- `wall_s`: the engine's `run`, from the call to the result.
- `critical_path_latency_s`: the calls' own latency on the critical path, from the pacer's
  `busy_seconds` (each call from its start to Slack's answer; one call of a method in flight at a
  time): the setup calls (list, users, joins) one after the other, then the longer of the
  history and the replies chains (they run side by side). The floor for a run that waits for
  nothing; target wall ≤ 1.5× it.
- `old_even_spacing_s`: what the old even spacing cost, computed, not run (the old policy is
  gone): every method's calls 60 × 1.01 / rate seconds apart, methods side by side, so
  max over methods of (calls − 1) × interval. A lower bound of the old wall time (latency,
  setup and writes not counted).
- pacing waits and HTTP 429 (fakeslack's counters): both 0 expected.

The vector store is the counting no-op store (SQL is real, SQLite): writing ~300 messages into
embedded Chroma costs about half a second on its own (bench_ingest measures the writer), and
what this benchmark measures is whether Slack's budget is spent without waiting.
"""

from __future__ import annotations

import asyncio
import time

from _common import NOW, fake_get, fakeslack_process, make_engine, stores

from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

HISTORY, REPLIES = "conversations.history", "conversations.replies"


async def main() -> None:
    profile = INTERNAL  # real minutes, real page sizes (200)
    async with (
        fakeslack_process(
            seed=7, messages=1900, channels=9, users=24, days=30, rate_limits=True
        ) as info,
        stores(chroma=False) as s,
    ):
        engine = make_engine(info, s, profile)
        started = time.perf_counter()
        result = await engine.run(RunRequest(info.team_id, 1, days=7, now=NOW))
        wall = time.perf_counter() - started
        assert result.error is None, result
        counters = await fake_get(info, "counters")
    pacing = engine.gateways.for_workspace(info.team_id).pacer.stats()
    setup = sum(st.busy_seconds for m, st in pacing.items() if m not in (HISTORY, REPLIES))
    chains = max(pacing[m].busy_seconds for m in (HISTORY, REPLIES) if m in pacing)
    critical = setup + chains
    old = max(
        (n - 1) * profile.seconds_per_minute * 1.01 / profile.rate(m)
        for m, n in result.calls.items()
    )
    print("time_compression: 1 (real-time Tier-3 sliding minutes enforced by fakeslack)")
    print(f"messages_stored: {result.messages_collected}")
    for method, n in sorted(result.calls.items()):
        print(f"calls_{method}: {n} (allowance {profile.rate(method)} a minute)")
    print(f"wall_s: {wall:.3f}")
    print(f"critical_path_latency_s: {critical:.3f}")
    print(f"wall_to_latency_ratio: {wall / critical:.2f} (target <= 1.5)")
    print(f"old_even_spacing_s: {old:.1f} (computed: max over methods of (calls-1) x interval)")
    print(f"old_to_new_ratio: {old / wall:.1f}")
    print(f"pacing_waits: {sum(st.waits for st in pacing.values())}")
    print(
        f"pacing_wait_s: {engine.gateways.for_workspace(info.team_id).pacer.total_wait_seconds:.3f}"
    )
    print(f"http_429: {sum(c.get('ratelimited', 0) for c in counters.values())}")


if __name__ == "__main__":
    asyncio.run(main())
