"""The pacer's per-minute windows on virtual time: a method spends its tier's allowance in any
sliding minute as fast as its callers come, waits exactly until the oldest call leaves a full
window, holds one call in flight, and after a 429 waits out Retry-After and spaces its calls
evenly (logged once). A hypothesis test checks every rule over random call patterns."""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.backfill.pacing import Pacer
from scheduler.backfill.profiles import INTERNAL, NON_MARKETPLACE, RateProfile
from tests.engine.test_pacing import VirtualTime, make_pacer, max_in_window

HISTORY = "conversations.history"
REPLIES = "conversations.replies"
WINDOW = 60.0 * 1.01  # a minute and the default 1 % margin


@dataclass
class Call:
    method: str
    arrive: float
    start: float = -1.0
    end: float = -1.0


async def make_call(
    vt: VirtualTime,
    pacer: Pacer,
    call: Call,
    duration: float,
    retry_after: float | None = None,
    penalties: list[tuple[str, float, float]] | None = None,
) -> None:
    """Arrive, hold the method's turn while Slack "answers" (`duration`), report a 429 if told."""
    await vt.sleep(call.arrive)
    async with pacer.turn(call.method):
        call.start = vt.now
        await vt.sleep(duration)
        if retry_after is not None:
            pacer.penalize(call.method, retry_after)
            if penalties is not None:
                penalties.append((call.method, vt.now, retry_after))
        call.end = vt.now


async def test_pacer_window_full_waits_exactly_until_the_oldest_call_leaves() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    calls = [Call(HISTORY, 0.0) for _ in range(120)]
    await vt.run(*(make_call(vt, pacer, c, 0.25) for c in calls))
    starts = [c.start for c in calls]
    # One call in flight at a time: back to back, 0.25 s each, as long as the window has room.
    assert starts[:50] == pytest.approx([0.25 * i for i in range(50)])
    # The 51st waits for the 1st to leave the window: one window after Slack answered it.
    assert starts[50] == pytest.approx(calls[0].end + WINDOW)
    for i in range(50, 120):
        assert starts[i] == pytest.approx(max(calls[i - 1].end, calls[i - 50].end + WINDOW))
    assert max_in_window(starts, WINDOW) == 50
    stats = pacer.stats()[HISTORY]
    assert stats.calls == 120 and not stats.spaced
    assert stats.busy_seconds == pytest.approx(120 * 0.25)


async def test_pacer_small_run_makes_every_call_without_waiting() -> None:
    """40 history and 40 replies calls, fewer than a minute's allowance: no wait, no spacing."""
    vt = VirtualTime()
    pacer = make_pacer(vt)
    calls = [Call(m, 0.01 * i) for i in range(40) for m in (HISTORY, REPLIES)]
    await vt.run(*(make_call(vt, pacer, c, 0.005) for c in calls))
    assert [c.start for c in calls] == pytest.approx([c.arrive for c in calls])
    stats = pacer.stats()
    for method in (HISTORY, REPLIES):
        assert (stats[method].calls, stats[method].waits, stats[method].wait_seconds) == (40, 0, 0)
    assert pacer.total_wait_seconds == 0.0
    assert vt.now == pytest.approx(0.395)  # the last arrival and its own call, nothing more


async def test_pacer_after_429_spaces_evenly_never_before_retry_after() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    calls = [Call(HISTORY, 0.0) for _ in range(30)]
    penalties: list[tuple[str, float, float]] = []
    await vt.run(
        *(
            make_call(vt, pacer, c, 0.01, 7.0 if i == 10 else None, penalties)
            for i, c in enumerate(calls)
        ),
        *(make_call(vt, pacer, Call(REPLIES, 0.0), 0.01) for _ in range(30)),
    )
    [(_, answered, _)] = penalties
    starts = [c.start for c in calls]
    assert starts[:11] == pytest.approx([0.01 * i for i in range(11)])  # the burst, then a 429
    assert starts[11] == pytest.approx(answered + 7.0)  # Retry-After, not a moment earlier
    gaps = [b - a for a, b in itertools.pairwise(starts[11:])]
    assert gaps == pytest.approx([60 * 1.01 / 50] * 18)  # then the tier's rate, evenly
    stats = pacer.stats()
    assert stats[HISTORY].spaced and stats[HISTORY].rate_limited == 1
    assert stats[HISTORY].retry_after_seconds == 7.0
    assert stats[HISTORY].slowdown == 1.0
    assert not stats[REPLIES].spaced  # learned per method


