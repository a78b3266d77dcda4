"""The checkpointed writer: a batch of page units (each a history page's kept messages and its
threads' replies) goes to SQL, then to Chroma, then moves the checkpoint of every channel the batch
touches, all inside one SQL transaction, so a crash anywhere keeps the whole batch or leaves every
unit of it to be fetched again. With the batch go its prunes (`PageRead`, `ThreadRead`): the
stored messages that a complete read of Slack no longer returned are removed in the same
transaction, so a redone batch redoes its removals too. Imports `db` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.messages import (
    Checkpoint,
    save_checkpoint,
    stored_replies_between,
    stored_top_level_between,
    upsert_messages_changed,
)
from db.records import MessageRecord
from db.removals import lock_channels, remove_messages
from db.session import writing
from db.vectors import VectorStore

# Documents per Chroma call (upserts and deletes), apart from `batch_size` (rows per SQL
# statement): Chroma's worker process serves one call at a time and a search waits for the write
# in flight, so this chunk is the longest a search waits behind a write. On a 100k collection
# (hashing embedding, 2 cores) an upsert of 200 documents took 320-390 ms (up to 650), of 100
# 150-220 ms, of 50 115-120 ms (up to 280), of 25 about 70 ms: about 20 ms a call plus 1.6-2 ms a
# document. bench/bench_search.py at 100k, search p99 during back-to-back 2,000-message batches:
# 200 -> 605 ms, 100 -> 400 ms, 50 -> 294 ms (idle about 100 ms); write_batch 578 -> 464 -> 415
# msg/s meanwhile (more searches served a second, on the same two cores). At 500k (the issue's
# size; idle p99 270-280 ms) 50 still missed the 600 ms bound (684 ms, 229 msg/s) and 25 met it
# (481 ms, 178 msg/s): the price is write throughput while searches run, below what one
# workspace's run can fetch at Tier 3 (50 history and 50 replies pages of 200 a minute: at most
# about 330 msg/s) once the collection is that large.
VECTOR_CHUNK: Final = 25


@dataclass(frozen=True, slots=True)
class PageRead:
    """One `conversations.history` page of a run's window, read completely: Slack's answer for
    every ts with `after < ts < before` (both exclusive) is `returned`. Its stored top-level
    messages (no `thread_ts`, or a parent) in that range that are not in `returned`, or that came
    back as a deleted parent's placeholder (`placeholders`: subtype `tombstone`, whose replies
    stay), are removed; and so are the stored replies, up to `replies_before`, of the threads whose
    parent lies in the range and is not returned at all (Slack drops a parent only once it has no
    replies left)."""

    workspace_id: str
    channel_id: str
    after: str
    before: str
    returned: frozenset[str]
    placeholders: frozenset[str]
    replies_before: str


@dataclass(frozen=True, slots=True)
class ThreadRead:
    """One thread's replies, read completely (every `conversations.replies` page) from `after`
    (exclusive): `returned` is every reply ts Slack gave; the thread's stored replies with
    `after < ts < before` not among them are removed."""

    workspace_id: str
    channel_id: str
    thread_ts: str
    after: str
    before: str
    returned: frozenset[str]


@dataclass(frozen=True, slots=True)
class Removal:
    """Stored messages of one channel to remove on Slack's word, applied after the batch's
    stores: deleted (`reason` DELETED), or made ones the filter drops by the edit `edited_ts`
    (DISQUALIFIED), as `db.removals.remove_messages` says."""

    workspace_id: str
    channel_id: str
    ts: tuple[str, ...]
    reason: str
    edited_ts: str | None = None


@dataclass(frozen=True, slots=True)
class BatchWritten:
    """What one batch did: rows inserted or changed, and stored messages removed by its prunes
    and removals."""

    written: int
    removed: int


async def write_batch(
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    records: Sequence[MessageRecord],
    checkpoints: Sequence[Checkpoint],
    *,
    batch_size: int = 200,
) -> int:
    """Store `records` and save `checkpoints` atomically; returns how many rows were inserted or
    changed (`write_pruned_batch` without prunes)."""
    outcome = await write_pruned_batch(
        sessions, vectors, records, checkpoints, (), batch_size=batch_size
    )
    return outcome.written


async def write_pruned_batch(
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    records: Sequence[MessageRecord],
    checkpoints: Sequence[Checkpoint],
    prunes: Sequence[PageRead | ThreadRead],
    *,
    removals: Sequence[Removal] = (),
    batch_size: int = 200,
) -> BatchWritten:
    """Apply `prunes`, store `records`, apply `removals` (after the stores: the live mirror's
    order) and save `checkpoints` atomically. Only the rows inserted or
    changed go to Chroma, so an identical re-run writes nothing there. `checkpoints` holds at
    most one per channel: the position of that channel's last unit in the batch. `batch_size`
    caps the rows of one SQL statement; a Chroma call carries at most `VECTOR_CHUNK` documents
    (fewer when `batch_size` is smaller).

    Order matters: Chroma is written inside the open SQL transaction, and the checkpoints are saved
    after it. If the process dies before the commit, SQL forgets the rows, the removals and the
    checkpoints, the units are fetched again, their rows come back as "changed", Chroma receives
    the same deterministic ids again (an idempotent upsert), and the removals find the same rows
    (a delete of an absent document is a no-op). A checkpoint therefore never moves before its
    rows and removals are in both stores.
    """
    step = max(1, batch_size)
    chunk = min(step, VECTOR_CHUNK)
    # A later copy of a message wins, as it would have in a later transaction.
    by_key = {(r.channel_id, r.ts): r for r in records}
    batch = list(by_key.values())
    channels: dict[str, set[str]] = {}
    for item in (*batch, *prunes, *removals):
        channels.setdefault(item.workspace_id, set()).add(item.channel_id)
    async with writing(sessions) as session:
        # One writer per channel at a time: a live deletion of a message in this batch either
        # lands before (its tombstone then keeps the copy out) or after (and removes it).
        for workspace_id, channel_ids in channels.items():
            await lock_channels(session, workspace_id, channel_ids)
        removed = await _prune(session, vectors, prunes, chunk)
        changed: list[tuple[str, str]] = []
        for start in range(0, len(batch), step):
            changed.extend(await upsert_messages_changed(session, batch[start : start + step]))
        # Short calls (`VECTOR_CHUNK`): the store's worker process serves one call at a time, so
        # a search (or another run's batch) waits at most one of them.
        fresh = [by_key[key] for key in dict.fromkeys(changed)]
        for start in range(0, len(fresh), chunk):
            await vectors.upsert(fresh[start : start + chunk])
        removed += await _remove(session, vectors, removals, chunk)
        for checkpoint in checkpoints:
            await save_checkpoint(session, checkpoint)
    return BatchWritten(written=len(set(changed)), removed=removed)


async def _remove(
    session: AsyncSession, vectors: VectorStore, removals: Sequence[Removal], step: int
) -> int:
    """Remove (with a tombstone each) the messages `removals` name, from SQL and from Chroma;
    returns how many stored rows went."""
    gone: dict[str, list[str]] = {}
    for removal in removals:
        rows = await remove_messages(
            session,
            removal.workspace_id,
            removal.channel_id,
            removal.ts,
            reason=removal.reason,
            edited_ts=removal.edited_ts,
        )
        gone.setdefault(removal.workspace_id, []).extend(
            f"{removal.channel_id}:{ts}"
            for ts in rows  # `MessageRecord.document_id`
        )
    for workspace_id, ids in gone.items():
        for start in range(0, len(ids), step):
            await vectors.delete(workspace_id, ids[start : start + step])
    return sum(len(ids) for ids in gone.values())


async def _prune(
    session: AsyncSession,
    vectors: VectorStore,
    prunes: Sequence[PageRead | ThreadRead],
    step: int,
) -> int:
    """Remove (with a tombstone each, `db.removals`) the stored messages the reads no longer
    found, from SQL and from Chroma; returns how many stored rows went."""
    gone: dict[tuple[str, str], list[str]] = {}
    threads: dict[tuple[str, str], dict[str, ThreadRead]] = {}
    for prune in prunes:
        key = (prune.workspace_id, prune.channel_id)
        if isinstance(prune, ThreadRead):
            threads.setdefault(key, {})[prune.thread_ts] = prune
            continue
        top = await stored_top_level_between(session, *key, after=prune.after, before=prune.before)
        missing = [ts for ts in top if ts not in prune.returned or ts in prune.placeholders]
        orphans = await stored_replies_between(
            session,
            *key,
            after=prune.after,
            before=prune.replies_before,
            threads_after=prune.after,
            threads_before=prune.before,
        )
        missing += [ts for thread_ts, ts in orphans if thread_ts not in prune.returned]
        gone.setdefault(key, []).extend(missing)
    for key, reads in threads.items():
        # One query per channel for all its threads read in this batch, then each thread's range.
        low = min((read.after for read in reads.values()), key=_ts_order)
        high = max((read.before for read in reads.values()), key=_ts_order)
        stored = await stored_replies_between(
            session, *key, after=low, before=high, thread_ts_list=list(reads)
        )
        for thread_ts, ts in stored:
            read = reads[thread_ts]
            inside = _ts_order(read.after) < _ts_order(ts) < _ts_order(read.before)
            if inside and ts not in read.returned:
                gone.setdefault(key, []).append(ts)
    removed = 0
    for (workspace_id, channel_id), ts_list in gone.items():
        rows = await remove_messages(session, workspace_id, channel_id, ts_list)
        removed += len(rows)
        ids = [f"{channel_id}:{ts}" for ts in rows]  # `MessageRecord.document_id`
        for start in range(0, len(ids), step):
            await vectors.delete(workspace_id, ids[start : start + step])
    return removed


def _ts_order(ts: str) -> tuple[int, int]:
    """Slack's `ts` text in numeric order ("1700000000.000100" -> (1700000000, 100))."""
    whole, _, frac = ts.partition(".")
    return int(whole or 0), int((frac + "000000")[:6] or 0)


async def write_unit(
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    records: Sequence[MessageRecord],
    checkpoint: Checkpoint,
    *,
    batch_size: int = 200,
) -> int:
    """One unit alone: `write_batch` with a single checkpoint."""
    return await write_batch(sessions, vectors, records, [checkpoint], batch_size=batch_size)
