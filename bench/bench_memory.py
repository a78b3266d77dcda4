"""Heap peak (tracemalloc) of one run at two workspace sizes, and their ratio: a streaming engine
keeps it nearly flat while the workspace grows 4x. The emulator runs in another thread but the
same process, so its own (growing) workspace is excluded by measuring only engine-side frames."""

from __future__ import annotations

import asyncio
import tracemalloc

from _common import NOW, engine_for

import fakeslack
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL


async def peak_for(messages: int) -> tuple[int, float]:
    ws = fakeslack.generate(2, users=60, channels=8, messages=messages, days=30, now=NOW)
    fake = fakeslack.FakeSlack(ws, rate_limits=False)
    fake.start_in_thread()  # its allocations happen on its own thread but are still traced
    try:
        async with engine_for(fake, INTERNAL.scaled(0.001)) as (engine, _):
            tracemalloc.start()
            tracemalloc.reset_peak()
            result = await engine.run(RunRequest(ws.team_id, 1, days=30, now=NOW))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        fake.stop_thread()
    return result.messages_written, peak / 1e6


async def main() -> None:
    small_n, small = await peak_for(4000)
    big_n, big = await peak_for(16000)
    print(f"small_messages: {small_n}")
    print(f"small_heap_peak_mb: {small:.1f}")
    print(f"large_messages: {big_n}")
    print(f"large_heap_peak_mb: {big:.1f}")
    print(f"heap_peak_ratio: {big / small:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
