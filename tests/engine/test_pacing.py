"""Pacing and rate profiles on virtual time: exact, instant, no real sleeping. Windows, 429s and
random call patterns in depth: test_pacing_windows.py."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable

import pytest

from scheduler.backfill.pacing import MethodStats, Pacer
from scheduler.backfill.profiles import INTERNAL, NON_MARKETPLACE, RateProfile, profile_for

HISTORY = "conversations.history"
USERS_INFO = "users.info"


class VirtualTime:
    """A clock and a sleep that only advance when every task is blocked on a sleep."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 0.0
        self.overshoot = overshoot  # every sleep wakes this much late, like a busy event loop
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wake = self.now + max(0.0, seconds) + self.overshoot
        heapq.heappush(self._sleepers, (wake, next(self._seq), fut))
        await fut

    async def run(self, *coros: Awaitable[object]) -> list[object]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                wake, _, fut = heapq.heappop(self._sleepers)
                self.now = max(self.now, wake)
                fut.set_result(None)
        return [t.result() for t in tasks]


def make_pacer(vt: VirtualTime, profile: RateProfile = INTERNAL, **kwargs: float) -> Pacer:
    return Pacer(profile, clock=vt.clock, sleep=vt.sleep, **kwargs)


def max_in_window(starts: list[float], window: float) -> int:
    """Most starts in any half-open window [t, t + window), as Slack's sliding log counts."""
    starts = sorted(starts)
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def starts_of(vt: VirtualTime, pacer: Pacer, method: str, n: int) -> list[float]:
    starts: list[float] = []
    for _ in range(n):
        await pacer.acquire(method)
        starts.append(vt.now)
    return starts


# -- profiles ------------------------------------------------------------------------------------
def test_profiles_tiers_and_page_sizes() -> None:
    assert INTERNAL.rate("conversations.list") == 20
    assert INTERNAL.rate(HISTORY) == 50
    assert INTERNAL.rate("conversations.replies") == 50
    assert INTERNAL.rate("conversations.info") == 50
    assert INTERNAL.rate("conversations.join") == 50
    assert INTERNAL.rate("users.list") == 20
    assert INTERNAL.rate(USERS_INFO) == 100
    assert (INTERNAL.history_page_size, INTERNAL.replies_page_size, INTERNAL.max_page_size) == (
        200,
        200,
        999,
    )
    assert NON_MARKETPLACE.rate(HISTORY) == NON_MARKETPLACE.rate("conversations.replies") == 1
    assert NON_MARKETPLACE.rate(USERS_INFO) == 100
    assert (
        NON_MARKETPLACE.history_page_size,
        NON_MARKETPLACE.replies_page_size,
        NON_MARKETPLACE.max_page_size,
    ) == (15, 15, 15)


def test_profile_for_setting_values() -> None:
    assert profile_for("internal") is INTERNAL
    assert profile_for(" NON_MARKETPLACE ") is NON_MARKETPLACE
    with pytest.raises(ValueError, match="internal, non_marketplace"):
        profile_for("marketplace")


def test_profile_scaled_and_frozen() -> None:
    fast = INTERNAL.scaled(1.0)
    assert fast.seconds_per_minute == 1.0 and INTERNAL.seconds_per_minute == 60.0
    assert fast.interval(HISTORY) == pytest.approx(0.02)
    assert fast.calls_per_minute == INTERNAL.calls_per_minute
    with pytest.raises(AttributeError):
        INTERNAL.history_page_size = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        INTERNAL.calls_per_minute[HISTORY] = 999  # type: ignore[index]
    with pytest.raises(ValueError):
        RateProfile("bad", {}, history_page_size=20, replies_page_size=20, max_page_size=15)


