"""The Home publisher's live refreshes during a database outage: one warning line and the round
skipped, never an unretrieved task exception or a traceback per viewer."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import async_sessionmaker

import fakeslack
from db.session import create_engine
from fakeslack import FakeSlack
from scheduler.home import HomePublisher
from scheduler.people import PeopleDirectory
from scheduler.schedules import ScheduleService
from tests.support.servers import free_port


async def test_home_refresh_during_a_database_outage_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = fakeslack.generate(5, users=6, channels=2, messages=10, days=3)
    admin = next(u["id"] for u in ws.users.values() if u.get("is_primary_owner"))
    # A PostgreSQL that is not there: every read is refused, as during a restart.
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")

    async def on_fire(*_: Any) -> None:
        return None

    schedules = ScheduleService(async_sessionmaker(engine), AsyncIOScheduler(), on_fire)
    async with FakeSlack(ws, rate_limits=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        publisher = HomePublisher(
            ws.team_id,
            schedules,
            runs=None,  # type: ignore[arg-type]  # never reached
            people=PeopleDirectory(team_id=ws.team_id),
        )
        # Opening the tab makes the admin a recent viewer, even though this publish fails.
        with pytest.raises(OSError):  # asyncpg's refused connection
            await publisher.publish(client, admin)
        with caplog.at_level(logging.WARNING):
            publisher.refresh_soon(client)
            assert publisher._pending is not None
            await publisher._pending  # raises if the outage escaped the refresh
        await publisher.close()
    await engine.dispose()
    skipped = [r for r in caplog.records if "home refresh skipped" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]
    assert fake.counters.get("views.publish", {}).get("ok", 0) == 0
