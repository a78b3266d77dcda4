"""RunService when things go wrong, against fakeslack over HTTP: transient failures are retried
by resuming the same run, permanent ones pause the schedule and say why, cancel stops within a
page, a refused DM never fails a run, and progress DMs are spaced out."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import fakeslack
from scheduler.cron import ScheduleSpec
from tests.scheduler.slack_node import (
    dm_dump,
    first_member,
    slack_node,
    sqlite_url,
    stored_keys,
)
from tests.support.waiting import eventually

NOW = 1_750_000_000.0


def workspace(seed: int = 9, messages: int = 500) -> fakeslack.Workspace:
    return fakeslack.generate(seed, users=20, channels=8, messages=messages, days=30, now=NOW)


async def scheduled_fire(node, ws, user):  # type: ignore[no-untyped-def]
    schedule = await node.schedules.save(
        ws.team_id, ScheduleSpec("0 * * * *", "UTC", 7, True, ()), user
    )
    fire = schedule.next_run_at - timedelta(hours=1)
    row = await node.service.on_schedule_fire(ws.team_id, schedule.schedule_id, fire)
    assert row is not None
    return row


async def test_runs_transient_failure_retried_by_resuming_the_same_run(
    database_url: str, tmp_path: Path
) -> None:
    ws = workspace()
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path, gateway_attempts=2, run_retries=2) as (
        fake,
        node,
    ):
        # Every history call fails 3 times in a row: more than the gateway's 2 attempts.
        fake.faults.http_error(500, count=3, method="conversations.history")
        row = await scheduled_fire(node, ws, user)
        await node.service.wait_idle()
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "success", done
        assert done.attempt >= 1  # resumed under the same job_run_id
        assert len(await node.service.history(ws.team_id)) == 1
        truth = fakeslack.ground_truth(ws, 7, now=done.started_at.timestamp())
        assert done.messages_collected >= 1
        dump = dm_dump(fake, user)
        assert "Retrying automatically in" in dump and "Backfill failed" in dump
        assert "Backfill finished" in dump
        assert fake.bot_token not in dump
        assert await stored_keys(node, ws.team_id) == truth.must_store


async def test_runs_permanent_failure_pauses_schedule_and_is_not_retried(
    database_url: str, tmp_path: Path
) -> None:
    ws = workspace(seed=4, messages=200)
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        fake.faults.api_error("invalid_auth", count=1, method="conversations.list")
        row = await scheduled_fire(node, ws, user)
        await node.service.wait_idle()
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "failed" and done.attempt == 0
        assert done.retry_at is None and "invalid_auth" in (done.error_message or "")
        schedule = await node.schedules.get(ws.team_id)
        assert schedule is not None and not schedule.is_active and schedule.next_run_at is None
        assert "invalid_auth" in (await node.service.paused_reason(ws.team_id) or "")
        dump = dm_dump(fake, user)
        assert "The schedule is paused" in dump and "invalid_auth" in dump
        assert "dm.retry_run" in dump  # the Retry now button
        assert fake.bot_token not in dump
        # Retry now: a new run of the same kind and window.
        again = await node.service.retry(ws.team_id, row.job_run_id, user)
        assert again.job_run_id != row.job_run_id and again.job_type == "scheduled"
        await node.service.wait_idle()
        assert (await node.service.get(again.job_run_id)).status == "success"  # type: ignore[union-attr]


async def test_runs_cancel_stops_within_one_page(tmp_path: Path) -> None:
    ws = workspace(seed=2, messages=1500)
    user = first_member(ws)
    async with slack_node(ws, sqlite_url(tmp_path), tmp_path) as (fake, node):
        fake.faults.slow(0.05, method="conversations.history")
        row = await node.service.start_manual(ws.team_id, user, days=30)
        await eventually(
            lambda: fake.calls_of("conversations.history")[3:],
            timeout=60,
            what="four history pages",
            every=0.02,
        )
        await node.service.cancel(ws.team_id, user, is_admin=False)
        before = len(fake.calls_of("conversations.history"))
        await node.service.wait_idle()
        after = len(fake.calls_of("conversations.history"))
        assert after - before <= 2  # the page in flight (and at most one more queued)
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "cancelled"
        assert "Backfill cancelled" in dm_dump(fake, user)


async def test_runs_dm_refused_does_not_fail_run_and_progress_is_spaced(tmp_path: Path) -> None:
    ws = workspace(seed=6, messages=1200)
    user = first_member(ws)
    async with slack_node(ws, sqlite_url(tmp_path), tmp_path) as (fake, node):
        # The first DM (progress) is refused; the run carries on and the summary still goes.
        fake.faults.api_error("channel_not_found", count=1, method="chat.postMessage")
        row = await node.service.start_manual(ws.team_id, user, days=30)
        await node.service.wait_idle()
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "success"
        assert "Backfill finished" in dm_dump(fake, user)
        # A run with a progress DM: updates at least 3 s apart.
        fake.faults.slow(0.1, method="conversations.history")
        row2 = await node.service.start_manual(ws.team_id, user, days=30)
        await node.service.wait_idle()
        updates = [c.t_mono for c in fake.calls_of("chat.update") if c.ok]
        assert len(updates) >= 2
        assert all(b - a >= 2.95 for a, b in itertools.pairwise(updates))
        dump = dm_dump(fake, user)
        assert f"run #{row2.job_run_id}" in dump and fake.bot_token not in dump
        progress_posts = [p for p in fake.posts if p["kind"] == "update"]
        assert any("Time left" in json.dumps(p["blocks"]) for p in progress_posts)
