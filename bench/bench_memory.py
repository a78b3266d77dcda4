"""Python heap peak (tracemalloc) of one unthrottled run at two workspace sizes, 50k and 500k
generated messages (10x apart), and their ratio: an engine that streams keeps it flat.

fakeslack runs in a SEPARATE process (`python -m fakeslack … --no-rate-limits`), so its workspace
and recordings are not on this heap. SQL is real (SQLite in a temp dir). The vector store is a
no-op counting store: tracemalloc cannot see Chroma's native memory anyway, and what this benchmark
measures is whether the engine streams (bounded queue, one batch in flight) or accumulates.
"""

from __future__ import annotations

import asyncio
import tracemalloc

from _common import NOW, CountingVectorStore, fakeslack_process, make_engine, stores

from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

SMALL, LARGE = 50_000, 500_000


async def peak_for(messages: int) -> tuple[int, float, int]:
    async with (
        fakeslack_process(seed=2, messages=messages, channels=8, users=60, days=30) as info,
        stores(chroma=False) as s,
    ):
        counting = CountingVectorStore()
        engine = make_engine(info, s, INTERNAL.scaled(0.001), vectors=counting)
        tracemalloc.start()
        tracemalloc.reset_peak()
        result = await engine.run(RunRequest(info.team_id, 1, days=30, now=NOW))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.error is None, result
    return result.messages_written, peak / 1e6, counting.documents


async def main() -> None:
    small_n, small, _ = await peak_for(SMALL)
    print(f"small_generated_messages: {SMALL}")
    print(f"small_messages_stored: {small_n}")
    print(f"small_heap_peak_mb: {small:.1f}")
    big_n, big, _ = await peak_for(LARGE)
    print(f"large_generated_messages: {LARGE}")
    print(f"large_messages_stored: {big_n}")
    print(f"large_heap_peak_mb: {big:.1f}")
    print(f"heap_peak_ratio: {big / small:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
