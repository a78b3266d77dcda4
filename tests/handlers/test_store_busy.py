"""SQLite held by another program's long write transaction (issue 10, finding 7).

Requests never queue behind it: `/backfill status` and Home tabs read from WAL snapshots and are
answered at once; a change waits at most the busy timeout and is then refused with the plain
"database is busy" words (no traceback), in the form itself for a run modal; once the lock is
gone both work again. The scenario
harness (real Bolt, signed HTTP, fakeslack) on SQLite, the lock held by a separate `sqlite3`
connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from blocks import ids
from db.session import SQLITE_BUSY_TIMEOUT_MS
from fakeslack.outgoing import event_body, json_headers
from handlers.errors import DATABASE_BUSY
from tests.scenarios.harness import Scenario, start_scenario
from tests.support.modal_states import run_state

# How long to wait for an answer: the busy timeout, and a margin for a slow host.
BOUND_S = SQLITE_BUSY_TIMEOUT_MS / 1000 + 15


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another program's write transaction: it holds the write lock until it ends."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("UPDATE workspaces SET name = name")
    return other


async def next_answer(s: Scenario, since: int) -> str:
    """The text of the first response_url post after the first `since` (waits for it)."""

    def reply() -> str | None:
        posts = s.fake.response_posts[since:]
        if not posts:
            return None
        body = posts[0]["body"]
        return f"{body.get('text', '')}\n{body.get('blocks', '')}"

    return str(await s.eventually(reply, timeout=BOUND_S, what="an answer on the response_url"))


async def open_homes(s: Scenario, count: int) -> None:
    """Home tabs opened together: each one's publish is deferred work that reads the store."""
    for _ in range(count):
        body = event_body(
            {
                "type": "app_home_opened",
                "user": s.admin,
                "tab": "home",
                "channel": "D0SCENARIO",
                "event_ts": f"{time.time():.6f}",
            },
            team_id=s.team_id,
        )
        seen = await s.post(body, json_headers(body, s.fake.signing_secret), settle=False)
        assert seen.status == 200


async def test_store_busy_status_answered_and_a_change_told_busy(tmp_path: Path) -> None:
    db = tmp_path / "backfill.db"
    async with start_scenario(f"sqlite+aiosqlite:///{db}", tmp_path) as s:
        other = await asyncio.to_thread(hold_write_lock, db)
        try:
            # Enough Home tabs to fill every deferred-work slot, then a status behind them.
            await open_homes(s, 10)
            since = len(s.fake.response_posts)
            seen = await s.command("status", s.admin, settle=False)
            assert seen.status == 200
            status = await next_answer(s, since)
            assert "No run in progress" in status, status
            # A change cannot wait for the lock forever: told the store is busy.
            since = len(s.fake.response_posts)
            seen = await s.command('schedule "0 2 * * *"', s.admin, settle=False)
            assert seen.status == 200
            told = await next_answer(s, since)
            assert DATABASE_BUSY in told and "Traceback" not in told, told
            # A run modal claims the run before its acknowledgement: the form says so.
            seen = await s.command("run", s.admin)
            [modal] = seen.opened
            seen = await s.submit(s.admin, modal, run_state(days="2"), settle=False)
            assert seen.status == 200
            assert seen.ack["response_action"] == "errors", seen.ack
            assert DATABASE_BUSY in seen.ack["errors"][ids.RUN_DAYS_BLOCK]
        finally:
            await asyncio.to_thread(other.rollback)
            await asyncio.to_thread(other.close)
        since = len(s.fake.response_posts)
        await s.command('schedule "0 2 * * *"', s.admin, settle=False)
        saved = await next_answer(s, since)
        assert "busy" not in saved and "went wrong" not in saved, saved
        assert len(await s.schedules()) == 1
        since = len(s.fake.response_posts)
        await s.command("status", s.admin, settle=False)
        assert "No run in progress" in await next_answer(s, since)
