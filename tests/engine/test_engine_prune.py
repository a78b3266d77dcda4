"""Pruning in runs (PRUNE_DELETED, issue 13 point 4): messages deleted in Slack without any event
reaching the app are removed, from SQL and Chroma, by the next run that re-reads them, and by
nothing else: not a run whose window (or whose lookback scan, or whose incremental mark) leaves
them out, not a thread the run did not walk, not a skipped channel, not the pages a cancelled,
failed or crashed run had not committed. The count reaches the engine's result, the stored run
and its summary DM. On SQLite and PostgreSQL, against fakeslack over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import fakeslack
from app.metrics import Metrics
from db import runs as repo
from db.messages import Checkpoint
from db.models import Message
from db.records import MessageRecord, Progress, Run
from db.vectors import VectorStore
from fakeslack import FakeSlack
from scheduler.backfill.engine import BackfillEngine, EngineConfig, RunRequest, ts_micros
from scheduler.backfill.progress import RunResult
from scheduler.run_core import RunJob
from scheduler.run_events import RunEvent
from tests.engine.engine_harness import (
    FAST,
    Stores,
    checkpoints,
    chroma_ids,
    make_gateway,
    open_stores,
    request,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)
from tests.scheduler.slack_node import dm_texts, first_member, slack_node, stored_keys

DAY = 86400
Key = tuple[str, str]  # (channel_id, ts)
# Pages of five: every channel's window spans many pages, so many page ranges are pruned.
PAGES_OF_5 = dataclasses.replace(FAST, history_page_size=5)
RUNNER = Path(__file__).with_name("engine_runner.py")


# -- fakeslack's state, changed behind the app's back ---------------------------------------------
def remove_silently(ws: fakeslack.Workspace, key: Key) -> None:
    """Delete a message from fakeslack's state without any event: the app never hears of it."""
    channel_id, ts = key
    with ws.lock:
        ws.channels[channel_id].remove(ts)


def tombstone_silently(ws: fakeslack.Workspace, key: Key) -> None:
    """What Slack leaves where a thread parent with replies was deleted (and no event either)."""
    channel_id, ts = key
    with ws.lock:
        msg = ws.channels[channel_id].by_ts[ts]
        for name in ("files", "attachments", "blocks", "edited", "bot_id"):
            msg.pop(name, None)
        msg.update(subtype="tombstone", text="This message was deleted.", user="USLACKBOT")
        msg["hidden"] = True


def vanish_thread(ws: fakeslack.Workspace, parent: Key) -> None:
    """Every reply deleted, then the parent: Slack keeps no trace of the thread."""
    channel_id, parent_ts = parent
    with ws.lock:
        channel = ws.channels[channel_id]
        for reply in channel.thread_replies(parent_ts):
            channel.remove(reply["ts"])
        channel.remove(parent_ts)


def is_thread(ws: fakeslack.Workspace, key: Key) -> bool:
    """A reply, or a parent with replies."""
    channel = ws.channels[key[0]]
    return "thread_ts" in channel.by_ts[key[1]] or bool(channel.thread_replies(key[1]))


# -- what is stored --------------------------------------------------------------------------------
async def stored_threads(stores: Stores, workspace_id: str) -> dict[Key, str | None]:
    """Every stored message as (channel_id, ts) -> its thread_ts."""
    t = Message.__table__
    async with stores.sessions() as session:
        rows = (
            await session.execute(
                select(t.c.channel_id, t.c.ts, t.c.thread_ts).where(
                    t.c.workspace_id == workspace_id
                )
            )
        ).all()
    return {(r[0], r[1]): r[2] for r in rows}


async def assert_store(
    stores: Stores, workspace_id: str, expected: set[Key], gone: set[Key]
) -> None:
    """SQL holds exactly `expected`; Chroma holds each of them and none of `gone`."""
    assert set(await stored_rows(stores, workspace_id)) == expected
    found = await chroma_ids(stores, workspace_id, expected | gone)
    assert found == {f"{c}:{ts}" for c, ts in expected}


def plain_in(rows: dict[Key, str | None], low: float, high: float) -> list[Key]:
    """Stored top-level messages without a thread, with low < ts < high (epoch seconds)."""
    return sorted(k for k, th in rows.items() if th is None and low < float(k[1]) < high)