async def test_pacer_429_warning_logged_once_per_method(caplog: pytest.LogCaptureFixture) -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    with caplog.at_level(logging.WARNING, logger="scheduler.backfill.pacing"):
        for _ in range(3):
            pacer.penalize(HISTORY, 1.0)
        pacer.penalize(REPLIES, 2.0)
    warnings = [r for r in caplog.records if r.name == "scheduler.backfill.pacing"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    assert HISTORY in warnings[0].getMessage() and REPLIES in warnings[1].getMessage()
    assert all("xox" not in r.getMessage() for r in warnings)
    assert pacer.stats()[HISTORY].rate_limited == 3


async def test_pacer_holds_one_call_in_flight_per_method() -> None:
    vt = VirtualTime()
    pacer = make_pacer(vt)
    history = [Call(HISTORY, 0.0) for _ in range(5)]
    replies = [Call(REPLIES, 0.0) for _ in range(5)]
    await vt.run(*(make_call(vt, pacer, c, 1.0) for c in history + replies))
    assert [c.start for c in history] == [0.0, 1.0, 2.0, 3.0, 4.0]  # in turn, FIFO
    assert [c.start for c in replies] == [0.0, 1.0, 2.0, 3.0, 4.0]  # alongside, not behind


async def test_pacer_ready_runs_before_the_start_is_recorded() -> None:
    """`ready` (the app's own requests first) may take time; the start is recorded after it,
    and a 429 reported meanwhile is honoured."""
    vt = VirtualTime()
    pacer = make_pacer(vt)

    async def ready() -> None:
        await vt.sleep(0.5)
        if pacer.stats()[HISTORY].calls == 1 and not pacer.stats()[HISTORY].rate_limited:
            pacer.penalize(HISTORY, 3.0)  # another caller's 429 lands while this one waits

    starts: list[float] = []

    async def one() -> None:
        async with pacer.turn(HISTORY, ready=ready):
            starts.append(vt.now)

    await vt.run(one(), one())
    # Penalised at 1.0 with Retry-After 3 s; at 4.0 `ready` again, and the start is at 4.5.
    assert starts == pytest.approx([0.5, 4.5])
    assert pacer.stats()[HISTORY].waits == 1


async def test_pacer_non_marketplace_one_call_a_minute() -> None:
    """1 call a minute, as before: the window holds one call, so the next starts a window after
    the previous one was answered."""
    vt = VirtualTime()
    pacer = make_pacer(vt, NON_MARKETPLACE)
    calls = [Call(HISTORY, 0.0) for _ in range(4)]
    await vt.run(*(make_call(vt, pacer, c, 0.3) for c in calls))
    assert [c.start for c in calls] == pytest.approx([i * (WINDOW + 0.3) for i in range(4)])
    assert max_in_window([c.start for c in calls], 60.0) == 1


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=0.3)),  # since previous
            st.floats(min_value=0.0, max_value=0.03),  # Slack's answer time
            st.sampled_from([HISTORY, HISTORY, REPLIES]),
        ),
        min_size=60,  # enough to fill a window now and then
        max_size=160,
    ),
    penalties=st.dictionaries(st.integers(0, 159), st.floats(0.0, 5.0), max_size=4),
)
def test_pacer_window_property(
    calls: list[tuple[float, float, str]], penalties: dict[int, float]
) -> None:
    """Whatever the arrival pattern, answer times and 429s: no more than the allowance in any
    window, no start before a Retry-After, one call in flight per method, FIFO, and until a 429
    every call starts as early as the window allows (no spacing)."""
    profile: RateProfile = INTERNAL.scaled(6.0)  # a 6 s "minute", 50 calls
    window, allowance = 6.0 * 1.01, 50

    async def scenario() -> tuple[list[Call], list[tuple[str, float, float]], Pacer]:
        vt = VirtualTime()
        pacer = make_pacer(vt, profile)
        arrivals = list(itertools.accumulate(gap for gap, _, _ in calls))
        made = [Call(method, t) for t, (_, _, method) in zip(arrivals, calls, strict=True)]
        seen: list[tuple[str, float, float]] = []
        await vt.run(
            *(
                make_call(vt, pacer, c, calls[i][1], penalties.get(i), seen)
                for i, c in enumerate(made)
            )
        )
        return made, seen, pacer

    made, seen, pacer = asyncio.run(scenario())
    interval = window / allowance
    for method in (HISTORY, REPLIES):
        mine = [c for c in made if c.method == method]
        if not mine:
            continue
        by_start = sorted(mine, key=lambda c: c.start)
        assert by_start == mine  # FIFO: started in order of arrival
        for a, b in itertools.pairwise(mine):
            assert b.start >= a.end - 1e-9  # one call in flight
        # The (i + N)-th call starts a window after the i-th was answered: whenever Slack
        # counted each, no window of its holds more than N.
        for a, b in zip(mine, mine[allowance:], strict=False):
            assert b.start >= a.end + window - 1e-9
        assert max_in_window([c.start for c in mine], window - 1e-9) <= allowance
        for m, at, retry_after in seen:
            if m == method:
                assert all(c.start >= at + retry_after - 1e-9 for c in mine if c.start > at)
        first_429 = min((at for m, at, _ in seen if m == method), default=float("inf"))
        for k, c in enumerate(mine):
            if c.start > first_429:
                break
            earliest = max(
                c.arrive,
                mine[k - 1].end if k else 0.0,
                mine[k - allowance].end + window if k >= allowance else 0.0,
            )
            assert c.start == pytest.approx(earliest, abs=1e-9)  # no spacing, no extra wait
        spaced = [c.start for c in mine if c.start > first_429]
        assert all(b - a >= 0.5 * interval - 1e-9 for a, b in itertools.pairwise(spaced))
        stats = pacer.stats()[method]
        assert stats.calls == len(mine)
        assert stats.spaced == (first_429 < float("inf"))
        assert stats.rate_limited == sum(1 for m, _, _ in seen if m == method)
