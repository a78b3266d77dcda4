# ruff: noqa: F811 - the clock fixture imported from test_schedules is a test parameter here
"""A live APScheduler fires the schedule in its own time zone and a `scheduled` run follows:
ScheduleService → RunService → engine → fakeslack, with APScheduler's clock injected (no waiting
for real cron minutes), across the spring DST night in Europe/Paris."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import fakeslack
from scheduler.cron import ScheduleSpec
from tests.scheduler.slack_node import slack_node
from tests.scheduler.test_schedules import (  # noqa: F401 - the fixture is shared
    ADMIN,
    FakeClock,
    clock,
)


async def test_schedule_fires_a_scheduled_run_in_its_time_zone_across_dst(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    clock.now = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)
    fire = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # "30 2 * * *" Paris: 02:30 does not exist
    ws = fakeslack.generate(11, users=20, channels=5, messages=300, days=20, now=fire.timestamp())
    async with slack_node(ws, database_url, tmp_path, clock=clock) as (_, node):
        scheduler = node.schedules._scheduler  # the node's own, started here with the fake clock
        scheduler.start()
        try:
            saved = await node.schedules.save(
                ws.team_id, ScheduleSpec("30 2 * * *", "Europe/Paris", 7, True, ()), ADMIN
            )
            assert saved.next_run_at == fire
            clock.now = fire
            scheduler.wakeup()
            for _ in range(200):  # the job runs on the loop: let it claim the run
                if await node.service.history(ws.team_id):
                    break
                await asyncio.sleep(0.05)
            # The row is visible before the fire has queued its run: let the fire finish first
            # (close() waits for it), then the run.
            await node.schedules.close()
            await node.service.wait_idle()
        finally:
            await node.schedules.close()  # a no-op once closed
        runs = await node.service.history(ws.team_id)
        assert len(runs) == 1
        run = runs[0]
        assert (run.job_type, run.status, run.triggered_by) == ("scheduled", "success", None)
        assert run.schedule_id == saved.schedule_id and run.fire_time == fire
        after = await node.schedules.get(ws.team_id)
        assert after is not None and after.last_run_at == fire
        assert after.next_run_at == datetime(2025, 3, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST
        truth = fakeslack.ground_truth(ws, 7, now=fire.timestamp())
        assert run.messages_collected == len(truth.must_store)
