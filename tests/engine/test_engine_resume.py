"""Exactly-once resume: a run cancelled mid-way, or a runner process SIGKILLed mid-way, then run
again with the same job id ends with exactly the ground truth, and no committed page is fetched
again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import fakeslack
from db.records import Progress
from fakeslack import FakeSlack
from scheduler.backfill.engine import RunRequest, format_ts, ts_micros
from tests.engine.engine_harness import (
    checkpoints,
    chroma_ids,
    history_latests,
    make_engine,
    make_gateway,
    open_stores,
    small_workspace,
    stored_rows,
)

DAYS = 7
RUNNER = Path(__file__).with_name("engine_runner.py")


async def test_engine_cancel_then_resume(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=21, messages=1200)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        engine = make_engine(make_gateway(fake), stores)
        cancel = asyncio.Event()
        seen: list[Progress] = []
        # History a little slower than the writer, so the cancel lands inside the first channel
        # (its history spans four pages) whatever the writer coalesces into one commit.
        fake.faults.slow(0.05, method="conversations.history")

        def on_progress(p: Progress) -> None:
            seen.append(p)
            if p.messages_stored >= 30:
                cancel.set()

        first = await engine.run(
            RunRequest(ws.team_id, job_run_id=7, days=DAYS, now=ws.now),
            progress=on_progress,
            cancel=cancel,
        )
        assert first.cancelled and first.error is None
        assert 0 < len(await stored_rows(stores, ws.team_id)) < len(truth.must_store)
        assert any(cp.phase != "done" for cp in await checkpoints(stores, ws.team_id))
        calls_first = len(fake.calls_of("conversations.history"))
        assert seen[-1].channels_total == len(truth.channels_in_scope)

        fake.faults.clear()
        second = await engine.run(RunRequest(ws.team_id, job_run_id=7, days=DAYS, now=ws.now))
        assert second.error is None and not second.cancelled
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
        assert len(await chroma_ids(stores, ws.team_id, truth.must_store)) == len(truth.must_store)
        assert second.channels_processed == len(truth.channels_in_scope)
        pairs = history_latests(fake)
        assert len(pairs) > calls_first
        # Cancel commits what was fetched, so no page is ever asked for twice.
        assert len(pairs) == len(set(pairs)), "a history page was fetched twice"
        replies = [
            (c.args["channel"], c.args["ts"]) for c in fake.calls_of("conversations.replies")
        ]
        assert len(replies) == len(set(replies)) == len(truth.threads_with_replies)


def _resume_bound(cp: object) -> dict[str, int] | None:
    """Highest `latest` a resumed run may still ask per phase (None: channel done, nothing)."""
    phase = cp.phase  # type: ignore[attr-defined]
    oldest = ts_micros(cp.window_oldest_ts)  # type: ignore[attr-defined]
    latest = ts_micros(cp.window_latest_ts)  # type: ignore[attr-defined]
    resume = cp.resume_latest_ts  # type: ignore[attr-defined]
    if phase == "done":
        return None
    if phase == "history":
        return {"history": ts_micros(resume) if resume else latest + 1, "threads": oldest + 1}
    return {"history": -1, "threads": ts_micros(resume) if resume else oldest + 1}


async def _runner(
    fake: FakeSlack, database_url: str, chroma: Path, job: int
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUNNER),
        "--base-url",
        fake.base_url,
        "--token",
        fake.bot_token,
        "--database-url",
        database_url,
        "--chroma",
        str(chroma),
        "--workspace",
        fake.team_id,
        "--job",
        str(job),
        "--days",
        str(DAYS),
        "--now",
        repr(fake.workspace.now),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )


async def test_engine_sigkill_then_restart(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=31, messages=1200)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    chroma = tmp_path / "chroma"
    fake = FakeSlack(ws, rate_limits=False)
    fake.start_in_thread()
    try:
        # Slow history a little so the kill lands mid-run.
        fake.faults.slow(0.15, method="conversations.history")
        proc = await _runner(fake, database_url, chroma, job=3)
        for _ in range(600):
            if len(fake.calls_of("conversations.history")) >= 8 or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert proc.returncode is None, "the runner finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        killed_at = len(fake.calls)

        async with open_stores(database_url, chroma) as stores:
            after_kill = {cp.channel_id: cp for cp in await checkpoints(stores, ws.team_id)}
            partial = set(await stored_rows(stores, ws.team_id))
        assert partial and partial < truth.must_store, "kill did not land mid-run"

        fake.faults.clear()
        proc = await _runner(fake, database_url, chroma, job=3)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]

        async with open_stores(database_url, chroma) as stores:
            assert set(await stored_rows(stores, ws.team_id)) == truth.must_store
            found = await chroma_ids(stores, ws.team_id, truth.must_store | truth.must_not_store)
            assert found == {f"{c}:{ts}" for c, ts in truth.must_store}
            assert {cp.phase for cp in await checkpoints(stores, ws.team_id)} == {"done"}

        # Committed pages were not fetched again: every history call of the restarted run lies
        # below what the checkpoints said was committed when the process died.
        for call in fake.calls[killed_at:]:
            if call.method != "conversations.history" or not call.ok:
                continue
            channel, latest = call.args["channel"], ts_micros(call.args["latest"])
            cp = after_kill.get(channel)
            if cp is None or cp.job_run_id != 3:
                continue
            bound = _resume_bound(cp)
            assert bound is not None, f"{channel} was done but fetched again"
            oldest = ts_micros(cp.window_oldest_ts)
            phase = "history" if latest > oldest + 1 else "threads"
            assert latest <= bound[phase], (
                f"{channel}: page below {format_ts(latest)} was committed before the kill"
            )
    finally:
        fake.stop_thread()
