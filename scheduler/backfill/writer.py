"""The checkpointed writer: one page unit (a history page's kept messages and its threads'
replies) goes to SQL, then to Chroma, then moves the channel checkpoint, all inside one SQL
transaction, so a crash anywhere keeps the unit whole or leaves it to be fetched again.
Imports `db` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.messages import Checkpoint, save_checkpoint, upsert_messages_changed
from db.records import MessageRecord
from db.vectors import VectorStore


async def write_unit(
    sessions: async_sessionmaker[AsyncSession],
    vectors: VectorStore,
    records: Sequence[MessageRecord],
    checkpoint: Checkpoint,
    *,
    batch_size: int = 500,
) -> int:
    """Store `records` and save `checkpoint` atomically; returns how many rows were inserted or
    changed. Only those rows go to Chroma, so an identical re-run writes nothing there.

    Order matters: Chroma is written inside the open SQL transaction. If the process dies before
    the commit, SQL forgets the rows and the checkpoint, the unit is fetched again, its rows come
    back as "changed", and Chroma receives the same deterministic ids again (an idempotent upsert).
    """
    changed_total = 0
    async with sessions() as session, session.begin():
        by_key = {(r.channel_id, r.ts): r for r in records}
        batch = list(by_key.values())
        for start in range(0, len(batch), max(1, batch_size)):
            chunk = batch[start : start + max(1, batch_size)]
            changed = await upsert_messages_changed(session, chunk)
            if changed:
                await vectors.upsert([by_key[key] for key in changed])
                changed_total += len(changed)
        await save_checkpoint(session, checkpoint)
    return changed_total
