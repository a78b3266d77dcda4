"""Pacing and rate profiles on virtual time: exact, instant, no real sleeping."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.backfill.pacing import Pacer
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
    # Throughput stays within the 1 % margin of the tier: 159 gaps of 60/50 s.
    assert starts[-1] == pytest.approx(159 * 1.2 * 1.01)


async def test_pacer_spaces_calls_evenly_without_burst() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    (starts,) = await vt.run(starts_of(vt, pacer, USERS_INFO, 20))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert starts[0] == 0.0
    assert gaps == pytest.approx([0.6] * 19)
    assert max_in_window(starts, 60.0) <= 100


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

    # Arrivals interleave with waits: 0..4 at t=0, 5..9 while the queue is still draining.
    await vt.run(*(caller(i, 0.0 if i < 5 else 0.5 + 0.1 * i) for i in range(10)))
    assert order == list(range(10))
    assert pacer.stats()[HISTORY].calls == 10


async def test_pacer_methods_do_not_block_each_other() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    history, users = await vt.run(
        starts_of(vt, pacer, HISTORY, 10), starts_of(vt, pacer, USERS_INFO, 10)
    )
    assert isinstance(history, list) and isinstance(users, list)
    assert users[-1] == pytest.approx(9 * 0.6 * 1.01)  # users.info's own pace, Tier 4
    assert history[-1] == pytest.approx(9 * 1.2 * 1.01)  # history's, Tier 3
    # A non-Marketplace history crawl (1/min) leaves users.info at full speed.
    vt2 = VirtualTime()
    slow = make_pacer(vt2, NON_MARKETPLACE)
    history2, users2 = await vt2.run(
        starts_of(vt2, slow, HISTORY, 3), starts_of(vt2, slow, USERS_INFO, 3)
    )
    assert history2 == pytest.approx([0.0, 60.6, 121.2])  # type: ignore[arg-type]
    assert users2 == pytest.approx([0.0, 0.606, 1.212])  # type: ignore[arg-type]


async def test_pacer_penalty_waits_retry_after_then_slows_down() -> None:
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
    assert starts == pytest.approx([30.0, 31.5, 33.0])  # type: ignore[arg-type]
    stats = pacer.stats()[HISTORY]
    assert stats.rate_limited == 1
    assert stats.retry_after_seconds == 30.0
    assert stats.slowdown == pytest.approx(1.25)
    assert pacer.interval(HISTORY) == pytest.approx(1.5)
    assert pacer.interval(USERS_INFO) == pytest.approx(0.6)  # other methods unaffected


async def test_pacer_penalty_is_capped() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0, max_slowdown=2.0)
    for _ in range(10):
        pacer.penalize(HISTORY, 1.0)
    assert pacer.stats()[HISTORY].slowdown == 2.0
    assert pacer.stats()[HISTORY].rate_limited == 10
    assert pacer.interval(HISTORY) == pytest.approx(2.4)


async def test_pacer_penalty_reaches_callers_already_waiting() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    starts: list[float] = []

    async def caller() -> None:
        await pacer.acquire(HISTORY)
        starts.append(vt.now)

    async def penalize_soon() -> None:
        await vt.sleep(0.5)  # while caller 2 is waiting for t = 1.2
        pacer.penalize(HISTORY, 10.0)

    await vt.run(caller(), caller(), caller(), penalize_soon())
    assert starts == pytest.approx([0.0, 10.5, 12.0])


async def test_pacer_stats_count_waits() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)
    await vt.run(starts_of(vt, pacer, HISTORY, 4))
    stats = pacer.stats()[HISTORY]
    assert (stats.calls, stats.waits) == (4, 3)
    assert stats.wait_seconds == pytest.approx(3.6)
    assert pacer.total_wait_seconds == pytest.approx(3.6)


def test_pacer_rejects_large_margin() -> None:
    with pytest.raises(ValueError):
        Pacer(INTERNAL, margin=0.05)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=120),
    penalties=st.lists(st.tuples(st.integers(0, 119), st.floats(0.0, 5.0)), max_size=4),
)
def test_pacer_window_property(gaps: list[float], penalties: list[tuple[int, float]]) -> None:
    """Whatever the arrival pattern and penalties, no window of a minute sees more than N starts."""

    async def scenario() -> list[float]:
        vt = VirtualTime()
        pacer = make_pacer(vt, INTERNAL.scaled(6.0))
        due = dict(penalties)
        starts: list[float] = []

        async def caller(i: int, arrive: float) -> None:
            await vt.sleep(arrive)
            await pacer.acquire(HISTORY)
            starts.append(vt.now)
            if i in due:
                pacer.penalize(HISTORY, due[i])

        arrivals = list(itertools.accumulate(gaps))
        await vt.run(*(caller(i, t) for i, t in enumerate(arrivals)))
        return starts

    starts = asyncio.run(scenario())
    assert max_in_window(starts, 6.0) <= 50
    # Never a burst: a start that was late on its slot may shorten the next gap, by half at most.
    gaps_between = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert all(g >= 0.5 * 6.0 / 50 - 1e-9 for g in gaps_between)


async def test_pacer_sleep_overshoot_does_not_accumulate() -> None:
    """A loop that wakes 0.1 s late on every sleep still averages the tier's pace."""
    vt = VirtualTime(overshoot=0.1)
    pacer = make_pacer(vt, margin=0.0)
    (starts,) = await vt.run(starts_of(vt, pacer, HISTORY, 101))
    # Without a schedule it would be 100 * 1.3 = 130 s; the window check costs one overshoot.
    assert 100 * 1.2 < starts[-1] <= 100 * 1.2 + 0.2 + 1e-9
    assert max_in_window(starts, 60.0) <= 50


async def test_pacer_restarts_schedule_after_idle_without_catch_up() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt, margin=0.0)

    async def scenario() -> list[float]:
        await pacer.acquire(HISTORY)
        await vt.sleep(100.0)  # idle: the slots that passed are not owed to anyone
        return await starts_of(vt, pacer, HISTORY, 3)

    (starts,) = await vt.run(scenario())
    assert starts == pytest.approx([100.0, 101.2, 102.4])  # type: ignore[arg-type]
