"""Unthrottled end-to-end ingest (fakeslack without rate limits) in messages/s, next to Chroma's
own upsert ceiling measured in the same run on the same records, and their ratio."""

from __future__ import annotations

import asyncio
import time

from _common import NOW, engine_for

import fakeslack
from db.records import MessageRecord
from db.vectors import ChromaVectorStore
from scheduler.backfill.engine import RunRequest
from scheduler.backfill.profiles import INTERNAL

DAYS = 30


async def main() -> None:
    ws = fakeslack.generate(1, users=60, channels=12, messages=20000, days=30, now=NOW)
    async with fakeslack.FakeSlack(ws, rate_limits=False) as fake:
        async with engine_for(fake, INTERNAL.scaled(0.001)) as (engine, vectors):
            started = time.perf_counter()
            result = await engine.run(RunRequest(ws.team_id, 1, days=DAYS, now=NOW))
            elapsed = time.perf_counter() - started
            n = result.messages_written
            ids = [f"{c}:{ts}" for c, ts in fakeslack.ground_truth(ws, DAYS, now=NOW).must_store]
            docs = await vectors.get(ws.team_id, ids)
    records = [
        MessageRecord("TBENCH", *doc_id.split(":")[:1], "bench", doc_id.split(":")[1], None, "U1", "u", d["document"])
        for doc_id, d in docs.items()
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        store = await ChromaVectorStore.open(f"{tmp}/c", None, "hashing")
        started = time.perf_counter()
        for i in range(0, len(records), 200):  # same unit size as history pages
            await store.upsert(records[i : i + 200])
        chroma_elapsed = time.perf_counter() - started
        await store.close()
    ingest = n / elapsed
    ceiling = len(records) / chroma_elapsed
    print(f"messages_stored: {n}")
    print(f"ingest_messages_per_s: {ingest:.1f}")
    print(f"chroma_upsert_messages_per_s: {ceiling:.1f}")
    print(f"ingest_to_chroma_ratio: {ingest / ceiling:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
