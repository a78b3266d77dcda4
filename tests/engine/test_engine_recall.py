"""The engine end to end against fakeslack over HTTP, on SQLite and PostgreSQL with embedded
Chroma: exactly the ground truth is stored (late replies to old parents included), names and
mentions are rendered, one replies walk per thread, and an identical re-run writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import fakeslack
from tests.engine.engine_harness import (
    DAYS,
    NOW,
    checkpoints,
    chroma_ids,
    make_engine,
    make_gateway,
    request,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)


async def test_engine_recall_matches_ground_truth(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace()
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    assert truth.must_store and truth.threads_with_replies
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        result = await run_engine(fake, stores, ws)
        assert result.error is None and not result.cancelled
        rows = await stored_rows(stores, ws.team_id)
        stored = set(rows)
        assert truth.must_store - stored == set(), "recall below 100%"
        assert stored & truth.must_not_store == set()
        assert stored == truth.must_store
        # Late replies to parents older than the window are among them.
        oldest = NOW - DAYS * 86400
        late = [
            k for k, row in rows.items() if row[3] and row[3] != k[1] and float(row[3]) < oldest
        ]
        assert late, "no late reply to an old parent was stored"
        assert await chroma_ids(stores, ws.team_id, truth.must_not_store) == set()
        assert len(await chroma_ids(stores, ws.team_id, truth.must_store)) == len(truth.must_store)
        assert await stores.vectors.count(ws.team_id) == len(truth.must_store)
        # Exactly one replies walk per thread with a reply in scope.
        replies = fake.calls_of("conversations.replies")
        assert len(replies) == len(truth.threads_with_replies)
        assert {(c.args["channel"], c.args["ts"]) for c in replies} == truth.threads_with_replies
        # One users.list walk, never users.info.
        assert fake.calls_of("users.info") == []
        assert len(fake.calls_of("users.list")) >= 1
        assert result.channels_processed == len(truth.channels_in_scope)
        # Private channels the bot is not in are invisible to conversations.list; the archived
        # ones are listed and reported.
        assert {c for c, _, _ in result.channels_skipped} <= set(truth.channels_skipped)
        assert {c for c, _, r in result.channels_skipped if r == "archived"} == {
            c.id for c in ws.channels.values() if c.is_archived and not c.is_im and not c.deleted
        }
        assert all(reason for _, _, reason in result.channels_skipped)
        assert {c.args["channel"] for c in fake.calls_of("conversations.join")} == set(
            truth.channels_to_join
        )
        assert result.messages_collected == len(truth.must_store)
        assert {cp.phase for cp in await checkpoints(stores, ws.team_id)} == {"done"}


async def test_engine_names_and_mentions(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=11)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        await run_engine(fake, stores, ws)
        rows = await stored_rows(stores, ws.team_id)

    def name(user: dict) -> str:
        profile = user.get("profile") or {}
        return (
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user["id"]
        )

    names = {uid: name(u) for uid, u in ws.users.items()}
    raw = {(ch.id, ts): m for ch in ws.channels.values() for ts, m in ch.by_ts.items()}
    mentioned = 0
    for key, row in rows.items():
        message = raw[key]
        # columns: workspace_id, channel_id, ts, thread_ts, user_id, user_name, text, channel_name
        user_id, user_name, text, channel_name = row[4], row[5], row[6], row[7]
        assert channel_name == ws.channels[key[0]].name and not channel_name.startswith("#")
        if message.get("user"):
            assert user_id == message["user"]
            assert user_name == names.get(user_id, user_id)
        assert "<@" not in text
        for uid in re.findall(r"<@([UW][A-Z0-9]+)", message.get("text", "")):
            mentioned += 1
            assert "@" + names.get(uid, uid) in text
    assert mentioned, "the workspace had no mention to render"


async def test_engine_rerun_writes_nothing(database_url: str, tmp_path: Path) -> None:
    ws = small_workspace(seed=3)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        engine = make_engine(make_gateway(fake), stores)
        first = await engine.run(request(ws))
        before = await stored_rows(stores, ws.team_id)
        docs_before = await stores.vectors.count(ws.team_id)
        assert first.messages_written == len(before) > 0

        writes: list[int] = []
        real_upsert = stores.vectors.upsert

        async def counting_upsert(records):  # type: ignore[no-untyped-def]
            writes.append(len(records))
            await real_upsert(records)

        stores.vectors.upsert = counting_upsert  # type: ignore[method-assign]
        second = await engine.run(request(ws, job_run_id=2))
        assert second.error is None
        assert await stored_rows(stores, ws.team_id) == before  # stored_at included
        assert await stores.vectors.count(ws.team_id) == docs_before
        assert writes == [], "an identical run wrote to Chroma"
        assert second.messages_written == 0
        # Threads whose replies are all stored already are not walked again.
        assert second.calls.get("conversations.replies", 0) < first.calls["conversations.replies"]
