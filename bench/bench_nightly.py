"""A nightly incremental run on a workspace of 200 channels with a few new messages each: the
calls it makes per method next to the minimum the data needs, and its wall time.

fakeslack serves the workspace from its own process, Tier limits enforced as sliding minutes
(`--compression`, default 10: a Slack minute lasts 6 s; `--compression 1` is real time). The
database (SQLite, embedded Chroma with the hashing embedding) is first filled unthrottled (limits
switched off through fakeslack's `/_fake/rate_limits`) by a run ending a day before the
workspace's `now`, as last night's run would have; then limits go back on, with empty windows,
and the nightly run (`incremental`, one day) is measured.

The minimum the data needs, from fakeslack's ground truth of the same generated workspace:
- conversations.history: per channel in scope, one walk from the thread lookback's start to now
  (pages of 200; at least one call): the new messages and the parents whose threads may have new
  replies come back together;
- conversations.replies: one call per thread with a reply newer than last night (pages beyond
  the first not counted);
- conversations.list: one per 200 visible channels; users.list: one per 200 users;
  conversations.join: none (joined last night).
`window_bound_s` is the sliding-window bound of the calls made, max over methods of
floor((calls − 1) ÷ allowance) minutes; `minimum_bound_s` the same for the minimum calls.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

from _common import NOW, fake_get, fake_post, fakeslack_process, make_engine, stores

import fakeslack
from fakeslack.ground_truth import channels_in_scope
from fakeslack.workspace import ts_key
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL, RateProfile

DAY = 86400
LOOKBACK_DAYS = 14  # EngineConfig's default thread_lookback_days
WORKSPACE = {"seed": 5, "channels": 200, "users": 60, "messages": 12000, "days": 14}


def minimum_calls(profile: RateProfile) -> tuple[dict[str, int], list[int]]:
    """The calls the data needs (see the module's docstring), and each channel's new messages."""
    ws = fakeslack.generate(
        WORKSPACE["seed"],
        users=WORKSPACE["users"],
        channels=WORKSPACE["channels"],
        messages=WORKSPACE["messages"],
        days=WORKSPACE["days"],
        now=NOW,
    )
    truth = fakeslack.ground_truth(ws, 1, now=NOW, lookback_days=LOOKBACK_DAYS)
    scope, _ = channels_in_scope(ws)
    since, start = ts_key(f"{NOW - DAY:.6f}"), ts_key(f"{NOW - (1 + LOOKBACK_DAYS) * DAY:.6f}")
    end = ts_key(f"{NOW:.6f}")
    history, new = 0, []
    for channel in scope:
        keys = channel.top.keys
        history += max(1, math.ceil(sum(1 for k in keys if start < k <= end) / 200))
        new.append(sum(1 for k in keys if since < k <= end))
    listed = sum(
        1
        for c in ws.channels.values()
        if not c.is_im and not c.is_archived and (not c.is_private or ws.bot_user_id in c.members)
    )
    assert profile.history_page_size == 200
    return {
        "conversations.history": history,
        "conversations.replies": len(truth.threads_with_replies),
        "conversations.list": math.ceil(listed / 200),
        "users.list": math.ceil(len(ws.users) / 200),
        "conversations.join": 0,
    }, new


def window_bound(calls: dict[str, int], profile: RateProfile) -> float:
    return max(
        (n - 1) // profile.rate(m) * profile.seconds_per_minute for m, n in calls.items() if n
    )


async def main(compression: float) -> None:
    profile = INTERNAL.scaled(60.0 / compression)
    async with (
        fakeslack_process(rate_limits=True, time_compression=compression, **WORKSPACE) as info,
        stores() as s,
    ):
        await fake_post(info, "rate_limits", {"enabled": False})
        seeded = await make_engine(info, s, INTERNAL.scaled(0.001)).run(
            RunRequest(info.team_id, 1, days=WORKSPACE["days"] - 1, now=NOW - DAY)
        )
        assert seeded.error is None, seeded
        await fake_post(info, "rate_limits", {"enabled": True})  # every window empty
        await fake_post(info, "reset_recording")
        engine = make_engine(info, s, profile)
        started = time.perf_counter()
        result = await engine.run(RunRequest(info.team_id, 2, days=1, incremental=True, now=NOW))
        wall = time.perf_counter() - started
        assert result.error is None, result
        counters = await fake_get(info, "counters")
    minimum, new = minimum_calls(profile)
    made = {m: result.calls.get(m, 0) for m in sorted(set(minimum) | set(result.calls))}
    pacing = engine.gateways.for_workspace(info.team_id).pacer.stats()
    new.sort()
    print(f"compression: {compression:g} (a Slack minute lasts {profile.seconds_per_minute:g} s)")
    print(f"channels_in_scope: {len(new)}")
    print(
        f"new_messages_per_channel: min {new[0]}, median {new[len(new) // 2]}, max {new[-1]}, "
        f"total {sum(new)}"
    )
    print(f"messages_stored: {result.messages_collected}")
    for method, n in made.items():
        need = minimum.get(method, 0)
        ratio = f"{n / need:.2f}" if need else "-"
        print(f"calls_{method}: {n} (minimum {need}, ratio {ratio})")
    print(f"wall_s: {wall:.2f}")
    print(f"window_bound_s: {window_bound(made, profile):.2f}")
    print(f"minimum_bound_s: {window_bound(minimum, profile):.2f}")
    print(f"wall_to_window_bound_ratio: {wall / max(window_bound(made, profile), 1e-9):.3f}")
    print(f"pacing_waits: {sum(st.waits for st in pacing.values())}")
    print(f"http_429: {sum(c.get('ratelimited', 0) for c in counters.values())}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compression", type=float, default=10.0)
    asyncio.run(main(p.parse_args().compression))