# -- pacing --------------------------------------------------------------------------------------
async def test_pacer_never_exceeds_rate_in_any_window() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    (starts,) = await vt.run(starts_of(vt, pacer, HISTORY, 160))
    assert max_in_window(starts, 60.0) == 50
    # Throughput stays within the 1 % margin of the tier: a window's worth every 60.6 s, the
    # 160th call in the 4th window, floor(159 / 50) windows after the first.
    assert starts[-1] == pytest.approx(3 * 60 * 1.01)
    assert starts == pytest.approx([60 * 1.01 * (i // 50) for i in range(160)])


async def test_pacer_spends_the_window_without_spacing() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    (starts,) = await vt.run(starts_of(vt, pacer, USERS_INFO, 20))
    assert starts == [0.0] * 20  # Tier 4: 100 a minute, so 20 calls need no wait at all
    stats = pacer.stats()[USERS_INFO]
    assert (stats.calls, stats.waits, stats.wait_seconds, stats.spaced) == (20, 0, 0.0, False)


async def test_pacer_no_wait_when_callers_are_slower_than_the_rate() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)

    async def slow_caller() -> None:
        for _ in range(5):
            await pacer.acquire(HISTORY)
            await vt.sleep(5.0)  # slower than 1.2 s per call

    await vt.run(slow_caller())
    stats = pacer.stats()[HISTORY]
    assert (stats.calls, stats.waits, stats.wait_seconds) == (5, 0, 0.0)


async def test_pacer_serves_concurrent_callers_fifo() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    order: list[int] = []

    async def caller(i: int, arrive: float) -> None:
        await vt.sleep(arrive)
        await pacer.acquire(HISTORY)
        order.append(i)

    async def fill_window() -> None:
        for _ in range(50):
            await pacer.acquire(HISTORY)

    # The window is full at t=0; arrivals interleave with waits: 0..4 at t=0, 5..9 while the
    # queue is still waiting for the window.
    await vt.run(fill_window(), *(caller(i, 0.0 if i < 5 else 0.5 + 0.1 * i) for i in range(10)))
    assert order == list(range(10))
    assert pacer.stats()[HISTORY].calls == 60


async def test_pacer_methods_do_not_block_each_other() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    history, users = await vt.run(
        starts_of(vt, pacer, HISTORY, 10), starts_of(vt, pacer, USERS_INFO, 10)
    )
    assert isinstance(history, list) and isinstance(users, list)
    assert users == history == [0.0] * 10  # both within their own window
    # History's window full: users.info (Tier 4, its own window) is not held back at all.
    vt1 = VirtualTime()
    full = make_pacer(vt1)
    history1, users1 = await vt1.run(
        starts_of(vt1, full, HISTORY, 60), starts_of(vt1, full, USERS_INFO, 100)
    )
    assert history1[-1] == pytest.approx(60.6)  # type: ignore[index]
    assert users1 == [0.0] * 100
    # A non-Marketplace history crawl (1/min) leaves users.info at full speed.
    vt2 = VirtualTime()
    slow = make_pacer(vt2, NON_MARKETPLACE)
    history2, users2 = await vt2.run(
        starts_of(vt2, slow, HISTORY, 3), starts_of(vt2, slow, USERS_INFO, 3)
    )
    assert history2 == pytest.approx([0.0, 60.6, 121.2])  # type: ignore[arg-type]
    assert users2 == [0.0, 0.0, 0.0]


async def test_pacer_penalty_waits_retry_after_then_spaces_then_slows_down() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)

    async def scenario() -> list[float]:
        await pacer.acquire(HISTORY)  # t = 0
        pacer.penalize(HISTORY, 30.0)  # Slack said 429, Retry-After: 30
        starts = []
        for _ in range(3):
            await pacer.acquire(HISTORY)
            starts.append(vt.now)
        return starts

    (starts,) = await vt.run(scenario())
    # Retry-After honoured, then evenly spaced at the tier's rate (was: a burst of the window).
    assert starts == pytest.approx([30.0, 31.2, 32.4])  # type: ignore[arg-type]
    stats = pacer.stats()[HISTORY]
    assert stats.rate_limited == 1
    assert stats.retry_after_seconds == 30.0
    assert stats.spaced and stats.slowdown == 1.0
    assert pacer.interval(HISTORY) == pytest.approx(1.2)
    # A 429 while already spaced: Slack allows less than the tier, so the spacing widens.
    pacer.penalize(HISTORY, 0.0)
    assert pacer.stats()[HISTORY].slowdown == pytest.approx(1.25)
    assert pacer.interval(HISTORY) == pytest.approx(1.5)
    assert pacer.interval(USERS_INFO) == pytest.approx(0.6)  # other methods unaffected
    assert not pacer.stats().get(USERS_INFO, MethodStats()).spaced


async def test_pacer_penalty_is_capped() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0, max_slowdown=2.0)
    for _ in range(11):
        pacer.penalize(HISTORY, 1.0)
    assert pacer.stats()[HISTORY].slowdown == 2.0
    assert pacer.stats()[HISTORY].rate_limited == 11
    assert pacer.interval(HISTORY) == pytest.approx(2.4)


async def test_pacer_penalty_reaches_callers_already_waiting() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    starts: list[float] = []

    async def caller() -> None:
        await pacer.acquire(HISTORY)
        starts.append(vt.now)

    async def penalize_soon() -> None:
        await vt.sleep(0.5)  # while callers 51 and 52 wait for the window, until t = 60
        pacer.penalize(HISTORY, 100.0)

    await vt.run(*(caller() for _ in range(52)), penalize_soon())
    assert starts == pytest.approx([0.0] * 50 + [100.5, 101.7])


async def test_pacer_stats_count_waits() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    await vt.run(starts_of(vt, pacer, HISTORY, 101))  # 50 at 0, 50 at 60, 1 at 120
    stats = pacer.stats()[HISTORY]
    assert (stats.calls, stats.waits) == (101, 2)
    assert stats.wait_seconds == pytest.approx(120.0)
    assert pacer.total_wait_seconds == pytest.approx(120.0)


def test_pacer_rejects_large_margin() -> None:
    with pytest.raises(ValueError):
        Pacer(INTERNAL, margin=0.05)


async def test_pacer_sleep_overshoot_does_not_accumulate() -> None:
    """Spaced after a 429, a loop that wakes 0.1 s late on every sleep still averages the tier's
    pace."""
    vt = VirtualTime(overshoot=0.1)
    pacer = make_pacer(vt, margin=0.0)
    pacer.penalize(HISTORY, 0.0)
    (starts,) = await vt.run(starts_of(vt, pacer, HISTORY, 101))
    # Without a schedule it would be 100 * 1.3 = 130 s; the window check costs one overshoot.
    assert 100 * 1.2 < starts[-1] <= 100 * 1.2 + 0.2 + 1e-9
    assert max_in_window(starts, 60.0) <= 50


async def test_pacer_restarts_schedule_after_idle_without_catch_up() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)

    async def scenario() -> list[float]:
        await pacer.acquire(HISTORY)
        pacer.penalize(HISTORY, 0.0)  # spaced from now on
        await vt.sleep(100.0)  # idle: the slots that passed are not owed to anyone
        return await starts_of(vt, pacer, HISTORY, 3)

    (starts,) = await vt.run(scenario())
    assert starts == pytest.approx([100.0, 101.2, 102.4])  # type: ignore[arg-type]
