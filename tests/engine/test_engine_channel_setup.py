"""The run's setup resolves the channel ids it was given with the one `conversations.list` walk, never
a `conversations.info` per id: ids Slack does not list (made up, deleted since, private without the
bot) are skipped as "not found", the real ones are walked and stored; a cancel between list pages
ends the setup at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.engine.engine_harness import (
    make_engine,
    make_gateway,
    request,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)


def readable(ws: object) -> list[str]:
    return sorted(
        c.id
        for c in ws.channels.values()  # type: ignore[attr-defined]
        if not c.is_im and not c.is_archived and not c.is_private and not c.deleted
    )


async def test_engine_unknown_ids_are_skipped_with_one_list_walk(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=3)
    real = readable(ws)[:2]
    made_up = [f"C0MADEUP{i:04d}" for i in range(1000)]
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        result = await run_engine(
            fake, stores, ws, days=30, channel_ids=[made_up[0], real[0], *made_up[1:], real[1]]
        )
        assert result.error is None and not result.cancelled
        assert fake.calls_of("conversations.info") == [], "a conversations.info call per id"
        walks = fake.calls_of("conversations.list")
        assert 1 <= len(walks) <= 2  # one walk of a 9-channel workspace: one or two pages
        assert not any(c.args.get("cursor") for c in walks[:1])
        skipped = {cid: reason for cid, _name, reason in result.channels_skipped}
        assert set(made_up) <= set(skipped)
        assert all("not found" in skipped[cid] for cid in made_up)
        assert result.channels_processed == 2
        stored = {channel for channel, _ts in await stored_rows(stores, ws.team_id)}
        assert stored == set(real)
        assert {c.args.get("channel") for c in fake.calls_of("conversations.history")} == set(real)


async def test_engine_cancel_during_the_list_walk_ends_the_setup(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=3)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        cancel = asyncio.Event()
        fake.faults.slow(0.5, method="conversations.list")
        gateway = make_gateway(fake)
        engine = make_engine(gateway, stores)
        run = asyncio.create_task(
            engine.run(
                request(ws, days=30, channel_ids=[f"C0MADEUP{i:04d}" for i in range(50)]),
                cancel=cancel,
            )
        )
        for _ in range(1000):  # until the setup's first Slack call went out (at most 10 s)
            if fake.calls_of("conversations.list") or fake.calls_of("conversations.info"):
                break
            await asyncio.sleep(0.01)
        cancel.set()
        result = await asyncio.wait_for(run, 30)
        fake.faults.clear()
        assert result.cancelled and result.error is None
        assert fake.calls_of("conversations.info") == []
        assert fake.calls_of("users.list") == [] and fake.calls_of("conversations.history") == []
