"""SlackGateway against fakeslack over HTTP, with the real AsyncWebClient: pagination, threads,
retries, error mapping, and pacing under a time-compressed Tier 3 limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fakeslack import Channel, FakeSlack, Workspace
from scheduler.backfill.errors import (
    ChannelUnavailable,
    Outcome,
    PermanentSlackError,
    SlackRequestError,
    SlackUnavailable,
    classify,
)
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.pacing import Pacer
from scheduler.backfill.profiles import INTERNAL, RateProfile

HISTORY = "conversations.history"
BASE = 1_700_000_000
MAIN, SECRET, ARCHIVED, OUTSIDE = "C0MAIN0001", "C0SECRET01", "C0ARCHIVE1", "C0OUTSIDE1"
PARENT_TS = f"{BASE + 2}.000000"
# Small pages so a few dozen messages span several; a fast "minute" so pacing costs ~nothing.
FAST = dataclasses.replace(INTERNAL.scaled(0.05), history_page_size=10, replies_page_size=4)


def ts(i: int) -> str:
    return f"{BASE + i}.000000"


def build_workspace(n_messages: int = 45, n_channels: int = 0, n_users: int = 0) -> Workspace:
    ws = Workspace(now=BASE + 10_000)
    ws.add_user(
        {
            "id": "U0ALICE001",
            "name": "alice",
            "real_name": "Alice",
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": "alice"},
        }
    )
    for i in range(n_users):
        ws.add_user(
            {
                "id": f"U0EXTRA{i:04d}",
                "name": f"u{i}",
                "real_name": f"User {i}",
                "is_bot": False,
                "deleted": False,
                "profile": {"display_name": ""},
            }
        )
    members = {ws.bot_user_id, "U0ALICE001"}
    ws.add_channel(Channel(id=MAIN, name="general", is_general=True, members=set(members)))
    ws.add_channel(Channel(id=SECRET, name="secret", is_private=True, members={"U0ALICE001"}))
    ws.add_channel(Channel(id=OUTSIDE, name="outside", members={"U0ALICE001"}))
    ws.add_channel(Channel(id=ARCHIVED, name="old", is_archived=True, members=set(members)))
    for i in range(n_channels):
        ws.add_channel(Channel(id=f"C0EXTRA{i:04d}", name=f"extra-{i}", members={"U0ALICE001"}))
    for i in range(n_messages):
        ws.add_message(MAIN, f"message number {i}", user="U0ALICE001", ts=ts(i))
    for j in range(9):
        ws.add_reply(
            MAIN, PARENT_TS, f"reply number {j}", user="U0ALICE001", ts=f"{BASE + 2}.{j + 1:06d}"
        )
    return ws


class FakeSleep:
    """Backoff sleeps are recorded, not slept."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class VirtualPacerTime:
    """A pacer clock that only moves when the pacer sleeps: Retry-After is honoured, instantly."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(build_workspace(), rate_limits=False) as server:
        yield server


GatewayFactory = Callable[..., SlackGateway]


@pytest.fixture
def gateway_for(fake: FakeSlack) -> GatewayFactory:
    def make(profile: RateProfile = FAST, **kwargs: Any) -> SlackGateway:
        kwargs.setdefault("sleep", FakeSleep())
        kwargs.setdefault("rand", lambda: 1.0)
        return SlackGateway(fake.bot_token, base_url=fake.base_url, profile=profile, **kwargs)

    return make


def history_calls(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls_of(HISTORY)]


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (429, "ratelimited", Outcome.RATE_LIMITED),
        (429, None, Outcome.RATE_LIMITED),
        (200, "rate_limited", Outcome.RATE_LIMITED),
        (500, None, Outcome.TRANSIENT),
        (503, "service_unavailable", Outcome.TRANSIENT),
        (200, "fatal_error", Outcome.TRANSIENT),
        (200, "request_timeout", Outcome.TRANSIENT),
        (200, "invalid_auth", Outcome.PERMANENT),
        (200, "team_access_not_granted", Outcome.PERMANENT),
        (200, "no_permission", Outcome.PERMANENT),
        (200, "not_authed", Outcome.PERMANENT),
        (200, "method_not_supported_for_channel_type", Outcome.CHANNEL),
        (200, "thread_not_found", Outcome.CHANNEL),
        (200, "invalid_cursor", Outcome.OTHER),
        (200, None, Outcome.OTHER),
    ],
)
def test_classify_errors(status: int, error: str | None, outcome: Outcome) -> None:
    assert classify(status, error) is outcome


def test_gateway_owns_retries() -> None:
    gw = SlackGateway("xoxb-x", base_url="http://127.0.0.1:9/api/")
    assert gw._client.retry_handlers == []
    assert gw._client.base_url == "http://127.0.0.1:9/api/"
    assert gw.profile is INTERNAL


# -- pagination ----------------------------------------------------------------------------------
async def test_history_pages_walk_every_page_once_with_fixed_window(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    pages = [p async for p in gw.history_pages(MAIN, oldest=ts(4), latest=ts(40))]

    got = [m["ts"] for p in pages for m in p.messages]
    assert got == [ts(i) for i in range(39, 4, -1)]  # newest first, oldest/latest exclusive
    assert [len(p.messages) for p in pages] == [10, 10, 10, 5]
    assert [p.has_more for p in pages] == [True, True, True, False]
    assert all(p.next_cursor for p in pages[:-1]) and pages[-1].next_cursor is None
    calls = history_calls(fake)
    assert len(calls) == 4
    for call in calls:
        assert (call["channel"], call["oldest"], call["latest"], call["limit"]) == (
            MAIN,
            ts(4),
            ts(40),
            "10",
        )
    assert "cursor" not in calls[0]
    assert [c["cursor"] for c in calls[1:]] == [p.next_cursor for p in pages[:-1]]
    assert all(isinstance(t, str) for t in got)


async def test_history_pages_without_latest_and_inclusive(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    pages = [p async for p in gw.history_pages(MAIN, oldest=ts(30), latest=None, inclusive=True)]
    assert [m["ts"] for p in pages for m in p.messages] == [ts(i) for i in range(44, 29, -1)]
    calls = history_calls(fake)
    assert len(calls) == 2
    assert all("latest" not in c and c["inclusive"] == "1" for c in calls)


async def test_history_pages_resume_from_cursor(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    first = await anext(gw.history_pages(MAIN, oldest=ts(4), latest=ts(40)))
    rest = [
        p
        async for p in gw.history_pages(MAIN, oldest=ts(4), latest=ts(40), cursor=first.next_cursor)
    ]
    assert [m["ts"] for p in rest for m in p.messages] == [ts(i) for i in range(29, 4, -1)]


async def test_replies_exclude_parent_one_call_per_page(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    replies = await gw.replies(MAIN, PARENT_TS)
    assert [r["ts"] for r in replies] == [f"{BASE + 2}.{j:06d}" for j in range(1, 10)]
    assert all(r["thread_ts"] == PARENT_TS for r in replies)
    calls = fake.calls_of("conversations.replies")
    # Pages of 4: parent + 3 replies, then 4, then 2.
    assert len(calls) == 3
    assert all(c.args["ts"] == PARENT_TS and c.args["limit"] == "4" for c in calls)


async def test_replies_with_oldest(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    gw = gateway_for()
    replies = await gw.replies(MAIN, PARENT_TS, oldest=f"{BASE + 2}.000006")
    assert [r["ts"] for r in replies] == [f"{BASE + 2}.{j:06d}" for j in range(7, 10)]
    assert fake.calls_of("conversations.replies")[0].args["oldest"] == f"{BASE + 2}.000006"


async def test_list_channels_and_users_follow_cursors() -> None:
    async with FakeSlack(
        build_workspace(5, n_channels=250, n_users=230), rate_limits=False
    ) as fake:
        gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST)
        channels = [c async for c in gw.list_channels()]
        ids = [c["id"] for c in channels]
        # Public channels (member or not); not the archived one, nor the private one without the bot.
        assert len(ids) == len(set(ids)) == 252
        assert MAIN in ids and ARCHIVED not in ids and SECRET not in ids
        list_calls = fake.calls_of("conversations.list")
        assert len(list_calls) == 2
        assert all(
            c.args["limit"] == "200"
            and c.args["exclude_archived"] == "1"
            and c.args["types"] == "public_channel,private_channel"
            for c in list_calls
        )
        users = [u async for u in gw.users_pages()]
        assert len({u["id"] for u in users}) == len(users) == 231
        assert len(fake.calls_of("users.list")) == 2
        assert gw.stats().calls == {"conversations.list": 2, "users.list": 2}


async def test_single_object_methods(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    gw = gateway_for()
    me = await gw.auth_test()
    assert me["team_id"] == fake.team_id and me["user_id"] == fake.workspace.bot_user_id
    assert (await gw.channel_info(MAIN))["name"] == "general"
    assert (await gw.user_info("U0ALICE001"))["real_name"] == "Alice"
    assert (await gw.join(MAIN))["id"] == MAIN
    assert (await gw.join(OUTSIDE))["id"] == OUTSIDE
    assert fake.workspace.bot_user_id in fake.workspace.channels[OUTSIDE].members
    with pytest.raises(SlackRequestError) as err:
        await gw.user_info("U0NOBODY01")
    assert err.value.error == "user_not_found"


# -- rate limits and retries ---------------------------------------------------------------------
async def test_429_burst_waited_out_with_retry_after(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    vt = VirtualPacerTime()
    gw = gateway_for(pacer=Pacer(FAST, clock=vt.clock, sleep=vt.sleep))
    fake.faults.ratelimit_burst(count=3, retry_after=7, method=HISTORY)

    pages = [p async for p in gw.history_pages(MAIN, oldest=ts(34), latest=None)]

    assert sum(len(p.messages) for p in pages) == 10
    calls = fake.calls_of(HISTORY)
    assert [c.status for c in calls] == [429, 429, 429, 200]
    assert vt.now >= 21.0  # three Retry-After: 7 honoured before the next start
    stats = gw.stats()
    assert stats.rate_limited == 3 and stats.retries == 3 and stats.calls[HISTORY] == 4
    assert stats.wait_seconds >= 21.0
    pacer_stats = gw.pacer.stats()[HISTORY]
    assert pacer_stats.rate_limited == 3 and pacer_stats.slowdown > 1.0
    assert gw._sleep.delays == []  # type: ignore[attr-defined]  # 429 is not a backoff failure


async def test_429_retry_after_waits_real_time(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    fake.faults.ratelimit_burst(count=1, retry_after=1, method="conversations.info")
    assert (await gw.channel_info(MAIN))["id"] == MAIN
    first, second = fake.calls_of("conversations.info")
    assert first.status == 429 and second.status == 200
    assert second.t_mono - first.t_mono >= 0.95


async def test_endless_429_gives_up_as_unavailable(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    vt = VirtualPacerTime()
    gw = gateway_for(pacer=Pacer(FAST, clock=vt.clock, sleep=vt.sleep), max_rate_limited=5)
    fake.faults.ratelimit_burst(count=100, retry_after=1, method="users.info")
    with pytest.raises(SlackUnavailable) as err:
        await gw.user_info("U0ALICE001")
    assert err.value.error == "ratelimited"
    assert len(fake.calls_of("users.info")) == 6


async def test_5xx_retried_with_backoff_then_succeeds(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    sleep = FakeSleep()
    gw = gateway_for(sleep=sleep)
    fake.faults.http_error(500, count=2, method=HISTORY)
    fake.faults.http_error(503, count=1, method=HISTORY)
    pages = [p async for p in gw.history_pages(MAIN, oldest=ts(39), latest=None)]
    assert [m["ts"] for m in pages[0].messages] == [ts(i) for i in range(44, 39, -1)]
    assert [c.status for c in fake.calls_of(HISTORY)] == [500, 500, 503, 200]
    assert sleep.delays == [0.5, 1.0, 2.0]  # rand() = 1: the top of each full-jitter range
    stats = gw.stats()
    assert stats.retries == 3 and stats.backoff_seconds == 3.5 and stats.rate_limited == 0


async def test_full_jitter_is_capped(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    sleep = FakeSleep()
    gw = gateway_for(sleep=sleep, rand=lambda: 0.5, max_attempts=8, backoff_cap=3.0)
    fake.faults.http_error(500, count=7, method="auth.test")
    await gw.auth_test()
    assert sleep.delays == [0.25, 0.5, 1.0, 1.5, 1.5, 1.5, 1.5]


@pytest.mark.parametrize(
    "error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"]
)
async def test_transient_api_errors_retried(
    fake: FakeSlack, gateway_for: GatewayFactory, error: str
) -> None:
    gw = gateway_for()
    fake.faults.api_error(error, count=2, method="conversations.info")
    assert (await gw.channel_info(MAIN))["id"] == MAIN
    assert [c.error for c in fake.calls_of("conversations.info")] == [error, error, None]


async def test_connection_resets_retried(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    gw = gateway_for()
    fake.faults.connection_reset(count=2, method="users.info")
    assert (await gw.user_info("U0ALICE001"))["id"] == "U0ALICE001"
    assert [c.status for c in fake.calls_of("users.info")] == [None, None, 200]
    assert gw.stats().retries == 2


async def test_timeout_retried(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    gw = gateway_for(timeout=1)
    fake.faults.slow(1.5, method="auth.test", count=1)
    assert (await gw.auth_test())["ok"] is True
    assert len(fake.calls_of("auth.test")) == 2


async def test_persistent_5xx_raises_unavailable_after_max_attempts(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    fake.faults.http_error(503, count=50, method="conversations.info")
    with pytest.raises(SlackUnavailable) as err:
        await gw.channel_info(MAIN)
    assert err.value.error == "service_unavailable"
    assert len(fake.calls_of("conversations.info")) == 6


# -- errors that must not be retried -------------------------------------------------------------
@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked", "account_inactive"])
async def test_auth_errors_are_permanent_after_one_call(
    fake: FakeSlack, gateway_for: GatewayFactory, error: str
) -> None:
    gw = gateway_for()
    fake.faults.auth_failure(error, from_call=1)
    with pytest.raises(PermanentSlackError) as err:
        await gw.history_pages(MAIN, oldest=ts(0), latest=None).__anext__()
    assert err.value.error == error
    assert len(fake.calls) == 1


async def test_invalid_auth_from_call_k_mid_walk(
    fake: FakeSlack, gateway_for: GatewayFactory
) -> None:
    gw = gateway_for()
    fake.faults.auth_failure("invalid_auth", from_call=3)
    seen = []
    with pytest.raises(PermanentSlackError):
        async for page in gw.history_pages(MAIN, oldest=ts(0), latest=None):
            seen.append(page)
    assert len(seen) == 2 and len(fake.calls) == 3


async def test_wrong_token_and_missing_scope_are_permanent(fake: FakeSlack) -> None:
    gw = SlackGateway("xoxb-not-a-token", base_url=fake.base_url, profile=FAST)
    with pytest.raises(PermanentSlackError, match="invalid_auth"):
        await gw.auth_test()
    fake.set_scopes({"channels:read"})
    gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST)
    with pytest.raises(PermanentSlackError, match="missing_scope"):
        await gw.user_info("U0ALICE001")
    assert len(fake.calls) == 2


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda gw: gw.channel_info("C0NOTHERE1"), "channel_not_found", id="info"),
        pytest.param(
            lambda gw: anext(gw.history_pages("C0NOTHERE1", oldest="0", latest=None)),
            "channel_not_found",
            id="history-unknown",
        ),
        pytest.param(
            lambda gw: anext(gw.history_pages(OUTSIDE, oldest="0", latest=None)),
            "not_in_channel",
            id="history-not-member",
        ),
        pytest.param(
            lambda gw: anext(gw.history_pages(SECRET, oldest="0", latest=None)),
            "channel_not_found",
            id="history-private-not-member",
        ),
        pytest.param(
            lambda gw: gw.replies(MAIN, "1600000000.000000"),
            "thread_not_found",
            id="replies-unknown-thread",
        ),
        pytest.param(lambda gw: gw.join(ARCHIVED), "is_archived", id="join-archived"),
    ],
)
async def test_channel_errors_raise_channel_unavailable_at_once(
    fake: FakeSlack, gateway_for: GatewayFactory, call: Callable[[SlackGateway], Any], error: str
) -> None:
    gw = gateway_for()
    with pytest.raises(ChannelUnavailable) as err:
        await call(gw)
    assert err.value.error == error
    assert len(fake.calls) == 1


async def test_channel_deleted_mid_walk(fake: FakeSlack, gateway_for: GatewayFactory) -> None:
    gw = gateway_for()
    fake.faults.delete_channel(MAIN, after_history_calls=2)
    pages = []
    with pytest.raises(ChannelUnavailable, match="channel_not_found"):
        async for page in gw.history_pages(MAIN, oldest=ts(0), latest=None):
            pages.append(page)
    assert len(pages) == 2


# -- pacing against a rate-limited emulator ------------------------------------------------------
def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_tier3_pacing_against_compressed_rate_limits() -> None:
    """1 "minute" = 1 s: 120 history calls from 3 concurrent walks, zero 429, never > 50 per window."""
    async with FakeSlack(build_workspace(120), time_compression=60.0) as fake:
        profile = dataclasses.replace(INTERNAL.scaled(1.0), history_page_size=1)
        gw = SlackGateway(fake.bot_token, base_url=fake.base_url, profile=profile)

        async def walk(lo: int, hi: int) -> int:
            # oldest/latest are exclusive: this walk reads messages lo..hi-1, one per page.
            return sum(
                [
                    len(p.messages)
                    async for p in gw.history_pages(
                        MAIN, oldest=f"{BASE + lo - 1}.999999", latest=ts(hi)
                    )
                ]
            )

        counts = await asyncio.gather(walk(0, 40), walk(40, 80), walk(80, 120))

        assert counts == [40, 40, 40]
        calls = fake.calls_of(HISTORY)
        assert len(calls) == 120
        assert all(c.status == 200 for c in calls)
        assert fake.counters[HISTORY]["ratelimited"] == 0 and gw.stats().rate_limited == 0
        assert max_in_window([c.t_mono for c in calls], 1.0) <= 50
        # Throughput against the tier (wall time / ideal) is a benchmark figure, not asserted here.
