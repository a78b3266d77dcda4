"""Requests first: deferred work waits while requests are being answered, and never forever.

Ordering is asserted, never durations: the settle time is tiny and the deadline huge wherever a
test checks that the mechanism (not the clock) released the work.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from app import foreground as background
from app.foreground import Foreground, foreground

FOREVER = 3600.0


async def spin(times: int = 20) -> None:
    """Let the loop run every ready callback a few rounds (no timer is due this early)."""
    for _ in range(times):
        await asyncio.sleep(0)


def gate(**kwargs: float) -> Foreground:
    kwargs.setdefault("settle", 0.001)
    kwargs.setdefault("max_wait", FOREVER)
    return Foreground(asyncio.get_running_loop(), **kwargs)  # type: ignore[arg-type]


async def test_foreground_quiet_returns_at_once_when_nothing_is_answered() -> None:
    g = gate()
    assert g.is_quiet()
    await asyncio.wait_for(g.quiet(), timeout=FOREVER)  # no request: no wait at all


async def test_foreground_work_waits_for_the_request_then_runs() -> None:
    g = gate()
    g.begin()
    waiter = asyncio.create_task(g.quiet())
    await spin()
    assert not waiter.done() and g.active == 1
    g.end()
    await asyncio.wait_for(waiter, timeout=FOREVER)


async def test_foreground_a_request_beginning_before_the_settle_keeps_work_waiting() -> None:
    g = gate(settle=0.05)
    g.begin()
    waiter = asyncio.create_task(g.quiet())
    g.end()
    g.begin()  # the next request of the burst, within the settle time
    await asyncio.sleep(0.1)  # the settle timer fires while a request is in progress
    assert not waiter.done()
    g.end()
    await asyncio.wait_for(waiter, timeout=FOREVER)
    assert g._waiters == []


async def test_foreground_never_defers_past_max_wait() -> None:
    g = gate(max_wait=0.01)
    g.begin()  # a request that never ends (a steady stream of them)
    await asyncio.wait_for(g.quiet(), timeout=FOREVER)
    assert g.active == 1 and g._waiters == []  # released by its deadline, and forgotten


async def test_foreground_deferred_runs_at_most_concurrency_works_at_once() -> None:
    g = gate(concurrency=3)
    running = peak = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        async with g.deferred():
            running += 1
            peak = max(peak, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(work()) for _ in range(10)]
    await spin()
    assert running == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3 and running == 0


async def test_foreground_is_one_per_loop() -> None:
    assert foreground() is foreground()
    other = await asyncio.to_thread(lambda: asyncio.run(_foreground_of_a_new_loop()))
    assert other is not foreground()


async def _foreground_of_a_new_loop() -> Foreground:
    return foreground()


async def test_foreground_after_ack_starts_once_the_request_is_answered() -> None:
    g = foreground()
    started = asyncio.Event()

    async def slow_half() -> None:
        started.set()

    g.begin()  # the HTTP front is answering a request
    try:
        background.after_ack(slow_half())
        await spin()
        assert not started.is_set()
    finally:
        g.end()
    await asyncio.wait_for(started.wait(), timeout=FOREVER)


async def test_foreground_urgent_work_does_not_wait_for_the_burst() -> None:
    """Opening a modal uses a trigger_id that Slack lets live 3 s: it starts at once."""
    g = foreground()
    opened = asyncio.Event()

    async def open_modal() -> None:
        opened.set()

    g.begin()
    try:
        background.after_ack(open_modal(), urgent=True)
        await asyncio.wait_for(opened.wait(), timeout=FOREVER)
        assert g.active == 1  # still answering the request
    finally:
        g.end()


@pytest.mark.parametrize("failing", [False, True])
async def test_foreground_after_ack_failures_are_still_contained(failing: bool) -> None:
    """Deferred or not, a failing slow half is logged and the user told in plain words."""
    told: list[dict[str, object]] = []

    async def respond(**kwargs: object) -> None:
        told.append(kwargs)

    async def work() -> None:
        if failing:
            raise RuntimeError("boom")

    background.after_ack(work(), respond)  # type: ignore[arg-type]
    await background.drain(timeout=FOREVER)
    assert [t["text"] for t in told] == ([background.PLAIN_ERROR] if failing else [])


async def test_foreground_the_http_front_counts_each_request_until_it_is_answered() -> None:
    """`POST /slack/events` is a request in progress from before Bolt sees it until its answer
    is built; `/healthz` is not deferred-work-worthy and not counted."""
    from aiohttp.test_utils import TestClient, TestServer

    from app.http_server import EVENTS_PATH, build_web_app

    seen: list[int] = []

    class Bolt:
        async def async_dispatch(self, request: object) -> object:
            from slack_bolt.response import BoltResponse

            seen.append(foreground().active)
            return BoltResponse(status=200, body="")

    async with TestClient(TestServer(build_web_app(Bolt(), mode="http"))) as client:  # type: ignore[arg-type]
        response = await client.post(EVENTS_PATH, data="command=%2Fbackfill")
        assert response.status == 200
        assert (await client.get("/healthz")).status == 200
    assert seen == [1]
    assert foreground().active == 0


async def test_foreground_socket_mode_envelopes_count_until_acknowledged() -> None:
    from slack_bolt.response import BoltResponse
    from slack_sdk.socket_mode.request import SocketModeRequest

    from app.socket_mode import CountedSocketModeHandler

    seen: list[int] = []
    acks: list[str] = []

    class Bolt:
        client = None
        logger = None

        async def async_dispatch(self, request: object) -> BoltResponse:
            seen.append(foreground().active)
            return BoltResponse(status=200, body="")

    class Client:
        logger = logging.getLogger("test")

        async def send_socket_mode_response(self, response: object) -> None:
            acks.append(getattr(response, "envelope_id", ""))
            seen.append(foreground().active)

    handler = CountedSocketModeHandler.__new__(CountedSocketModeHandler)
    handler.app = Bolt()  # type: ignore[assignment]
    request = SocketModeRequest(
        type="slash_commands", envelope_id="E1", payload={"command": "/backfill", "text": "status"}
    )
    await handler.handle(Client(), request)  # type: ignore[arg-type]
    assert acks == ["E1"] and seen == [1, 1]
    assert foreground().active == 0
