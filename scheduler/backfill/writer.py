"""The checkpointed writer: a batch of page units (each a history page's kept messages and its
threads' replies) goes to SQL, then to Chroma, then moves the checkpoint of every channel the batch
touches, all inside one SQL transaction, so a crash anywhere keeps the whole batch or leaves every
unit of it to be fetched again. Imports `db` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.messages import Checkpoint, save_checkpoint, upsert_messages_changed
from db.records import MessageRecord
from db.removals import lock_channels
from db.vectors import VectorStore


async def write_batch(
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    records: Sequence[MessageRecord],
    checkpoints: Sequence[Checkpoint],
    *,
    batch_size: int = 200,
) -> int:
    """Store `records` and save `checkpoints` atomically; returns how many rows were inserted or
    changed. Only those rows go to Chroma, so an identical re-run writes nothing there. `checkpoints` holds at most one per channel: the position of that
    channel's last unit in the batch. `batch_size` caps the rows of one SQL statement and of one Chroma upsert.

    Order matters: Chroma is written inside the open SQL transaction, and the checkpoints are saved
    after it. If the process dies before the commit, SQL forgets the rows and the checkpoints, the
    units are fetched again, their rows come back as "changed", and Chroma receives the same
    deterministic ids again (an idempotent upsert). A checkpoint therefore never moves before its
    rows are in both stores.
    """
    step = max(1, batch_size)
    # A later copy of a message wins, as it would have in a later transaction.
    by_key = {(r.channel_id, r.ts): r for r in records}
    batch = list(by_key.values())
    async with sessions() as session, session.begin():
        # One writer per channel at a time: a live deletion of a message in this batch either
        # lands before (its tombstone then keeps the copy out) or after (and removes it).
        for workspace_id in {r.workspace_id for r in batch}:
            await lock_channels(
                session,
                workspace_id,
                {r.channel_id for r in batch if r.workspace_id == workspace_id},
            )
        changed: list[tuple[str, str]] = []
        for start in range(0, len(batch), step):
            changed.extend(await upsert_messages_changed(session, batch[start : start + step]))
        # Short calls: the store's worker process serves one call at a time, so a search (or
        # another run's batch) waits at most one of them.
        fresh = [by_key[key] for key in dict.fromkeys(changed)]
        for start in range(0, len(fresh), step):
            await vectors.upsert(fresh[start : start + step])
        for checkpoint in checkpoints:
            await save_checkpoint(session, checkpoint)
    return len(set(changed))


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
