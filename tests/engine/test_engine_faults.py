"""The engine under failure: 429 bursts, 5xx and connection resets change nothing stored; an
`invalid_auth` ends the run at once without retries; a channel deleted mid-run, and channels the
bot cannot read, are skipped with a reason while the run goes on."""

from __future__ import annotations

from pathlib import Path

import fakeslack
from scheduler.backfill.engine import EngineConfig
from tests.engine.engine_harness import (
    DAYS,
    chroma_ids,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)


async def test_engine_faults_same_stored_set(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=5)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        faults = fake.faults
        faults.ratelimit_burst(count=3, retry_after=1, method="conversations.history")
        faults.ratelimit_burst(count=2, retry_after=1, method="conversations.replies")
        faults.http_error(500, count=2, method="conversations.history")
        faults.http_error(503, count=2, method="conversations.replies")
        faults.connection_reset(count=2, method="conversations.history")
        faults.connection_reset(count=1, method="conversations.replies")
        faults.http_error(500, count=1, method="users.list")
        result = await run_engine(fake, stores, ws)
        assert result.error is None
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        assert len(await chroma_ids(stores, ws.team_id, truth.must_store)) == len(truth.must_store)
        assert fake.faults.snapshot()["pending"] == [], "some fault was never hit"
        counters = fake.counters
        assert counters["conversations.history"]["ratelimited"] >= 3
        # Every thread was read exactly once successfully despite the failed attempts.
        ok_replies = [c for c in fake.calls_of("conversations.replies") if c.ok]
        assert len(ok_replies) == len(truth.threads_with_replies)


async def test_engine_invalid_auth_ends_run_at_once(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=5)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        k = 12
        fake.faults.auth_failure("invalid_auth", from_call=k)
        result = await run_engine(fake, stores, ws)
        assert result.error == "invalid_auth" and result.error_kind == "permanent"
        refused = [c for c in fake.calls if c.error == "invalid_auth"]
        assert refused, "the fault never fired"
        # No retries: no refused request was sent twice.
        sent = [(c.method, tuple(sorted(c.args.items()))) for c in refused]
        assert len(sent) == len(set(sent))
        # At once: only requests already started when the first refusal arrived may follow it.
        assert len(fake.calls) - k < 8


async def test_engine_skips_unreadable_channels(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=9)
    all_ids = [c.id for c in ws.channels.values() if not c.is_im]
    in_scope = fakeslack.ground_truth(ws, DAYS, now=ws.now).channels_in_scope
    victim = in_scope[0]
    truth_others = fakeslack.ground_truth(
        ws, DAYS, now=ws.now, channel_ids=[c for c in all_ids if c != victim]
    )
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        # The victim disappears after its first history page was served.
        fake.faults.delete_channel(victim, after_history_calls=1)
        result = await run_engine(fake, stores, ws, channel_ids=all_ids)
        assert result.error is None
        skipped = {c: reason for c, _, reason in result.channels_skipped}
        assert victim in skipped and "channel_not_found" in skipped[victim]
        assert set(truth_others.channels_skipped) <= set(skipped)
        assert all(skipped.values())
        stored = set(await stored_rows(stores, ws.team_id))
        assert truth_others.must_store <= stored
        assert result.channels_processed == len(truth_others.channels_in_scope)


async def test_engine_auto_join_off_skips_public_non_members(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=9)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now, auto_join=False)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        result = await run_engine(fake, stores, ws, config=EngineConfig(auto_join=False))
        assert fake.calls_of("conversations.join") == []
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        assert any("auto-join" in reason for _, _, reason in result.channels_skipped)