def threads_in(rows: dict[Key, str | None], low: float, high: float) -> dict[Key, list[Key]]:
    """Stored parents with low < ts < high and their stored replies (two or more)."""
    replies: dict[Key, list[Key]] = defaultdict(list)
    for (channel_id, ts), thread_ts in rows.items():
        if thread_ts is not None and thread_ts != ts:
            replies[(channel_id, thread_ts)].append((channel_id, ts))
    return {
        parent: sorted(found)
        for parent, found in sorted(replies.items())
        if parent in rows and low < float(parent[1]) < high and len(found) >= 2
    }


def covered(cp: Checkpoint | None, job: int, ts: str) -> bool:
    """Whether the history pages `job` committed for a channel (its checkpoint) cover `ts`."""
    if cp is None or cp.job_run_id != job:
        return False
    assert cp.window_oldest_ts and cp.window_latest_ts
    micros = ts_micros(ts)
    if not ts_micros(cp.window_oldest_ts) < micros <= ts_micros(cp.window_latest_ts):
        return False
    if cp.phase in ("threads", "done"):
        return True
    return cp.resume_latest_ts is not None and micros >= ts_micros(cp.resume_latest_ts)


async def run(
    fake: FakeSlack,
    stores: Stores,
    ws: fakeslack.Workspace,
    *,
    job: int,
    days: float = 7,
    config: EngineConfig | None = None,
) -> RunResult:
    gateway = make_gateway(fake, PAGES_OF_5)
    return await run_engine(fake, stores, ws, gateway, config, job_run_id=job, days=days)


# -- the engine ------------------------------------------------------------------------------------
async def test_engine_prune_removes_what_slack_no_longer_returns(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=41, messages=1200)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        first = await run(fake, stores, ws, job=1)
        assert first.ok and first.messages_removed == 0
        rows = await stored_threads(stores, team)
        inside = (ws.now - 6 * DAY, ws.now - 3600)
        plain = plain_in(rows, *inside)[::4]
        threads = threads_in(rows, *inside)
        assert len(plain) >= 10 and len(threads) >= 3
        (_, walked_replies), (tombstoned, kept_replies), (vanished, vanished_replies) = [
            *threads.items()
        ][:3]
        old_reply = walked_replies[0]  # not the newest: the thread still looks fully stored
        for key in [*plain, old_reply]:
            remove_silently(ws, key)
        tombstone_silently(ws, tombstoned)
        vanish_thread(ws, vanished)

        # The same window again: every page of it is re-read, so the top-level messages Slack
        # no longer returns go, a tombstoned parent too (its replies stay), and a thread gone
        # with its parent takes its stored replies along. The thread whose old reply went is
        # not walked again (its newest reply is stored), so that reply stays.
        second = await run(fake, stores, ws, job=2)
        assert second.ok
        top_gone = {*plain, tombstoned, vanished}
        assert second.messages_removed == len(top_gone) + len(vanished_replies)
        truth = fakeslack.ground_truth(ws, 7, now=ws.now)
        assert set(kept_replies) <= truth.must_store
        await assert_store(
            stores, team, truth.must_store | {old_reply}, top_gone | set(vanished_replies)
        )

        # A wider window trusts no stored reply: every thread is walked, and the reply goes.
        third = await run(fake, stores, ws, job=3, days=8)
        assert third.ok and third.messages_removed == 1
        wider = fakeslack.ground_truth(ws, 8, now=ws.now)
        await assert_store(stores, team, wider.must_store, {old_reply, *top_gone})


