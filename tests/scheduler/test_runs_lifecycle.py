"""RunService end to end against fakeslack over HTTP (real gateway, engine and notifier), on
SQLite and PostgreSQL: manual and scheduled runs are recorded, the ground truth is stored, the
per-workspace lock refuses a second run, and the DMs say what happened."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import fakeslack
from scheduler.cron import ScheduleSpec
from scheduler.runs import RunRefused
from tests.scheduler.run_service_process import StubEngine, shifted_clock
from tests.scheduler.slack_node import (
    dm_texts,
    first_member,
    slack_node,
    sqlite_url,
    stored_keys,
)

NOW = 1_750_000_000.0
ADMIN = "U0ADMIN"


def workspace(seed: int = 7, messages: int = 600) -> fakeslack.Workspace:
    return fakeslack.generate(seed, users=24, channels=9, messages=messages, days=30, now=NOW)


async def test_runs_manual_run_stores_ground_truth_and_reports(
    database_url: str, tmp_path: Path
) -> None:
    ws = workspace()
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        row = await node.service.start_manual(ws.team_id, user, days=7)
        assert row.status == "running" and row.job_type == "manual" and row.triggered_by == user
        current = await node.service.current(ws.team_id)
        assert current is not None and current.job_run_id == row.job_run_id
        # The lock: a second run is refused, naming the one in progress.
        with pytest.raises(RunRefused, match=f"run #{row.job_run_id}"):
            await node.service.start_manual(ws.team_id, ADMIN)
        await node.service.wait_idle()
        done = (await node.service.history(ws.team_id))[0]
        assert done.status == "success", done.error_message
        assert done.completed_at is not None and done.days == 7
        truth = fakeslack.ground_truth(ws, 7, now=done.started_at.timestamp())
        assert await stored_keys(node, ws.team_id) == truth.must_store
        assert done.messages_collected == len(truth.must_store)
        assert done.channels_processed == len(truth.channels_in_scope)
        # (A private channel the bot is not in is invisible to it, so it may go unreported.)
        assert done.channels_skipped and all(reason for _, _, reason in done.channels_skipped)
        assert {c for c, _, _ in done.channels_skipped} <= set(truth.channels_skipped)
        assert await node.service.current(ws.team_id) is None
        totals = await node.service.totals(ws.team_id)
        assert totals.messages_stored == len(truth.must_store)
        assert totals.last_success_at == done.completed_at
        # DMs: the progress message (posted, then updated in place) and the summary.
        posts = [p for p in fake.posts if p.get("user") == user]
        assert posts[0]["kind"] == "message" and "in progress" in json.dumps(posts[0]["blocks"])
        summary = dm_texts(fake, user)[-1]
        assert f"run #{row.job_run_id}" in summary and "Messages stored" in summary
        assert f"{len(truth.must_store):,}" in summary
        assert "Skipped channels" in summary
        for text in dm_texts(fake, user):
            assert fake.bot_token not in text
        kinds = [e.kind for e in node.events]
        assert kinds[0] == "queued" and "started" in kinds and kinds[-1] == "finished"


async def test_runs_scheduled_fire_records_run_and_moves_schedule(
    database_url: str, tmp_path: Path
) -> None:
    ws = workspace(seed=3, messages=300)
    clock = shifted_clock(NOW)
    async with slack_node(ws, database_url, tmp_path, clock=clock) as (fake, node):
        schedule = await node.schedules.save(
            ws.team_id, ScheduleSpec("*/30 * * * *", "UTC", 7, True, ()), ADMIN
        )
        fire = schedule.next_run_at - timedelta(minutes=30)
        row = await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, fire)
        assert row is not None and row.job_type == "scheduled" and row.triggered_by is None
        assert row.schedule_id == schedule.schedule_id and row.fire_time == fire
        # The same fire again (another process, or a repeat) starts nothing.
        assert await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, fire) is None
        await node.service.wait_idle()
        after = await node.schedules.get(ws.team_id)
        assert after is not None and after.last_run_at == fire
        assert after.next_run_at is not None and after.next_run_at > clock() - timedelta(seconds=5)
        done = (await node.service.history(ws.team_id))[0]
        assert done.status == "success" and done.job_run_id == row.job_run_id
        summary = dm_texts(fake, ADMIN) if ADMIN in ws.users else []
        del summary  # the creator here is not a fakeslack user; delivery is covered elsewhere


async def test_runs_dst_second_fire_of_the_same_wall_time_is_skipped(tmp_path: Path) -> None:
    ws = workspace(seed=5, messages=50)
    stub = StubEngine(pages=2, page_s=0.01)
    async with slack_node(
        ws,
        sqlite_url(tmp_path),
        tmp_path,
        clock=lambda: datetime(2024, 11, 3, 4, 0, tzinfo=UTC),
        engine=stub,
    ) as (_, node):
        schedule = await node.schedules.save(
            ws.team_id, ScheduleSpec("30 1 * * *", "America/New_York", 7, True, ()), ADMIN
        )
        first = datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
        second = datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST, the same wall time
        assert await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, first)
        await node.service.wait_idle()
        assert await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, second) is None
        nextday = datetime(2024, 11, 4, 6, 30, tzinfo=UTC)
        assert await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, nextday)
        await node.service.wait_idle()
        assert len(await node.service.history(ws.team_id)) == 2


async def test_runs_concurrency_bounded_and_in_order(tmp_path: Path) -> None:
    ws = workspace(seed=5, messages=50)
    stub = StubEngine(pages=6, page_s=0.05)
    async with slack_node(
        ws, sqlite_url(tmp_path), tmp_path, engine=stub, run_concurrency=2, progress_interval_s=0.0
    ) as (_, node):
        rows = [await node.service.start_manual(f"T{i:04d}", ADMIN, days=1) for i in range(5)]
        await node.service.wait_idle()
        assert stub.max_running == 2
        assert stub.started == [r.job_run_id for r in rows]
        for w in range(5):
            assert [r.status for r in await node.service.history(f"T{w:04d}")] == ["success"]


async def test_runs_queue_fairly_across_workspaces(tmp_path: Path) -> None:
    """RUN_CONCURRENCY slots serve the workspaces in arrival order, and a workspace holds at most
    one place in the queue (a second run is refused while its first is queued or running), so a
    busy workspace never starves the others: its next run goes behind theirs."""
    ws = workspace(seed=5, messages=50)
    stub = StubEngine(pages=4, page_s=0.05)
    async with slack_node(
        ws, sqlite_url(tmp_path), tmp_path, engine=stub, run_concurrency=1, progress_interval_s=0.0
    ) as (_, node):
        busy = await node.service.start_manual("T0BUSY", ADMIN, days=1)
        with pytest.raises(RunRefused):
            await node.service.start_manual("T0BUSY", ADMIN, days=1)  # queued already
        others = [await node.service.start_manual(f"T{i:04d}", ADMIN, days=1) for i in range(3)]
        while (await node.service.get(busy.job_run_id)).status == "running":  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
        # The busy workspace asks again at once, while the others still wait their turn.
        assert len(stub.started) < 1 + len(others)
        again = await node.service.start_manual("T0BUSY", ADMIN, days=1)
        await node.service.wait_idle()
        assert stub.started == [busy.job_run_id, *(r.job_run_id for r in others), again.job_run_id]


async def test_a_fire_waits_for_a_free_slot_before_claiming(tmp_path: Path) -> None:
    """With every slot taken, a schedule's fire claims nothing (no row: another process with a
    free slot may take it) until a slot frees; then it is claimed and runs. A fire whose
    workspace has a run going is skipped at once, as always, and when firing stops (the app
    shuts down) a fire still waiting claims at once, so the stop releases it like any queued
    run and it is resumed after the restart."""
    ws = workspace(seed=5, messages=50)
    stub = StubEngine(pages=10, page_s=0.05)
    spec = ScheduleSpec("*/30 * * * *", "UTC", 7, True, ())
    async with slack_node(
        ws, sqlite_url(tmp_path), tmp_path, engine=stub, run_concurrency=1, progress_interval_s=0.0
    ) as (_, node):
        waiting, busy_ws, last = [
            await node.schedules.save(team, spec, ADMIN) for team in ("T0WAIT", "T0BUSY", "T0LAST")
        ]
        fire = waiting.next_run_at - timedelta(minutes=30)
        busy = await node.service.start_manual("T0BUSY", ADMIN, days=1)
        pending = asyncio.ensure_future(
            node.service.on_schedule_fire("T0WAIT", waiting.schedule_id, fire)
        )
        skipped = await node.service.on_schedule_fire("T0BUSY", busy_ws.schedule_id, fire)
        assert skipped is None  # its workspace's run is going: skipped without waiting
        await asyncio.sleep(0.2)
        assert not pending.done() and await node.service.history("T0WAIT") == []
        row = await pending  # the manual run ended: a slot is free
        assert row is not None and stub.started == [busy.job_run_id, row.job_run_id]
        # While that run holds the slot, firing stops: the waiting fire claims at once.
        later = asyncio.ensure_future(
            node.service.on_schedule_fire("T0LAST", last.schedule_id, fire)
        )
        await asyncio.sleep(0.1)
        assert not later.done()
        await node.schedules.close()
        claimed = await asyncio.wait_for(later, 1.0)
        assert claimed is not None and claimed.status == "running"
        assert (await node.service.get(row.job_run_id)).status == "running"  # type: ignore[union-attr]
        await node.service.wait_idle()
        assert stub.started == [busy.job_run_id, row.job_run_id, claimed.job_run_id]


async def test_runs_members_cancel_only_their_own_runs(tmp_path: Path) -> None:
    ws = workspace(seed=5, messages=50)
    stub = StubEngine(pages=400, page_s=0.02)
    async with slack_node(ws, sqlite_url(tmp_path), tmp_path, engine=stub) as (_, node):
        with pytest.raises(RunRefused, match="nothing|no backfill"):
            await node.service.cancel(ws.team_id, "UMEMBER1", is_admin=False)
        row = await node.service.start_manual(ws.team_id, "UMEMBER1", days=1)
        with pytest.raises(RunRefused, match="only an admin"):
            await node.service.cancel(ws.team_id, "UMEMBER2", is_admin=False)
        await asyncio.sleep(0.1)
        cancelled = await node.service.cancel(ws.team_id, "UMEMBER1", is_admin=False)
        assert cancelled.cancel_requested_by == "UMEMBER1"
        await node.service.wait_idle()
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "cancelled"
        # An admin cancels anyone's run.
        row2 = await node.service.start_manual(ws.team_id, "UMEMBER1", days=1)
        await asyncio.sleep(0.1)
        await node.service.cancel(ws.team_id, ADMIN, is_admin=True)
        await node.service.wait_idle()
        assert (await node.service.get(row2.job_run_id)).status == "cancelled"  # type: ignore[union-attr]


async def test_runs_dms_show_times_in_the_recipient_zone(database_url: str, tmp_path: Path) -> None:
    """The summary's start time is in the recipient's own Slack zone (`users.info`), looked up
    once; a user Slack gives no zone for gets UTC."""
    ws = workspace(seed=11, messages=200)
    tokyo, nowhere = sorted(
        u for u, user in ws.users.items() if not user.get("is_bot") and not user.get("deleted")
    )[:2]
    ws.users[tokyo]["tz"] = "Asia/Tokyo"
    ws.users[nowhere].pop("tz", None)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        for user in (tokyo, nowhere):
            await node.service.start_manual(ws.team_id, user, days=7)
            await node.service.wait_idle()
        assert "JST" in dm_texts(fake, tokyo)[-1] and "UTC" not in dm_texts(fake, tokyo)[-1]
        assert "UTC" in dm_texts(fake, nowhere)[-1]
        assert len([c for c in fake.calls_of("users.info") if c.args.get("user") == tokyo]) == 1


async def test_runs_log_lines_of_a_run_name_its_ids_in_json_logs(tmp_path: Path) -> None:
    import io
    import logging

    from app.logs import formatter_for

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json", []))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    ws = workspace(messages=120)
    try:
        async with slack_node(ws, sqlite_url(tmp_path), tmp_path) as (_, node):
            row = await node.service.start_manual(ws.team_id, first_member(ws), days=7)
            await node.service.wait_idle()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    ended = [e for e in entries if e["message"].startswith(f"run #{row.job_run_id} success")]
    assert len(ended) == 1
    assert (ended[0]["workspace_id"], ended[0]["job_run_id"]) == (ws.team_id, row.job_run_id)
