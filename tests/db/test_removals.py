"""Removals and their tombstones (`db.removals`, the trigger of revision 0005) and the edit guard of
the message upsert, on SQLite and PostgreSQL: what Slack deleted never comes back, an older copy
never overwrites a newer edit, whoever writes it and in whatever order."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import removals
from db.messages import upsert_messages_changed
from db.models import Message
from db.records import MessageRecord

W, C = "T1", "C1"


def message(ts: str, text: str = "hello there", edited: str | None = None) -> MessageRecord:
    return MessageRecord(W, C, "general", ts, None, "U1", "Ada", text, edited_ts=edited)


async def write(sessions: async_sessionmaker[AsyncSession], *records: MessageRecord) -> list[str]:
    async with sessions.begin() as s:
        await removals.lock_channels(s, W, {r.channel_id for r in records})
        return [ts for _c, ts in await upsert_messages_changed(s, list(records))]


async def stored(
    sessions: async_sessionmaker[AsyncSession],
) -> dict[str, tuple[str, str, str | None]]:
    async with sessions() as s:
        rows = await s.execute(
            select(Message.ts, Message.text, Message.channel_name, Message.edited_ts)
        )
        return {ts: (text, name, edited) for ts, text, name, edited in rows.all()}


async def test_a_deleted_message_never_comes_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await write(sessions, message("1.000001"), message("1.000002"))
    async with sessions.begin() as s:
        gone = await removals.remove_messages(s, W, C, ["1.000001", "9.999999"])
    assert gone == ["1.000001"]  # only what was stored is reported (its document goes too)
    # A run's page read before the deletion, or a late create or edit event: skipped, not counted.
    assert await write(sessions, message("1.000001"), message("1.000003")) == ["1.000003"]
    assert await write(sessions, message("1.000001", "edited later", edited="5.0")) == []
    assert set(await stored(sessions)) == {"1.000002", "1.000003"}


async def test_an_older_copy_never_overwrites_a_newer_edit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await write(sessions, message("2.000001", "second edit", edited="1700000200.000000"))
    assert (
        await write(sessions, message("2.000001", "first edit", edited="1700000100.000000")) == []
    )
    assert await write(sessions, message("2.000001", "original")) == []  # a page from before
    assert (await stored(sessions))["2.000001"][0] == "second edit"
    assert await write(sessions, message("2.000001", "third", edited="1700000300.000000")) == [
        "2.000001"
    ]


async def test_a_disqualified_copy_stays_out_until_a_newer_edit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await write(sessions, message("3.000001", "a real sentence"))
    async with sessions.begin() as s:
        out = await removals.remove_messages(
            s, W, C, ["3.000001"], reason=removals.DISQUALIFIED, edited_ts="1700000100.000000"
        )
    assert out == ["3.000001"]
    assert await write(sessions, message("3.000001", "a real sentence")) == []  # the old page
    assert await write(sessions, message("3.000001", "back again", edited="1700000200.000000"))
    assert (await stored(sessions))["3.000001"][0] == "back again"
    # A deletion overrides the disqualifying mark, whatever edit comes after it.
    async with sessions.begin() as s:
        await removals.remove_messages(s, W, C, ["3.000001"])
    assert await write(sessions, message("3.000001", "again", edited="1700000300.000000")) == []


async def test_channel_rename_and_deletion(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(
        sessions, message("4.000001"), message("4.000002"), replace(message("4.0"), channel_id="C2")
    )
    async with sessions.begin() as s:
        assert await removals.rename_channel(s, W, C, "announcements") == 2
        assert await removals.rename_channel(s, W, C, "announcements") == 0
    assert {v[1] for k, v in (await stored(sessions)).items() if k != "4.0"} == {"announcements"}
    async with sessions.begin() as s:
        assert await removals.remove_channel(s, W, C) == 2
    assert set(await stored(sessions)) == {"4.0"}
    # A late event of the deleted channel, or a run's page read before: kept out, any message.
    assert await write(sessions, message("4.000001"), message("4.000009")) == []
    assert await write(sessions, replace(message("4.1"), channel_id="C2")) == ["4.1"]


async def test_a_removal_and_a_concurrent_write_of_one_channel_never_both_miss(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The write lock per channel: whichever goes first, the deleted message ends up absent."""
    for round_ in range(10):
        ts = f"5.{round_:06d}"
        await write(sessions, message(ts))

        async def remove(ts: str = ts) -> None:
            async with sessions.begin() as s:
                await removals.lock_channels(s, W, [C])
                await removals.remove_messages(s, W, C, [ts])

        await asyncio.gather(write(sessions, message(ts, "a copy read before")), remove())
        assert ts not in await stored(sessions)