async def test_engine_prune_never_reaches_past_what_the_run_reread(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=43, messages=1200)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        # Posted half a minute before the runs' window ends: too young to be judged by them.
        busiest = max(ws.channels.values(), key=lambda c: len(c.top)).id
        young = (busiest, f"{ws.now - 30:.6f}")
        ws.add_message(busiest, "posted half a minute before the run started", ts=young[1])
        assert (await run(fake, stores, ws, job=1, days=14)).ok
        rows = await stored_threads(stores, team)
        assert young in rows
        # Ten days old: outside a 7-day window, inside its 14-day thread lookback scan.
        old = plain_in(rows, ws.now - 11 * DAY, ws.now - 9 * DAY)[:4]
        recent = plain_in(rows, ws.now - 5 * DAY, ws.now - 3600)
        assert len(old) == 4 and len(recent) >= 8
        now_gone, later_gone = recent[:4], recent[-4:]
        for key in [*old, *now_gone, young]:
            remove_silently(ws, key)

        week = await run(fake, stores, ws, job=2)
        assert week.ok and week.messages_removed == len(now_gone)
        kept = set(rows) - set(now_gone)
        await assert_store(stores, team, kept, set(now_gone))

        # A scheduled run reads only what is newer than each channel's mark (plus the lookback
        # scan, which prunes no top-level message): what it did not re-read stays.
        for key in later_gone:
            remove_silently(ws, key)
        engine = BackfillEngine(
            make_gateway(fake, PAGES_OF_5), stores.sessions, stores.vectors, EngineConfig()
        )
        later = ws.now + 3600
        scheduled = await engine.run(
            RunRequest(team, job_run_id=3, days=7, incremental=True, now=later)
        )
        assert scheduled.ok and scheduled.messages_removed == 0
        await assert_store(stores, team, kept, set(now_gone))

        # An hour later, a 7-day window re-reads them all, the young message included.
        manual = await engine.run(RunRequest(team, job_run_id=4, days=7, now=later))
        assert manual.ok and manual.messages_removed == len(later_gone) + 1
        gone = {*now_gone, *later_gone, young}
        await assert_store(stores, team, set(rows) - gone, gone)


async def test_engine_prune_off_removes_nothing(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=47, messages=1200)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        assert (await run(fake, stores, ws, job=1)).ok
        rows = await stored_threads(stores, team)
        inside = (ws.now - 6 * DAY, ws.now - 3600)
        gone = plain_in(rows, *inside)[::3]
        parent, replies = next(iter(threads_in(rows, *inside).items()))
        for key in [*gone, *replies]:
            remove_silently(ws, key)
        tombstone_silently(ws, parent)

        result = await run(
            fake, stores, ws, job=2, days=8, config=EngineConfig(prune_deleted=False)
        )
        assert result.ok and result.messages_removed is None
        wider = fakeslack.ground_truth(ws, 8, now=ws.now)
        await assert_store(stores, team, wider.must_store | set(rows), set())


async def test_engine_prune_skipped_and_failing_channels_keep_their_uncommitted_pages(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=53, messages=1500)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        assert (await run(fake, stores, ws, job=1)).ok
        rows = await stored_threads(stores, team)
        gone = plain_in(rows, ws.now - 7 * DAY, ws.now)[::3]
        by_channel: dict[str, int] = defaultdict(int)
        for channel_id, _ts in gone:
            by_channel[channel_id] += 1
        # The busiest channel fails after two pages (deleted mid-run); the next is archived.
        failing, archived = sorted(by_channel, key=lambda c: -by_channel[c])[:2]
        for key in gone:
            remove_silently(ws, key)
        with ws.lock:
            ws.channels[archived].is_archived = True
        fake.faults.delete_channel(failing, after_history_calls=2)

        result = await run(fake, stores, ws, job=2)
        assert {c.id for c in result.channels_skipped} >= {failing, archived}
        marks = {cp.channel_id: cp for cp in await checkpoints(stores, team)}
        removed = {k for k in gone if covered(marks.get(k[0]), 2, k[1])}
        assert not any(channel_id == archived for channel_id, _ in removed)
        assert any(channel_id not in (failing, archived) for channel_id, _ in removed)
        assert not any(k[0] == failing for k in removed) or marks[failing].phase == "history"
        assert result.messages_removed == len(removed)
        await assert_store(stores, team, set(rows) - removed, removed)


