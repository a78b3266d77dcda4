"""One pooled HTTP session per workspace (issue 12, "Connections"): the engine's Slack calls, the
listeners' and DMs' Web API calls and every `respond()` to a `response_url` reuse a few TCP
connections, counted by fakeslack over real HTTP; the session is closed once at shutdown, with no
"Unclosed client session" left behind."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.http_sessions import PooledRespond, SlackConnections
from fakeslack import FakeSlack, generate
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.profiles import INTERNAL
from tests.scenarios.harness import start_scenario

# A Tier 3 "minute" of 0.05 s: pacing costs nothing against an unthrottled fakeslack.
FAST = INTERNAL.scaled(0.05)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/backfill.db"


def slack_requests(fake: FakeSlack) -> int:
    """Every request that reached fakeslack: Web API calls and response_url posts."""
    return len(fake.calls) + len(fake.response_posts)


@contextmanager
def leaks_reported() -> Iterator[list[str]]:
    """Every `ResourceWarning` (aiohttp's "Unclosed client session", "Unclosed connector") and
    every report to the loop's exception handler while inside, after a final collection: the
    caller asserts the list is empty, so a leak fails the test rather than printing a warning."""
    loop = asyncio.get_running_loop()
    reports: list[str] = []
    previous = loop.get_exception_handler()

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reports.append(f"loop: {context.get('message')}")

    loop.set_exception_handler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            try:
                yield reports
            finally:
                gc.collect()
                reports.extend(
                    f"warning: {w.message}"
                    for w in caught
                    if issubclass(w.category, ResourceWarning)
                )
    finally:
        loop.set_exception_handler(previous)


# --- the counter and the gateway -----------------------------------------------------------------


async def test_fakeslack_counts_one_connection_per_unpooled_call() -> None:
    """The baseline the pool improves on, and proof the counter counts: without a session the
    SDK opens a new connection for every call."""
    async with FakeSlack(generate(seed=2, users=4, channels=2, messages=10, days=3)) as fake:
        gateway = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST)
        for _ in range(5):
            await gateway.auth_test()
        assert len(fake.calls) == 5
        assert fake.http_connections == 5


async def test_gateway_calls_share_one_connection_given_a_session() -> None:
    workspace = generate(seed=2, users=40, channels=6, messages=300, days=5)
    async with FakeSlack(workspace) as fake, aiohttp.ClientSession() as session:
        gateway = SlackGateway(
            fake.bot_token, base_url=fake.base_url, profile=FAST, session=session
        )
        channels = [c async for c in gateway.list_channels()]
        for channel in channels:
            await gateway.channel_info(channel["id"])
        users = [u async for u in gateway.users_pages()]
        for user in users[:25]:
            await gateway.user_info(user["id"])
        assert len(fake.calls) >= 30
        assert fake.http_connections == 1  # one call at a time: one kept-alive connection


# --- the running app ------------------------------------------------------------------------------


async def test_run_and_responses_reuse_the_workspaces_connections(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's many engine calls, its DMs, the Home refreshes and several `respond()` posts go
    over a handful of pooled connections, not one each; every `respond()` the listeners make is
    ours, over the workspace's session (Bolt's own opens a session per post)."""
    responds: list[PooledRespond] = []
    real_call = PooledRespond.__call__

    async def recorded(self: PooledRespond, *args: Any, **kwargs: Any) -> Any:
        responds.append(self)
        return await real_call(self, *args, **kwargs)

    monkeypatch.setattr(PooledRespond, "__call__", recorded)
    async with start_scenario(sqlite_url, tmp_path) as s:
        seen = await s.command("run days=20", s.admin)
        assert "started" in seen.reply_text(), seen.reply_text()
        await s.wait_run_status(1, "success")
        await s.idle()
        engine_calls = sum(
            len(s.fake.calls_of(m))
            for m in ("conversations.list", "conversations.history", "conversations.replies")
        )
        assert engine_calls >= 20
        after_run, requests = s.fake.http_connections, slack_requests(s.fake)
        assert requests >= 30
        # Methods run concurrently (history, replies, DMs, Home), so a few connections are open
        # at once; unpooled, every request would have had its own (about 100 here).
        assert after_run <= 8 and requests >= 5 * after_run, (after_run, requests)

        # Responses one after the other: each `respond()` reuses a kept-alive connection.
        posts_before = len(s.fake.response_posts)
        for text in ("status", "list", "history 3", "status", "list", "history"):
            seen = await s.command(text, s.admin)
            assert seen.responses, text
        assert len(s.fake.response_posts) - posts_before >= 6
        assert s.fake.http_connections - after_run <= 1
        assert len(responds) == len(s.fake.response_posts)
        assert {id(r.session) for r in responds} == {id(s.rt.connections.session())}


async def test_session_is_closed_once_at_shutdown(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closes: list[aiohttp.ClientSession] = []
    real_close = aiohttp.ClientSession.close

    async def counted_close(self: aiohttp.ClientSession) -> None:
        closes.append(self)
        await real_close(self)

    monkeypatch.setattr(aiohttp.ClientSession, "close", counted_close)
    with leaks_reported() as reports:
        async with start_scenario(sqlite_url, tmp_path, messages=200) as s:
            pooled = s.rt.connections.session()
            assert pooled is not None and not pooled.closed
            await s.command("run days=5", s.admin)
            await s.wait_run_status(1, "success")
            await s.command("status", s.admin)  # a respond() over the pool, then shut down
        assert pooled.closed and s.rt.connections.closed
        assert sum(1 for c in closes if c is pooled) == 1
        await s.rt.connections.close()  # a second close does nothing
        assert sum(1 for c in closes if c is pooled) == 1
        # After shutdown nothing reopens it: clients fall back to a session per call.
        assert s.rt.connections.session() is None
    assert reports == []


async def test_leak_check_sees_an_unclosed_session() -> None:
    """The check above is not blind: a session dropped open is reported, both ways."""
    with leaks_reported() as reports:
        session = aiohttp.ClientSession()
        del session
    assert any("Unclosed client session" in r for r in reports if r.startswith("warning"))
    assert any("Unclosed client session" in r for r in reports if r.startswith("loop"))


async def test_connections_open_lazily_and_close_once() -> None:
    connections = SlackConnections()
    assert not connections.closed
    first = connections.session()
    assert first is not None and connections.session() is first
    await connections.close()
    await connections.close()
    assert first.closed and connections.closed and connections.session() is None
    never_opened = SlackConnections()
    await never_opened.close()  # nothing was opened: nothing to close, nothing opened now
    assert never_opened.session() is None
