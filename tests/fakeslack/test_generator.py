"""The workspace generator and the ground-truth oracle: determinism, realism, the day-boundary gap,
late replies to old parents, the storage rules, and a reference backfill through the real API."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, generate, is_noise, visible_text
from fakeslack.generator import SUBTYPES
from fakeslack.workspace import ts_key
from tests.fakeslack.helpers import NOW

DAY = 86400


def _dump(ws: Workspace) -> str:
    chans = {
        cid: {
            "name": c.name,
            "private": c.is_private,
            "archived": c.is_archived,
            "members": sorted(c.members),
            "messages": sorted(c.by_ts.items()),
        }
        for cid, c in ws.channels.items()
    }
    return json.dumps([ws.team_id, ws.bot_token, ws.users, chans], sort_keys=True, default=str)


def _all(ws: Workspace) -> list[dict]:
    return [m for c in ws.channels.values() for m in c.by_ts.values()]


def test_generator_is_deterministic_for_a_seed() -> None:
    a = generate(11, users=20, channels=9, messages=500, days=20, now=NOW)
    b = generate(11, users=20, channels=9, messages=500, days=20, now=NOW)
    c = generate(12, users=20, channels=9, messages=500, days=20, now=NOW)
    assert _dump(a) == _dump(b)
    assert _dump(a) != _dump(c)
    assert a.ground_truth(7).must_store == b.ground_truth(7).must_store


def test_default_workspace_has_every_subtype_and_realistic_content() -> None:
    ws = generate(3, now=NOW)
    msgs = _all(ws)
    subtypes = Counter(m.get("subtype") for m in msgs)
    for st in SUBTYPES:
        assert subtypes[st] > 0, st
    files = [m for m in msgs if m.get("subtype") == "file_share"]
    assert any(m["text"] for m in files) and any(not m["text"] for m in files)
    assert any("edited" in m for m in msgs)
    assert any(m["text"] in ("ok", ":+1:") for m in msgs)
    assert any(m["text"].endswith(":wave:") and m["text"].startswith("<@U") for m in msgs)
    assert any(5000 <= len(m["text"]) <= 20000 for m in msgs)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in m["text"]) for m in msgs)  # CJK
    assert any(any("\u0600" <= ch <= "\u06ff" for ch in m["text"]) for m in msgs)  # Arabic (RTL)
    assert any("<@U" in m["text"] and len(visible_text(m["text"])) >= 8 for m in msgs)
    assert any(m.get("bot_id") and not m.get("subtype") for m in msgs)  # app messages, no subtype
    for c in ws.channels.values():
        seen = {m["ts"] for m in c.by_ts.values()}
        assert len(seen) == len(c.by_ts)
        assert all(len(ts.split(".")[1]) == 6 and len(ts.split(".")[0]) == 10 for ts in seen)
    users = list(ws.users.values())
    assert sum(u["is_primary_owner"] for u in users) == 1
    assert any(u["is_admin"] and not u["is_owner"] for u in users)
    assert any(u["deleted"] for u in users)
    assert any(u["is_bot"] and u["profile"].get("bot_id") for u in users)
    assert len({u["tz"] for u in users}) >= 4
    assert any(not u["is_bot"] and u["profile"]["display_name"] == "" for u in users)
    assert ws.team_id.startswith("T0FAKE")
    chans = [c for c in ws.channels.values() if not c.is_im]
    bot = ws.bot_user_id
    assert any(c.is_private and bot in c.members for c in chans)
    assert any(c.is_private and bot not in c.members for c in chans)
    assert any(c.is_archived for c in chans)
    assert any(not c.is_private and not c.is_archived and bot not in c.members for c in chans)


@pytest.mark.parametrize("seed,now", [(1, NOW), (2, NOW + 0.5), (3, 1_700_012_345.678901)])
def test_no_message_near_a_day_boundary_or_now(seed: int, now: float) -> None:
    ws = generate(seed, users=15, channels=8, messages=3000, days=40, now=now)
    for m in _all(ws):
        t = ts_key(m["ts"]) / 1_000_000
        assert t <= now - 900, m["ts"]
        k = int((now - t) // DAY) + 1  # the boundary just after t
        assert not (now - k * DAY < t <= now - k * DAY + 900), (m["ts"], k)


def test_late_replies_to_old_parents_exist_on_both_sides_of_the_lookback() -> None:
    ws = generate(5, now=NOW)
    gt = ws.ground_truth(7)
    oldest = ts_key(str(NOW - 7 * DAY))
    lookback = ts_key(str(NOW - 21 * DAY))
    stored_old_parent = not_stored_too_old = 0
    for c in ws.channels.values():
        for parent_ts, rs in c.replies.items():
            p = ts_key(parent_ts)
            for r in rs.msgs:
                if ts_key(r["ts"]) <= oldest or r.get("subtype") == "thread_broadcast":
                    continue
                key = (c.id, r["ts"])
                if p <= oldest and key in gt.must_store:
                    assert p > lookback
                    stored_old_parent += 1
                if p <= lookback and c.id in gt.channels_in_scope:
                    assert key in gt.must_not_store
                    not_stored_too_old += 1
    assert stored_old_parent > 0 and not_stored_too_old > 0


def test_ground_truth_sets_are_disjoint_and_cover_the_channels_in_scope() -> None:
    ws = generate(8, now=NOW)
    store, not_store = ws.ground_truth(7)
    assert store and not_store and not (store & not_store)
    gt = ws.ground_truth(7)
    visible = {
        (c.id, ts) for c in ws.channels.values() if c.id in gt.channels_in_scope for ts in c.by_ts
    }
    assert store | not_store == visible
    skipped = set(gt.channels_skipped)
    assert all(
        ws.channels[cid].is_archived
        or (ws.channels[cid].is_private and ws.bot_user_id not in ws.channels[cid].members)
        for cid in skipped
    )
    assert not any(cid in skipped for cid, _ in store | not_store)


def test_noise_rules() -> None:
    assert visible_text("<@U123ABC> :wave:  <!here> ok") == "ok"
    assert visible_text("<@W0AB|bob> thanks :+1: :man-gesturing-ok: it's done") == "thanksit'sdone"
    assert is_noise({"text": "ok"})
    assert is_noise({"text": "<@U1> <@U2> :tada::tada:"})
    assert not is_noise({"text": "12345678"})
    assert is_noise({"text": "1234567"})
    assert is_noise({"text": "deploy finished fine", "bot_id": "B1"})
    assert not is_noise({"text": "deploy finished fine", "bot_id": "B1"}, include_bots=True)
    assert is_noise({"text": "deploy finished fine", "subtype": "bot_message"})
    for st in (
        "channel_join",
        "channel_topic",
        "group_purpose",
        "pinned_item",
        "tombstone",
        "channel_archive",
    ):
        assert is_noise({"text": "long enough text here", "subtype": st})
    assert not is_noise({"text": "long enough text here", "subtype": "thread_broadcast"})
    assert not is_noise({"text": "long enough text here", "subtype": "file_share"})
    assert is_noise({"text": "", "subtype": "file_share"})
    assert not is_noise({"text": "1234", "subtype": "me_message"}, min_text_chars=4)


def test_ground_truth_options() -> None:
    ws = generate(9, now=NOW)
    base = ws.ground_truth(7)
    with_bots = ws.ground_truth(7, include_bots=True)
    assert base.must_store < with_bots.must_store
    no_join = ws.ground_truth(7, auto_join=False)
    assert no_join.must_store < base.must_store and not no_join.channels_to_join
    one = base.channels_in_scope[0]
    archived = next(c.id for c in ws.channels.values() if c.is_archived)
    only = ws.ground_truth(7, channel_ids=[one, archived])
    assert only.channels_in_scope == [one] and {c for c, _ in only.must_store} <= {one}
    longer = ws.ground_truth(14)
    assert base.must_store < longer.must_store
    strict = ws.ground_truth(7, min_text_chars=30)
    assert strict.must_store < base.must_store
    assert ws.expected_calls(7)["conversations.replies"] == len(base.threads_with_replies) > 0


async def test_reference_backfill_through_the_api_matches_the_ground_truth() -> None:
    """A straightforward correct backfill over HTTP stores exactly must_store, with one replies call
    per thread with replies in scope."""
    days, lookback = 7, 14
    ws = generate(21, users=20, channels=9, messages=1500, days=30, now=NOW)
    gt = ws.ground_truth(days)
    oldest = NOW - days * DAY
    async with FakeSlack(ws, rate_limits=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        stored: set[tuple[str, str]] = set()
        async for page in await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=4
        ):
            for ch in page["channels"]:
                if not ch["is_member"]:
                    await client.conversations_join(channel=ch["id"])
                parents = []
                async for hist in await client.conversations_history(
                    channel=ch["id"],
                    oldest=f"{oldest - lookback * DAY:.6f}",
                    latest=f"{NOW:.6f}",
                    limit=200,
                ):
                    for m in hist["messages"]:
                        if float(m["ts"]) > oldest and not is_noise(m):
                            stored.add((ch["id"], m["ts"]))
                        if (
                            m.get("reply_count")
                            and float(m["latest_reply"]) > oldest
                            and m["thread_ts"] == m["ts"]
                        ):
                            parents.append(m["ts"])
                for parent in parents:
                    async for rep in await client.conversations_replies(
                        channel=ch["id"], ts=parent, oldest=f"{oldest:.6f}", limit=200
                    ):
                        for m in rep["messages"]:
                            if m["ts"] != parent and float(m["ts"]) > oldest and not is_noise(m):
                                stored.add((ch["id"], m["ts"]))
        assert stored == gt.must_store
        assert len(fake.calls_of("conversations.replies")) == len(gt.threads_with_replies)
        assert len(fake.calls_of("conversations.join")) == len(gt.channels_to_join)