async def test_engine_prune_cancelled_then_resumed(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=59, messages=1500)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        assert (await run(fake, stores, ws, job=1)).ok
        rows = await stored_threads(stores, team)
        gone = set(plain_in(rows, ws.now - 7 * DAY, ws.now)[::3])
        for key in gone:
            remove_silently(ws, key)
        engine = BackfillEngine(
            make_gateway(fake, PAGES_OF_5), stores.sessions, stores.vectors, EngineConfig()
        )
        cancel = asyncio.Event()
        fake.faults.slow(0.05, method="conversations.history")

        def on_progress(p: Progress) -> None:
            if p.messages_stored >= 20:
                cancel.set()

        first = await engine.run(request(ws, job_run_id=2), progress=on_progress, cancel=cancel)
        assert first.cancelled
        marks = {cp.channel_id: cp for cp in await checkpoints(stores, team)}
        assert any(cp.phase != "done" for cp in marks.values())
        removed = {k for k in gone if covered(marks.get(k[0]), 2, k[1])}
        assert len(removed) < len(gone)
        assert first.messages_removed == len(removed)
        await assert_store(stores, team, set(rows) - removed, removed)

        fake.faults.clear()
        second = await engine.run(request(ws, job_run_id=2))
        assert second.ok and second.messages_removed == len(gone) - len(removed)
        truth = fakeslack.ground_truth(ws, 7, now=ws.now)
        await assert_store(stores, team, truth.must_store, gone)


class CrashingVectors:
    """The real store, except that its first `delete` dies once Chroma has done it (the process
    dying between the Chroma call and the SQL commit)."""

    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner
        self.crashed = False

    async def upsert(self, records: Sequence[MessageRecord]) -> None:
        await self.inner.upsert(records)

    async def delete(self, workspace_id: str, ids: Sequence[str]) -> None:
        await self.inner.delete(workspace_id, ids)
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("the process died here")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_engine_prune_redone_after_a_crash_mid_batch(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=61, messages=1200)
    team = ws.team_id
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        assert (await run(fake, stores, ws, job=1)).ok
        rows = await stored_threads(stores, team)
        gone = set(plain_in(rows, ws.now - 7 * DAY, ws.now)[::3])
        for key in gone:
            remove_silently(ws, key)
        crashing = CrashingVectors(stores.vectors)
        engine = BackfillEngine(
            make_gateway(fake, PAGES_OF_5), stores.sessions, crashing, EngineConfig()
        )
        with pytest.raises(RuntimeError, match="died"):
            await engine.run(request(ws, job_run_id=2))
        # SQL forgot the batch (rows, tombstones, checkpoint); Chroma had already lost some.
        assert gone <= set(await stored_rows(stores, team))
        assert len(await chroma_ids(stores, team, gone)) < len(gone)

        resumed = await BackfillEngine(
            make_gateway(fake, PAGES_OF_5), stores.sessions, stores.vectors, EngineConfig()
        ).run(request(ws, job_run_id=2))
        assert resumed.ok and resumed.messages_removed == len(gone)
        truth = fakeslack.ground_truth(ws, 7, now=ws.now)
        await assert_store(stores, team, truth.must_store, gone)
        assert {cp.phase for cp in await checkpoints(stores, team)} == {"done"}


async def _runner(fake: FakeSlack, database_url: str, chroma: Path) -> asyncio.subprocess.Process:
    args = ["--base-url", fake.base_url, "--token", fake.bot_token]
    args += ["--database-url", database_url, "--chroma", str(chroma), "--workspace", fake.team_id]
    args += ["--job", "2", "--days", "7", "--now", repr(fake.workspace.now), "--page-size", "5"]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUNNER),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )


