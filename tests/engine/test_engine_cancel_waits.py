"""Cancel is honoured at every wait, not only between history pages: a call waiting in the pacer
(the tier's spacing), out a Retry-After or in a backoff sleep stops once the run's cancel event is
set (after the gateway's short grace), in the setup phase and in the walk, and the run ends
`cancelled` with nothing more asked of Slack. Against fakeslack over HTTP with the real
slack_sdk; waits are hours long, so only a prompt cancel lets a test finish (each is bounded)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import fakeslack
from fakeslack import FakeSlack
from scheduler.backfill.engine import RunResult
from scheduler.backfill.errors import RunCancelled
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import INTERNAL, RateProfile
from tests.engine.engine_harness import (
    DAYS,
    FAST,
    make_engine,
    make_gateway,
    request,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)
from tests.engine.test_gateway import MAIN, build_workspace
from tests.scheduler.slack_node import first_member, slack_node

HOUR = 3600
HISTORY = "conversations.history"
# Every method fast, except history: one call per hour-long "minute".
SLOW_HISTORY = RateProfile(
    "slow-history",
    {**{m: 100_000 for m in INTERNAL.calls_per_minute}, HISTORY: 1},
    history_page_size=25,
    replies_page_size=200,
    max_page_size=999,
    seconds_per_minute=HOUR,
)
BOUND = 60.0  # seconds: far below every wait these tests set up, far above a prompt stop


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(BOUND / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def pacing_waits(gw: SlackGateway, method: str) -> float:
    stats = gw.pacer.stats().get(method)
    return 0.0 if stats is None else stats.wait_seconds


# -- the gateway alone ---------------------------------------------------------------------------
@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(build_workspace(), rate_limits=False) as server:
        yield server


async def cancelled_call(
    gw: SlackGateway, call: Callable[[], Awaitable[Any]], waiting: Callable[[], bool], what: str
) -> None:
    cancel = asyncio.Event()

    async def run() -> Any:
        with gw.cancelled_by(cancel):
            return await call()

    task = asyncio.create_task(run())
    await until(waiting, what)
    assert not task.done()
    cancel.set()
    with pytest.raises(RunCancelled):
        await asyncio.wait_for(task, BOUND)


async def test_gateway_cancel_during_pacing_wait(fake: FakeSlack) -> None:
    slow = dataclasses.replace(
        FAST, calls_per_minute={"conversations.info": 1}, seconds_per_minute=HOUR
    )
    gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=slow, cancel_grace=0.1)
    assert (await gw.channel_info(MAIN))["id"] == MAIN
    await cancelled_call(
        gw,
        lambda: gw.channel_info(MAIN),
        lambda: pacing_waits(gw, "conversations.info") > 0,
        "the pacing wait",
    )
    assert len(fake.calls_of("conversations.info")) == 1
    assert gw.pacer.stats()["conversations.info"].calls == 1  # no start recorded for the second


async def test_gateway_cancel_during_retry_after(fake: FakeSlack) -> None:
    gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST, cancel_grace=0.1)
    fake.faults.ratelimit_burst(count=1, retry_after=HOUR, method="users.info")
    await cancelled_call(
        gw,
        lambda: gw.user_info("U0ALICE001"),
        lambda: pacing_waits(gw, "users.info") > HOUR / 2,
        "the Retry-After",
    )
    assert [c.status for c in fake.calls_of("users.info")] == [429]


async def test_gateway_cancel_during_backoff(fake: FakeSlack) -> None:
    gw = SlackGateway(
        fake.bot_token,
        base_url=fake.base_url,
        profile=FAST,
        cancel_grace=0.1,
        backoff_base=HOUR,
        rand=lambda: 1.0,
    )
    fake.faults.http_error(503, count=1, method="conversations.info")
    await cancelled_call(
        gw, lambda: gw.channel_info(MAIN), lambda: gw.stats().backoff_seconds > 0, "the backoff"
    )
    assert [c.status for c in fake.calls_of("conversations.info")] == [503]


async def test_gateway_cancel_abandons_a_hanging_answer(fake: FakeSlack) -> None:
    gw = SlackGateway(
        fake.bot_token, base_url=fake.base_url, profile=FAST, cancel_grace=0.1, timeout=600
    )
    fake.faults.slow(5.0, method="auth.test", count=1)
    await cancelled_call(
        gw,
        gw.auth_test,
        lambda: len(fake.calls_of("auth.test")) == 1,
        "the call to reach fakeslack",
    )


async def test_gateway_no_call_once_cancelled_past_the_grace(fake: FakeSlack) -> None:
    gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST, cancel_grace=0.0)
    cancel = asyncio.Event()
    cancel.set()
    with gw.cancelled_by(cancel), pytest.raises(RunCancelled):
        await gw.channel_info(MAIN)
    assert fake.calls == []
    # Outside a cancelled run the same gateway calls as usual.
    assert (await gw.channel_info(MAIN))["id"] == MAIN


# -- the engine ----------------------------------------------------------------------------------
async def run_then_cancel(
    gw: SlackGateway,
    stores: Any,
    ws: fakeslack.Workspace,
    waiting: Callable[[], bool],
    what: str,
    job: int = 1,
) -> RunResult:
    cancel = asyncio.Event()
    engine = make_engine(gw, stores)
    task = asyncio.create_task(engine.run(request(ws, job_run_id=job), cancel=cancel))
    await until(waiting, what)
    assert not task.done()
    cancel.set()
    return await asyncio.wait_for(task, BOUND)


async def test_engine_cancel_in_setup_during_retry_after(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=5)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        fake.faults.ratelimit_burst(count=1, retry_after=HOUR, method="users.list")
        gw = make_gateway(fake)
        result = await run_then_cancel(
            gw, stores, ws, lambda: pacing_waits(gw, "users.list") > 0, "the Retry-After"
        )
        assert result.cancelled and result.error is None
        assert [c.status for c in fake.calls_of("users.list")] == [429]
        assert fake.calls_of(HISTORY) == []
        assert result.channels_processed == 0


async def test_engine_cancel_in_walk_during_pacing_wait_then_resume(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        gw = make_gateway(fake, profile=SLOW_HISTORY)
        result = await run_then_cancel(
            gw, stores, ws, lambda: pacing_waits(gw, HISTORY) > 0, "the second history page"
        )
        assert result.cancelled and result.error is None
        assert len(fake.calls_of(HISTORY)) == 1  # the page asked for before the wait, no other
        # A fresh run of the same job resumes and stores everything.
        again = await run_engine(fake, stores, ws)
        assert again.error is None and not again.cancelled
        assert set(await stored_rows(stores, ws.team_id)) == truth.must_store


async def test_engine_cancel_in_walk_during_replies_backoff(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        fake.faults.http_error(503, count=1, method="conversations.replies")
        # The whole hour, every time: a jittered backoff can be short enough to retry first.
        gw = make_gateway(
            fake, backoff_base=HOUR, backoff_cap=HOUR, rand=lambda: 1.0, cancel_grace=0.2
        )
        result = await run_then_cancel(
            gw, stores, ws, lambda: gw.stats().backoff_seconds > 0, "the backoff"
        )
        assert result.cancelled and result.error is None
        failed = [c for c in fake.calls_of("conversations.replies") if c.status == 503]
        assert len(failed) == 1
        # The thread in backoff was never asked again.
        assert not [
            c
            for c in fake.calls_of("conversations.replies")
            if c.args == failed[0].args and c.seq > failed[0].seq
        ]


async def test_run_service_cancel_during_setup_wait_ends_cancelled(
    database_url: str, tmp_path: Path
) -> None:
    """The admin's cancel, through RunService, ends a run waiting out an hour-long Retry-After
    in its setup phase: `cancelled`, the slot free for the next run."""
    ws = small_workspace(seed=5)
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        fake.faults.ratelimit_burst(count=1, retry_after=HOUR, method="conversations.list")
        row = await node.service.start_manual(ws.team_id, user, days=1)
        await until(lambda: bool(fake.calls_of("conversations.list")), "conversations.list")
        await node.service.cancel(ws.team_id, user, is_admin=False)
        await node.service.wait_idle(timeout=BOUND)
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "cancelled"
        assert [c.status for c in fake.calls_of("conversations.list")] == [429]
        assert await node.service.current(ws.team_id) is None
