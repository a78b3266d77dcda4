"""Unthrottled end-to-end ingest: fakeslack without rate limits (in its own process) serving a
generated workspace of ~365k messages, of which ~208k are in the 30-day window and kept.

Prints, one `name: value` per line:
- `ingest_messages_per_s`: rows written by `BackfillEngine.run` ÷ its wall time (users.list,
  conversations.list, joins, every history page, every thread, SQLite and embedded Chroma with the
  hashing embedding);
- `chroma_upsert_messages_per_s`: Chroma's own ceiling in the same run: the very same documents,
  upserted into a fresh embedded Chroma collection with the same embedding, in exactly the batch
  sizes the engine's writer used (recorded during the run), one call after the other and nothing
  else running; `ingest_to_chroma_ratio` is the quotient (1.0 = the engine costs nothing on top of
  Chroma);
- `baseline_messages_per_s`: a seed-style loop, implemented below as honestly as we could write it
  naively: channels one after the other, `conversations.history` (all pages) into a list, then
  `conversations.replies` (all pages) for every message that has a thread, then one INSERT per
  message (one commit per channel, which favours the baseline) and one Chroma upsert per message.
  It uses the same filter, mention rendering, SQLite schema and Chroma embedding. It runs on a
  smaller workspace (`BASELINE_MESSAGES`, a smaller Chroma index than the main run, which also
  favours it) because at its pace the full workspace would take far too long;
  `speedup_vs_baseline` is our rate ÷ its rate.

Chroma's embedded upsert holds the GIL for nearly all of its native work, so the store runs it
in a worker process of its own (`db.chroma_worker`); the ceiling goes through the same store,
so both figures pay the same pipe, and the ratio measures how little the engine adds.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from _common import (
    NOW,
    FakeSlackInfo,
    RecordingVectorStore,
    fakeslack_process,
    make_engine,
    stores,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import literal_column, select

from db.models import Message, utcnow
from db.records import MessageRecord
from db.vectors import ChromaVectorStore
from scheduler.backfill.engine import RunRequest, epoch_micros, ts_micros
from scheduler.backfill.filter import keep_message, render_mentions
from scheduler.backfill.profiles import INTERNAL
from scheduler.backfill.users import author_of, user_display_name

SEED, USERS, CHANNELS, DAYS = 1, 60, 12, 30
MESSAGES = 350_000  # generated; ~208k of them are in the window and kept
BASELINE_MESSAGES = 20_000  # generated for the baseline's smaller workspace (~12k kept)
UNTHROTTLED = INTERNAL.scaled(0.001)  # pacing effectively off


async def ours() -> tuple[int, float, list[int], list[MessageRecord], dict[str, int]]:
    async with (
        fakeslack_process(
            seed=SEED, messages=MESSAGES, channels=CHANNELS, users=USERS, days=DAYS
        ) as info,
        stores() as s,
    ):
        recording = RecordingVectorStore(s.vectors)
        engine = make_engine(info, s, UNTHROTTLED, vectors=recording)
        started = time.perf_counter()
        result = await engine.run(RunRequest(info.team_id, 1, days=DAYS, now=NOW))
        elapsed = time.perf_counter() - started
        assert result.error is None, result
        # The same documents, in the order they were inserted, for the ceiling measurement.
        t = Message.__table__
        async with s.sessions() as session:
            rows = (await session.execute(select(t).order_by(literal_column("rowid")))).all()
        records = [
            MessageRecord(
                r.workspace_id,
                r.channel_id,
                r.channel_name,
                r.ts,
                r.thread_ts,
                r.user_id,
                r.user_name,
                r.text,
            )
            for r in rows
        ]
    return result.messages_written, elapsed, recording.sizes, records, result.calls


async def chroma_ceiling(records: list[MessageRecord], sizes: list[int]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = await ChromaVectorStore.open(f"{tmp}/chroma", None, "hashing")
        try:
            started = time.perf_counter()
            at = 0
            for size in sizes:
                await store.upsert(records[at : at + size])
                at += size
            if at < len(records):
                await store.upsert(records[at:])
            elapsed = time.perf_counter() - started
        finally:
            await store.close()
    return len(records) / elapsed


async def baseline() -> tuple[int, float]:
    """The seed-style naive loop (see the module docstring)."""
    async with (
        fakeslack_process(
            seed=SEED, messages=BASELINE_MESSAGES, channels=CHANNELS, users=USERS, days=DAYS
        ) as info,
        stores() as s,
    ):
        started = time.perf_counter()
        written = await _naive_loop(info, s)
        elapsed = time.perf_counter() - started
    return written, elapsed


async def _naive_loop(info: FakeSlackInfo, s: Any) -> int:
    client = AsyncWebClient(token=info.bot_token, base_url=info.url)
    oldest, latest = f"{NOW - DAYS * 86400:.6f}", f"{NOW:.6f}"
    names: dict[str, str] = {}
    cursor = None
    while True:
        data = (await client.users_list(limit=200, cursor=cursor)).data
        for user in data["members"]:
            names[user["id"]] = user_display_name(user)
        cursor = data.get("response_metadata", {}).get("next_cursor")
        if not cursor:
            break
    channels = (
        await client.conversations_list(types="public_channel,private_channel", limit=200)
    ).data["channels"]
    written = 0
    window = (epoch_micros(NOW - DAYS * 86400), epoch_micros(NOW))
    for channel in channels:
        if channel.get("is_archived") or (channel.get("is_private") and not channel["is_member"]):
            continue
        if not channel.get("is_member"):
            await client.conversations_join(channel=channel["id"])
        history: list[dict[str, Any]] = []
        cursor = None
        while True:
            data = (
                await client.conversations_history(
                    channel=channel["id"], oldest=oldest, latest=latest, limit=200, cursor=cursor
                )
            ).data
            history.extend(data["messages"])
            cursor = data.get("response_metadata", {}).get("next_cursor")
            if not cursor:
                break
        everything: list[tuple[dict[str, Any], str | None]] = []
        for message in history:
            if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
                continue  # a broadcast: stored from its thread
            thread = message.get("thread_ts") if message.get("reply_count") else None
            everything.append((message, thread))
            if message.get("reply_count"):
                cursor = None
                while True:
                    data = (
                        await client.conversations_replies(
                            channel=channel["id"], ts=message["ts"], limit=200, cursor=cursor
                        )
                    ).data
                    everything.extend(
                        (m, message["ts"]) for m in data["messages"] if m["ts"] != message["ts"]
                    )
                    cursor = data.get("response_metadata", {}).get("next_cursor")
                    if not cursor:
                        break
        async with s.sessions() as session, session.begin():
            for message, thread in everything:
                if not window[0] < ts_micros(message["ts"]) <= window[1]:
                    continue
                if not keep_message(message, include_bots=False, min_text_chars=8):
                    continue
                user_id, user_name = author_of(message, names)
                record = MessageRecord(
                    info.team_id,
                    channel["id"],
                    channel["name"],
                    message["ts"],
                    thread,
                    user_id,
                    user_name,
                    render_mentions(message.get("text") or "", names),
                )
                await session.execute(
                    Message.__table__.insert().values(
                        workspace_id=record.workspace_id,
                        channel_id=record.channel_id,
                        channel_name=record.channel_name,
                        ts=record.ts,
                        thread_ts=record.thread_ts,
                        user_id=record.user_id,
                        user_name=record.user_name,
                        text=record.text,
                        stored_at=utcnow(),
                    )
                )
                await s.vectors.upsert([record])
                written += 1
    return written


async def main() -> None:
    n, elapsed, sizes, records, calls = await ours()
    ingest = n / elapsed
    print(f"messages_stored: {n}")
    print(f"history_calls: {calls.get('conversations.history', 0)}")
    print(f"replies_calls: {calls.get('conversations.replies', 0)}")
    print(f"ingest_wall_s: {elapsed:.1f}")
    print(f"ingest_messages_per_s: {ingest:.1f}")
    print(f"writer_chroma_upserts: {len(sizes)}")
    print(f"writer_mean_batch: {sum(sizes) / max(1, len(sizes)):.0f}")
    ceiling = await chroma_ceiling(records, sizes)
    del records
    print(f"chroma_upsert_messages_per_s: {ceiling:.1f}")
    print(f"ingest_to_chroma_ratio: {ingest / ceiling:.3f}")
    base_n, base_elapsed = await baseline()
    base = base_n / base_elapsed
    print(f"baseline_messages: {base_n}")
    print(f"baseline_messages_per_s: {base:.1f}")
    print(f"speedup_vs_baseline: {ingest / base:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
