"""The coalescing writer keeps the exactly-once rule: a vector-store failure in the middle of a
batch rolls the whole batch back (no checkpoint moves past rows missing from either store), the
error propagates, and running the same job again ends with exactly the ground truth."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import fakeslack
from db.records import MessageRecord
from fakeslack import FakeSlack
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest
from tests.engine.engine_harness import (
    checkpoints,
    chroma_ids,
    history_latests,
    make_gateway,
    open_stores,
    small_workspace,
    stored_rows,
)

DAYS = 7


class FailingOnce:
    """Delegates to a real store but raises on its `fail_at`-th upsert (1-based)."""

    def __init__(self, inner: Any, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("vector store down")
        await self.inner.upsert(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_engine_batch_failure_keeps_checkpoints_exact(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=23, messages=1500)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    # Small statements, so one batch spans several upserts and the failure lands inside one.
    config = EngineConfig(write_batch=10)
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        failing = FailingOnce(stores.vectors, fail_at=4)
        engine = BackfillEngine(make_gateway(fake), stores.sessions, failing, config)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="vector store down"):
            await engine.run(RunRequest(ws.team_id, job_run_id=5, days=DAYS, now=ws.now))
        committed = set(await stored_rows(stores, ws.team_id))
        assert committed < truth.must_store
        # Every committed row is in Chroma: the commit never precedes the vector upsert.
        assert len(await chroma_ids(stores, ws.team_id, committed)) == len(committed)
        first_calls = len(history_latests(fake))

        again = BackfillEngine(make_gateway(fake), stores.sessions, stores.vectors, config)
        result = await again.run(RunRequest(ws.team_id, job_run_id=5, days=DAYS, now=ws.now))
        assert result.error is None
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        found = await chroma_ids(stores, ws.team_id, truth.must_store | truth.must_not_store)
        assert found == {f"{c}:{ts}" for c, ts in truth.must_store}
        assert {cp.phase for cp in await checkpoints(stores, ws.team_id)} == {"done"}
        assert len(history_latests(fake)) > first_calls


async def test_engine_yields_to_the_process_requests_before_writes_and_calls(
    database_url: str, tmp_path: Path
) -> None:
    """While `yield_to` holds (the process is answering Slack's requests), the engine neither
    calls Slack nor writes; released, it finishes with exactly the ground truth."""
    ws = small_workspace(seed=29, messages=400)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    open_gate = asyncio.Event()
    waits = 0

    async def yield_to() -> None:
        nonlocal waits
        waits += 1
        await open_gate.wait()

    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        engine = BackfillEngine(
            make_gateway(fake, yield_to=yield_to),
            stores.sessions,
            stores.vectors,
            EngineConfig(),
            yield_to=yield_to,
        )
        run = asyncio.create_task(
            engine.run(RunRequest(ws.team_id, job_run_id=9, days=DAYS, now=ws.now))
        )
        for _ in range(50):
            await asyncio.sleep(0.01)
        assert not run.done()
        assert fake.calls == [] and await stored_rows(stores, ws.team_id) == {}
        assert waits >= 1
        open_gate.set()
        result = await asyncio.wait_for(run, timeout=120)
        assert result.error is None
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        # One wait per Slack call and one per written batch.
        assert waits > len(fake.calls)
