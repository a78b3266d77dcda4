"""Windows across runs: a wider manual run after a narrower one still stores every old reply of
threads already partly stored; an incremental run starts at each channel's high-water mark."""

from __future__ import annotations

from pathlib import Path

import fakeslack
from fakeslack import FakeSlack
from scheduler.backfill.engine import RunRequest
from tests.engine.engine_harness import (
    checkpoints,
    make_engine,
    make_gateway,
    open_stores,
    small_workspace,
    stored_rows,
)


async def test_engine_wider_window_after_narrow(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=17)
    narrow = fakeslack.ground_truth(ws, 2, now=ws.now)
    wide = fakeslack.ground_truth(ws, 9, now=ws.now)
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        engine = make_engine(make_gateway(fake), stores)
        await engine.run(RunRequest(ws.team_id, job_run_id=1, days=2, now=ws.now))
        assert set(await stored_rows(stores, ws.team_id)) == narrow.must_store
        await engine.run(RunRequest(ws.team_id, job_run_id=2, days=9, now=ws.now))
        assert set(await stored_rows(stores, ws.team_id)) == wide.must_store | narrow.must_store


async def test_engine_incremental_from_high_water(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=19)
    first_now = ws.now - 3 * 86400
    first = fakeslack.ground_truth(ws, 5, now=first_now)
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        engine = make_engine(make_gateway(fake), stores)
        await engine.run(RunRequest(ws.team_id, job_run_id=1, days=5, now=first_now))
        assert set(await stored_rows(stores, ws.team_id)) == first.must_store
        marks = {cp.channel_id: cp.high_water_ts for cp in await checkpoints(stores, ws.team_id)}
        assert all(mark == f"{first_now:.6f}" for mark in marks.values())

        fake.reset_recording()
        result = await engine.run(
            RunRequest(ws.team_id, job_run_id=2, days=30, incremental=True, now=ws.now)
        )
        assert result.error is None
        # The second run covers (first_now, now]: same as a 3-day window ending now.
        since = fakeslack.ground_truth(ws, 3, now=ws.now)
        assert set(await stored_rows(stores, ws.team_id)) == first.must_store | since.must_store
        oldest_asked = {c.args["oldest"] for c in fake.calls_of("conversations.history")}
        # Each channel's window walk starts at its mark (and the lookback scan 14 days below).
        assert f"{first_now:.6f}" in oldest_asked
