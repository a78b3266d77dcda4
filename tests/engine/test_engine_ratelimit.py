"""A time-compressed, rate-limited run (fakeslack `time_compression=60`, the gateway paced by the
internal profile scaled to one-second "minutes") provokes no 429 and never exceeds any method's
tier in any window, while still storing exactly the ground truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import fakeslack
from scheduler.backfill.profiles import INTERNAL
from tests.engine.engine_harness import (
    DAYS,
    make_gateway,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)


async def test_engine_ratelimited_run_never_429s(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=13, messages=1500)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    profile = dataclasses.replace(INTERNAL.scaled(1.0), history_page_size=10)
    async with slack_and_stores(
        ws, database_url, tmp_path, rate_limits=True, time_compression=60
    ) as (fake, stores):
        result = await run_engine(fake, stores, ws, make_gateway(fake, profile))
        assert result.error is None, result
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        assert all(c["ratelimited"] == 0 for c in fake.counters.values()), fake.counters
        assert not any(c.status == 429 for c in fake.calls)
        window = 60.0 / 60  # one Slack minute at 60x compression, in server seconds
        by_method: dict[str, list[float]] = {}
        for call in fake.calls:
            by_method.setdefault(call.method, []).append(call.t_mono)
        assert len(by_method["conversations.history"]) > INTERNAL.rate("conversations.history")
        for method, starts in by_method.items():
            rate = INTERNAL.rate(method)
            starts.sort()
            for i in range(len(starts) - rate):
                assert starts[i + rate] - starts[i] >= window, f"{method} beat its tier"