async def test_engine_prune_sigkilled_mid_channel_then_restarted(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=67, messages=1500)
    team = ws.team_id
    chroma = tmp_path / "chroma"
    fake = FakeSlack(ws, rate_limits=False)
    fake.start_in_thread()
    try:
        async with open_stores(database_url, chroma) as stores:
            first = await BackfillEngine(
                make_gateway(fake, PAGES_OF_5), stores.sessions, stores.vectors, EngineConfig()
            ).run(request(ws, job_run_id=1))
            assert first.ok
            rows = await stored_threads(stores, team)
        gone = set(plain_in(rows, ws.now - 7 * DAY, ws.now)[::3])
        for key in gone:
            remove_silently(ws, key)
        fake.reset_recording()
        fake.faults.slow(0.15, method="conversations.history")
        proc = await _runner(fake, database_url, chroma)
        for _ in range(600):
            if len(fake.calls_of("conversations.history")) >= 12 or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert proc.returncode is None, "the runner finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

        async with open_stores(database_url, chroma) as stores:
            marks = {cp.channel_id: cp for cp in await checkpoints(stores, team)}
            removed = {k for k in gone if covered(marks.get(k[0]), 2, k[1])}
            assert len(removed) < len(gone), "the kill did not land mid-run"
            assert set(await stored_rows(stores, team)) == set(rows) - removed
            # Chroma may already miss the documents of the batch the kill cut short (deleted
            # inside its open transaction): the restart removes them again, with their rows.
            found = await chroma_ids(stores, team, set(rows))
            assert found >= {f"{c}:{ts}" for c, ts in set(rows) - gone}
            assert not found & {f"{c}:{ts}" for c, ts in removed}

        fake.faults.clear()
        proc = await _runner(fake, database_url, chroma)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=240)
        assert proc.returncode == 0, err.decode()[-2000:]
        async with open_stores(database_url, chroma) as stores:
            truth = fakeslack.ground_truth(ws, 7, now=ws.now)
            await assert_store(stores, team, truth.must_store, gone)
    finally:
        fake.stop_thread()


# -- the stored run, its DM and the metric ---------------------------------------------------------
async def test_runs_store_the_removed_count_and_the_dm_says_it(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=71, messages=1200)
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        await node.service.start_manual(ws.team_id, user, days=7)
        await node.service.wait_idle()
        first = (await node.service.history(ws.team_id))[0]
        assert first.status == "success" and first.messages_removed == 0
        stored = await stored_keys(node, ws.team_id)
        gone = sorted(k for k in stored if ws.now - 6 * DAY < float(k[1]) < ws.now - 3600)[::5]
        # Top-level messages outside any thread (a reply's thread is not walked again).
        gone = [k for k in gone if not is_thread(ws, k)]
        assert gone
        for key in gone:
            remove_silently(ws, key)

        await node.service.start_manual(ws.team_id, user, days=7)
        await node.service.wait_idle()
        second = (await node.service.history(ws.team_id))[0]
        assert second.job_run_id != first.job_run_id and second.status == "success"
        assert second.messages_removed == len(gone)
        assert not set(gone) & await stored_keys(node, ws.team_id)
        summary = dm_texts(fake, user)[-1]
        assert f"*Removed (deleted in Slack)*\\n{len(gone)}" in summary
        assert f"removed {len(gone)} message" in summary


async def test_runs_removed_count_is_kept_and_summed_over_attempts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    owner, other = "host:1:abc", "host:2:def"
    async with sessions.begin() as session:
        await repo.ensure_workspace_row(session, "T1")
        row = await repo.insert_run(
            session, workspace_id="T1", job_type="manual", owner=owner, now=now
        )
    assert row.messages_removed is None  # nothing pruned yet
    job = RunJob(run=row, recipient=None, base_messages=0)
    assert job.messages_removed(None) is None
    async with sessions.begin() as session:
        # Released at shutdown after an attempt that removed 3, then taken over.
        assert await repo.release_run(
            session, row.job_run_id, owner, messages_removed=job.messages_removed(3)
        )
        released = await repo.get_run(session, row.job_run_id)
        assert released is not None and released.messages_removed == 3
        taken = await repo.claim_orphaned(session, released, other, now=now)
    assert taken is not None and taken.messages_removed == 3
    again = RunJob(run=taken, recipient=None, base_messages=0)
    assert again.messages_removed(None) == 3  # an attempt that did not prune adds nothing
    async with sessions.begin() as session:
        done = await repo.finish_run(
            session,
            row.job_run_id,
            other,
            status="success",
            now=now,
            messages_collected=10,
            channels_processed=1,
            messages_removed=again.messages_removed(4),
        )
    assert done is not None and done.messages_removed == 7


def test_metrics_count_the_removed_messages_of_ended_runs() -> None:
    metrics = Metrics()
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    for removed in (5, None, 2):
        row = Run(
            job_run_id=1,
            workspace_id="T1",
            job_type="manual",
            status="success",
            started_at=start,
            completed_at=start,
            messages_removed=removed,
        )
        metrics.on_run_event(RunEvent("finished", "T1", row))
    text = generate_latest(metrics.registry).decode()
    assert "backfill_messages_removed_total 7.0" in text
