"""The live mirror's service (`scheduler.mirror`) on real stores (SQLite and PostgreSQL, embedded
Chroma) with names from a fakeslack over HTTP: event bodies go in through `take_in` as the
listener middleware hands them over, the drainer applies them, SQL and Chroma end up as
design.md's "Live mirror" says — also for duplicates, out-of-order deliveries, a deletion racing
a run's page, and a drainer that died holding a batch."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import fakeslack
from db import inbox
from db.models import Message
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.stored_form import stored_form
from scheduler.backfill.writer import write_batch
from scheduler.mirror import LEASE_S, MirrorConfig, MirrorService
from scheduler.process_identity import Liveness, LivenessJudge
from tests.engine.engine_harness import Stores, make_gateway, slack_and_stores, small_workspace

_ids = itertools.count(1)


@dataclass
class Mirror:
    ws: fakeslack.Workspace
    stores: Stores
    service: MirrorService
    channel: str
    user: str
    gateway: SlackGateway  # the service's

    def body(
        self, event: dict[str, Any], *, event_id: str | None = None, team: str = ""
    ) -> dict[str, Any]:
        event = {"channel": self.channel, "channel_type": "channel", **event}
        return {
            "type": "event_callback",
            "team_id": team or self.ws.team_id,
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": 1_750_000_000,
            "event": event,
        }

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            await self.service.take_in(self.body(event))

    async def drain(self) -> None:
        while await self.service.drain_once():
            pass

    async def stored(self) -> dict[str, tuple[str, str | None, str]]:
        t = Message.__table__.c
        async with self.stores.sessions() as s:
            rows = await s.execute(
                select(t.ts, t.text, t.thread_ts, t.channel_name).where(
                    t.workspace_id == self.ws.team_id, t.channel_id == self.channel
                )
            )
            return {ts: (text, thread_ts, name) for ts, text, thread_ts, name in rows.all()}

    async def documents(self, *ts: str) -> dict[str, dict[str, Any]]:
        return await self.stores.vectors.get(self.ws.team_id, [f"{self.channel}:{t}" for t in ts])


@pytest.fixture
async def mirror(database_url: str, tmp_path: Path) -> AsyncIterator[Mirror]:
    ws = small_workspace(messages=50)
    channel = next(
        c for c in ws.channels.values() if ws.bot_user_id in c.members and not c.is_archived
    )
    user = next(u for u in ws.users if not ws.users[u].get("is_bot") and u != ws.bot_user_id)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):

        async def everything(_workspace: str) -> frozenset[str] | None:
            return None

        gateway = make_gateway(fake)
        service = MirrorService(
            stores.sessions,
            stores.vectors,
            gateway,
            MirrorConfig(min_text_chars=3),
            scope=everything,
            owner="test-drainer",
        )
        yield Mirror(ws, stores, service, channel.id, user, gateway)


def post(m: Mirror, ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "user": m.user, "text": text, "ts": ts, **extra}


def changed(m: Mirror, ts: str, text: str, edited: str, **extra: Any) -> dict[str, Any]:
    message = {"type": "message", "user": m.user, "text": text, "ts": ts, **extra}
    message["edited"] = {"user": m.user, "ts": edited}
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "message": message,
        "ts": edited,
    }


def deleted(ts: str, at: str = "1750000900.000000") -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "deleted_ts": ts,
        "ts": at,
    }


async def test_posts_replies_edits_and_deletions_reach_sql_and_chroma(mirror: Mirror) -> None:
    m = mirror
    await m.send(
        post(m, "1750000001.000100", "a first message for the mirror"),
        post(m, "1750000002.000100", "a reply in the thread", thread_ts="1750000001.000100"),
        post(m, "1750000003.000100", "ok"),  # trivial: the filter drops it, as a run would
        changed(m, "1750000001.000100", "the first message, fixed", "1750000100.000000"),
        post(m, "1750000004.000100", "soon gone from Slack"),
        deleted("1750000004.000100"),
    )
    await m.drain()
    stored = await m.stored()
    name = stored["1750000001.000100"][2]
    assert stored == {
        # The parent became a thread parent when its first reply came.
        "1750000001.000100": ("the first message, fixed", "1750000001.000100", name),
        "1750000002.000100": ("a reply in the thread", "1750000001.000100", name),
    }
    assert name == m.ws.channels[m.channel].name  # known from Slack (conversations.info)
    docs = await m.documents(*stored, "1750000004.000100")
    assert set(docs) == {f"{m.channel}:{ts}" for ts in stored}
    assert docs[f"{m.channel}:1750000001.000100"]["document"] == "the first message, fixed"
    assert docs[f"{m.channel}:1750000001.000100"]["metadata"]["thread_ts"] == "1750000001.000100"
    async with m.stores.sessions() as s:
        state = await inbox.status(s, m.ws.team_id, now=m.service._clock())
    assert state.backlog == 0 and state.applied_today == 6 and state.last_event_at is not None


async def test_an_edit_that_disqualifies_removes_and_a_newer_one_restores(mirror: Mirror) -> None:
    m = mirror
    ts = "1750000010.000100"
    await m.send(
        post(m, ts, "a message worth keeping"), changed(m, ts, ":+1:", "1750000100.000000")
    )
    await m.drain()
    assert ts not in await m.stored() and not await m.documents(ts)
    await m.send(changed(m, ts, "worth keeping again", "1750000200.000000"))
    await m.drain()
    assert (await m.stored())[ts][0] == "worth keeping again"


async def test_a_thread_parent_deleted_with_replies_goes_and_its_replies_stay(
    mirror: Mirror,
) -> None:
    m = mirror
    parent, reply = "1750000020.000100", "1750000021.000100"
    await m.send(
        post(m, parent, "the parent of a thread"),
        post(m, reply, "a reply that stays", thread_ts=parent),
    )
    await m.drain()
    tombstone = {
        "type": "message",
        "subtype": "tombstone",
        "text": "This message was deleted.",
        "user": "USLACKBOT",
        "hidden": True,
        "ts": parent,
        "thread_ts": parent,
        "reply_count": 1,
    }
    await m.send(
        {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "message": tombstone,
            "ts": "1750000300.000000",
        }
    )
    await m.drain()
    assert set(await m.stored()) == {reply}
    assert set(await m.documents(parent, reply)) == {f"{m.channel}:{reply}"}


async def test_duplicates_and_retries_are_applied_once(mirror: Mirror) -> None:
    m = mirror
    ts = "1750000030.000100"
    body = m.body(post(m, ts, "posted once, delivered three times"), event_id="EvDUPLICATE1")
    assert await m.service.take_in(body) is True
    assert await m.service.take_in(body) is False  # X-Slack-Retry-Num: 1, same event_id
    await m.drain()
    assert await m.service.take_in(body) is False  # after it was applied, too
    await m.drain()
    async with m.stores.sessions() as s:
        assert (await inbox.status(s, m.ws.team_id, now=m.service._clock())).applied_today == 1


async def test_out_of_order_deliveries_end_in_slacks_final_state(mirror: Mirror) -> None:
    m = mirror
    a, b = "1750000040.000100", "1750000041.000100"
    await m.send(
        changed(m, a, "the second edit", "1750000300.000000"),  # edits before the post
        changed(m, a, "the first edit", "1750000200.000000"),
        post(m, a, "the original text"),
        deleted(b),  # the deletion before the post
        post(m, b, "a message deleted before it arrived"),
        changed(m, b, "and edited after", "1750000400.000000"),
    )
    await m.drain()
    assert await m.stored() == {a: ("the second edit", None, (await m.stored())[a][2])}
    assert set(await m.documents(a, b)) == {f"{m.channel}:{a}"}


async def test_a_deletion_beats_a_runs_page_read_before_it(mirror: Mirror) -> None:
    """A run read the page before the deletion and writes it after: the deletion wins."""
    m = mirror
    ts = "1750000050.000100"
    await m.send(post(m, ts, "read by a run, then deleted"))
    await m.drain()
    page_copy = stored_form(
        m.ws.team_id, m.channel, "general", post(m, ts, "read by a run, then deleted"), None, {}
    )
    await m.send(deleted(ts))
    await m.drain()
    await write_batch(m.stores.sessions, m.stores.vectors, [page_copy], [])
    assert ts not in await m.stored() and not await m.documents(ts)


async def test_renames_and_channel_deletion(mirror: Mirror) -> None:
    m = mirror
    await m.send(post(m, "1750000060.000100", "before the rename"))
    await m.drain()
    await m.send({"type": "channel_rename", "channel": {"id": m.channel, "name": "renamed-room"}})
    await m.send(post(m, "1750000061.000100", "after the rename"))
    await m.drain()
    stored = await m.stored()
    assert {name for _text, _thread, name in stored.values()} == {"renamed-room"}
    docs = await m.documents(*stored)
    assert {d["metadata"]["channel_name"] for d in docs.values()} == {"renamed-room"}
    await m.send({"type": "channel_deleted", "channel": m.channel})
    await m.drain()
    assert await m.stored() == {} and await m.documents(*stored) == {}


async def test_direct_messages_other_workspaces_and_live_sync_off_change_nothing(
    mirror: Mirror,
) -> None:
    m = mirror
    dm = m.body(post(m, "1750000070.000100", "a direct message to the app"))
    dm["event"] = {**dm["event"], "channel": "D0123456", "channel_type": "im"}
    assert await m.service.take_in(dm) is False
    off = MirrorService(
        m.stores.sessions,
        m.stores.vectors,
        m.gateway,
        replace(m.service.config, live=False),
        scope=m.service._scope,
        owner="off",
    )
    assert (
        await off.take_in(m.body(post(m, "1750000071.000100", "while the mirror is off"))) is False
    )
    await m.drain()
    assert await m.stored() == {}


async def test_a_drainer_that_died_holding_a_batch_is_relieved_after_the_lease(
    mirror: Mirror,
) -> None:
    m = mirror
    ts = "1750000080.000100"
    await m.send(post(m, ts, "claimed by a drainer that then died"))
    now = m.service._clock()
    async with m.stores.sessions.begin() as s:
        assert len(await inbox.claim(s, "dead-drainer", now=now, lease_s=LEASE_S, limit=10)) == 1
    assert await m.service.drain_once() == 0  # still held: not applied twice at once
    later = now + timedelta(seconds=LEASE_S + 1)
    m.service._clock = lambda: later
    await m.drain()
    assert ts in await m.stored()


async def test_out_of_scope_channels_are_not_stored_but_deletions_apply(mirror: Mirror) -> None:
    m = mirror
    ts = "1750000090.000100"
    await m.send(post(m, ts, "stored while the channel is in scope"))
    await m.drain()

    async def elsewhere(_workspace: str) -> frozenset[str] | None:
        return frozenset({"C0OTHER"})

    m.service._scope = elsewhere
    await m.send(post(m, "1750000091.000100", "not in the schedule's channels"), deleted(ts))
    await m.drain()
    assert await m.stored() == {}


async def test_a_dead_drainers_claims_of_this_host_are_taken_back_at_once(mirror: Mirror) -> None:
    """A process killed right after acknowledging a burst: the restarted one does not wait out
    the lease for the events the dead one had claimed."""

    class DeadOrAlive(LivenessJudge):
        def judge(self, owner: str | None) -> Liveness:
            return Liveness.DEAD if owner == "killed-drainer" else Liveness.ALIVE

    m = mirror
    await m.send(post(m, "1750000100.000100", "held by a killed drainer"))
    await m.send(post(m, "1750000101.000100", "held by a live one", channel="C0OTHERCH"))
    now = m.service._clock()
    async with m.stores.sessions.begin() as s:
        [first] = await inbox.claim(s, "killed-drainer", now=now, lease_s=LEASE_S, limit=1)
    async with m.stores.sessions.begin() as s:
        [second] = await inbox.claim(s, "live-drainer", now=now, lease_s=LEASE_S, limit=1)
    assert second.channel_id == "C0OTHERCH"
    m.service._judge = DeadOrAlive("host", None)
    await m.drain()
    assert set(await m.stored()) == {first.payload["ts"]}
    async with m.stores.sessions() as s:
        assert await inbox.holders(s) == {"live-drainer"}  # the live one's claim is left to it


async def test_a_batch_that_failed_to_apply_is_tried_again_at_once(mirror: Mirror) -> None:
    """Chroma away for a moment while a batch is applied: the same drainer takes it again on its
    next round, without waiting out its own lease."""
    m = mirror
    ts = "1750000110.000100"
    await m.send(post(m, ts, "stored on the second try"))
    real_upsert = m.stores.vectors.upsert
    calls = 0

    async def flaky_upsert(records: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("Chroma away for a moment")
        await real_upsert(records)

    m.stores.vectors.upsert = flaky_upsert  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await m.service.drain_once()
    await m.drain()
    assert ts in await m.stored() and await m.documents(ts)
