"""Replays: the same signed bytes sent again within Slack's five-minute window are refused and
change nothing (scenario harness over signed HTTP, SQLite and PostgreSQL); the ledger is shared by
app instances on one PostgreSQL; Slack's own event retries still go through; a forged request is
never recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from app.runtime import running_app
from blocks import ids
from db.migrate import migrate
from db.replays import MemoryReplayLedger, SqlReplayLedger
from db.session import create_engine
from fakeslack.outgoing import event_body, json_headers
from tests.scenarios.harness import Scenario, scenario_settings, start_scenario
from tests.support.modal_states import run_state

Sent = list[tuple[str, dict[str, str]]]


@pytest.fixture
async def scenario(database_url: str, tmp_path: Path) -> AsyncIterator[Scenario]:
    async with start_scenario(database_url, tmp_path, messages=300) as s:
        yield s


def record(s: Scenario) -> Sent:
    """Every request the scenario sends, as (body, headers), to send the same bytes again."""
    sent: Sent = []
    post = s.post

    async def recording(body: str, headers: dict[str, str], **options: Any) -> Any:
        sent.append((body, dict(headers)))
        return await post(body, headers, **options)

    s.post = recording  # type: ignore[method-assign]
    return sent


async def test_replays_a_replayed_delete_is_refused_and_keeps_the_new_schedule(
    scenario: Scenario,
) -> None:
    s = scenario
    sent = record(s)
    await s.command('schedule "0 2 * * *" tz=UTC', s.admin)
    seen = await s.command("delete", s.admin)
    assert "Schedule deleted" in seen.reply_text() and await s.schedules() == []
    delete = sent[-1]
    await s.command('schedule "0 3 * * *" tz=UTC', s.admin)
    [recreated] = await s.schedules()

    seen = await s.post(*delete)
    assert seen.status == 401 and "already received" in seen.ack["error"]
    assert seen.nothing_reached_slack()
    assert await s.schedules() == [recreated]


async def test_replays_a_replayed_run_command_or_run_modal_starts_nothing(
    scenario: Scenario,
) -> None:
    s = scenario
    sent = record(s)
    general = s.channels["general"]
    await s.command("run days=1 channels=#general", s.admin)
    run_command = sent[-1]
    await s.idle()
    [row] = await s.runs()
    assert row["status"] == "success"

    seen = await s.post(*run_command)
    assert seen.status == 401 and seen.nothing_reached_slack()
    await s.idle()
    assert await s.runs() == [row]

    [modal] = (await s.command("run", s.admin)).opened
    seen = await s.submit(
        s.admin, modal, run_state(days="1", scope=ids.SCOPE_CHOSEN, channels=[general])
    )
    assert seen.status == 200
    submission = sent[-1]
    await s.idle()
    runs = await s.runs()
    assert len(runs) == 2 and runs[-1]["status"] == "success"

    seen = await s.post(*submission)
    assert seen.status == 401 and seen.nothing_reached_slack()
    await s.idle()
    assert await s.runs() == runs


async def test_replays_slack_event_retries_are_not_refused(scenario: Scenario) -> None:
    s = scenario
    body = event_body(
        {
            "type": "app_home_opened",
            "user": s.admin,
            "tab": "home",
            "channel": "D0SCENARIO",
            "event_ts": "1.2",
        },
        team_id=s.team_id,
    )
    headers = json_headers(body, s.fake.signing_secret)
    first = await s.post(body, headers, expect_after_empty_ack=True)
    retry = await s.post(
        body, {**headers, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    again = await s.post(body, headers)
    assert (first.status, retry.status, again.status) == (200, 200, 200)


async def test_replays_a_forged_request_is_not_recorded(scenario: Scenario) -> None:
    """Sent first with other bytes under the genuine request's signature, the forgery must not
    make the genuine request look like a replay (the ledger is asked only after verification)."""
    s = scenario
    body, genuine = s.signed_command("list", s.admin)
    forged = await s.post(body.replace("text=list", "text=delete"), genuine)
    assert forged.status == 401 and "signature" in forged.ack["error"]
    seen = await s.post(body, genuine, expect_after_empty_ack=True)
    assert seen.status == 200 and "There is no schedule yet" in seen.reply_text()


async def test_replays_two_instances_on_one_postgresql_share_the_ledger(
    postgres_url: str,
    tmp_path: Path,
) -> None:
    async with start_scenario(postgres_url, tmp_path / "first", messages=100) as s:
        sent = record(s)
        await s.command('schedule "0 2 * * *" tz=UTC', s.admin)
        [created] = await s.schedules()
        await s.command("pause", s.admin)
        pause = sent[-1]
        await s.command("resume", s.admin)
        [resumed] = await s.schedules()
        assert resumed["is_active"]

        settings = scenario_settings(s.fake, postgres_url, tmp_path / "second")
        async with running_app(settings, rate_minute_seconds=1.0) as second:
            url = f"http://127.0.0.1:{second.port}/slack/events"
            async with s.http.post(url, data=pause[0], headers=pause[1]) as resp:
                assert resp.status == 401
                assert "already received" in (await resp.json())["error"]
            # And the other way round: a fresh request to the second, replayed to the first.
            body, headers = s.signed_command("pause", s.admin)
            async with s.http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 200

            async def paused() -> bool:
                return not (await s.schedules())[0]["is_active"]

            await s.eventually(paused, what="the second instance to pause the schedule")
            await s.command("resume", s.admin)
            seen = await s.post(body, headers)
            assert seen.status == 401
            [row] = await s.schedules()
            assert row["is_active"] and row["schedule_id"] == created["schedule_id"]


# -- the ledgers ----------------------------------------------------------------------------------


async def test_replays_memory_ledger_forgets_a_signature_once_it_expired() -> None:
    now = [1000.0]
    ledger = MemoryReplayLedger(clock=lambda: now[0])
    assert await ledger.first_sight("v0=a", 1300)
    assert not await ledger.first_sight("v0=a", 1300)
    assert await ledger.first_sight("v0=b", 1010)
    now[0] = 1100.0  # past b's window, and a prune is due
    assert len(ledger) == 2
    assert await ledger.first_sight("v0=c", 1400)
    assert len(ledger) == 2  # b was dropped
    assert not await ledger.first_sight("v0=a", 1300)


async def test_replays_sql_ledger_answers_once_and_prunes(postgres_url: str) -> None:
    await migrate(postgres_url)
    now = [1000.0]
    ledger = SqlReplayLedger.for_url(postgres_url, clock=lambda: now[0])
    other = SqlReplayLedger.for_url(postgres_url, clock=lambda: now[0])
    try:
        results = await asyncio.gather(
            *(ledger.first_sight("v0=same", 1300) for _ in range(3)),
            other.first_sight("v0=same", 1300),
        )
        assert sorted(results) == [False, False, False, True]
        assert await ledger.first_sight("v0=short", 1010)
        now[0] = 1100.0
        assert await ledger.first_sight("v0=later", 1400)  # prunes v0=short
        engine = create_engine(postgres_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT signature FROM seen_request_signatures"))
                assert sorted(r[0] for r in rows) == ["v0=later", "v0=same"]
        finally:
            await engine.dispose()
    finally:
        await ledger.close()
        await other.close()
