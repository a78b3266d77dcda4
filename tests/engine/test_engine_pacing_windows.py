"""The engine against fakeslack over HTTP with the real slack_sdk client, Slack's limits enforced:
a run needing fewer calls than a minute's allowance spends it at once (no pacing wait, no 429,
counted by the pacer and by fakeslack, not by a stopwatch), and against a Slack that tolerates
only a burst of 10 (a leaky bucket) the run still stores everything with one 429 per method at
most, after which that method is evenly spaced."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from pathlib import Path

import pytest

import fakeslack
from fakeslack import FakeSlack
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL
from tests.engine.engine_harness import NOW, make_engine, make_gateway, open_stores, stored_rows
from tests.engine.test_gateway import MAIN, PARENT_TS, build_workspace

DAYS = 7
HISTORY = "conversations.history"
REPLIES = "conversations.replies"
# 9 channels, ~1,900 messages over 30 days: a 7-day run needs 43 history calls (pages of 17) and
# 44 replies calls, both under Tier 3's 50 a minute.
PAGE = 17


def workspace() -> fakeslack.Workspace:
    return fakeslack.generate(7, users=24, channels=9, messages=1900, days=30, now=NOW)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/backfill.db"  # pacing does not depend on the database


async def test_engine_small_run_spends_the_window_without_waiting(
    database_url: str, tmp_path: Path
) -> None:
    ws = workspace()
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    profile = dataclasses.replace(INTERNAL, history_page_size=PAGE)  # real 60 s minutes
    async with (
        FakeSlack(ws) as fake,  # Tier limits enforced as sliding minutes, no time compression
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        assert fake.rate_limits and fake.time_compression == 1.0
        gateway = make_gateway(fake, profile)
        result = await make_engine(gateway, stores).run(
            RunRequest(ws.team_id, job_run_id=1, days=DAYS, now=ws.now)
        )
        assert result.error is None, result
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        assert 35 <= result.calls[HISTORY] <= 50 and 35 <= result.calls[REPLIES] <= 50
        pacing = gateway.pacer.stats()
        assert {m: (s.waits, s.wait_seconds) for m, s in pacing.items()} == {
            m: (0, 0.0) for m in pacing
        }
        assert not any(s.spaced for s in pacing.values())
        assert {m: c["ratelimited"] for m, c in fake.counters.items()} == {
            m: 0 for m in fake.counters
        }
        assert gateway.stats().rate_limited == 0


async def test_engine_burst_limited_slack_one_429_per_method(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = workspace()
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    # A "minute" of 6 s: the bucket drains one call every 0.12 s.
    profile = dataclasses.replace(INTERNAL.scaled(6.0), history_page_size=PAGE)
    caplog.set_level(logging.WARNING, logger="scheduler.backfill.pacing")
    async with (
        FakeSlack(ws, burst=10, time_compression=10.0) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        gateway = make_gateway(fake, profile)
        result = await make_engine(gateway, stores).run(
            RunRequest(ws.team_id, job_run_id=1, days=DAYS, now=ws.now)
        )
        assert result.error is None, result
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        limited = {m: c["ratelimited"] for m, c in fake.counters.items()}
        assert all(n <= 1 for n in limited.values()), limited
        assert limited[HISTORY] == 1  # 43 pages back to back: the bucket does bite
        pacing = gateway.pacer.stats()
        assert {m for m, s in pacing.items() if s.spaced} == {m for m, n in limited.items() if n}
        warnings = [r.getMessage() for r in caplog.records if r.name.endswith("pacing")]
        warned = [m for w in warnings for m in pacing if m in w]
        assert sorted(warned) == sorted(m for m, n in limited.items() if n)  # once per method
        assert all(fake.bot_token not in w for w in warnings)


async def test_gateway_concurrent_replies_get_one_429_from_a_burst_limited_slack() -> None:
    """30 threads' replies asked at once: one call in flight per method, so only the call that
    met the full bucket is refused; the rest wait out Retry-After and go evenly spaced."""
    ws = build_workspace()
    async with FakeSlack(ws, burst=10, time_compression=30.0) as fake:
        gateway = make_gateway(fake, dataclasses.replace(INTERNAL.scaled(2.0)))
        answers = await asyncio.gather(*(gateway.replies(MAIN, PARENT_TS) for _ in range(30)))
        assert all(len(replies) == 9 for replies in answers)
        assert fake.counters[REPLIES]["ratelimited"] == 1
        assert fake.counters[REPLIES]["ok"] == 30
        stats = gateway.pacer.stats()[REPLIES]
        assert stats.spaced and stats.rate_limited == 1
        calls = fake.calls_of(REPLIES)
        # Never two calls of one method in flight at once.
        for a, b in itertools.pairwise(calls):
            assert b.t_mono >= a.t_mono + a.duration
