"""Workspace changes as Slack makes them (history afterwards, through the real slack_sdk client,
and the events they produce), and the seeded change stream: deterministic by seed, and its
predicted final state equal both to the emulator's state after applying it and to what a mirror
gets by applying the stream's events (in order, and shuffled) to the backfill's initial truth."""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, is_noise
from fakeslack.change_stream import ChangeStream, change_stream
from fakeslack.changes import TOMBSTONE_TEXT, Change
from fakeslack.ground_truth import Key, ground_truth
from fakeslack.workspace import ts_key
from tests.fakeslack.helpers import channel_where, member_channel


def kinds_of(fake: FakeSlack) -> list[tuple[str, str | None]]:
    return [(e["event"]["type"], e["event"].get("subtype")) for e in fake.event_envelopes]


async def history(client: AsyncWebClient, channel: str) -> dict[str, dict[str, Any]]:
    page = await client.conversations_history(channel=channel, limit=999)
    return {m["ts"]: m for m in page["messages"]}


# -- history after each change -----------------------------------------------------------------
async def test_an_edit_shows_in_history_with_edited(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    author = next(iter(sorted(ch.members - {workspace.bot_user_id})))
    msg = fake.post_message(ch.id, "The deploy is at noon", user=author)
    fake.edit_message(ch.id, msg["ts"], "The deploy is at two, not noon", at=float(msg["ts"]) + 60)
    shown = (await history(client, ch.id))[msg["ts"]]
    assert shown["text"] == "The deploy is at two, not noon"
    assert shown["edited"]["user"] == author
    assert ts_key(shown["edited"]["ts"]) == ts_key(msg["ts"]) + 60_000_000
    with pytest.raises(ValueError, match="cannot be edited"):
        fake.edit_message(ch.id, fake.post_message(ch.id, "x", subtype="channel_join")["ts"], "y")


async def test_a_deleted_message_leaves_history(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    msg = fake.post_message(ch.id, "Posted by mistake, deleted at once")
    fake.delete_message(ch.id, msg["ts"])
    assert msg["ts"] not in await history(client, ch.id)
    assert kinds_of(fake)[-1] == ("message", "message_deleted")
    with pytest.raises(KeyError):
        fake.delete_message(ch.id, msg["ts"])


async def test_a_thread_parent_with_replies_becomes_a_tombstone_and_its_replies_stay(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    parent = fake.post_message(ch.id, "Thread: the plan for the quarter")
    parent_ts = parent["ts"]
    first = fake.post_message(ch.id, "First answer in the thread", thread_ts=parent_ts)
    second = fake.post_message(ch.id, "Second answer in the thread", thread_ts=parent_ts)
    fake.delete_message(ch.id, parent_ts)

    tomb = (await history(client, ch.id))[parent_ts]
    assert tomb["subtype"] == "tombstone" and tomb["text"] == TOMBSTONE_TEXT
    assert tomb["user"] == "USLACKBOT" and tomb["hidden"] is True
    assert tomb["thread_ts"] == parent_ts and tomb["reply_count"] == 2
    thread = await client.conversations_replies(channel=ch.id, ts=parent_ts)
    assert [m["ts"] for m in thread["messages"]] == [parent_ts, first["ts"], second["ts"]]
    event = fake.event_envelopes[-1]["event"]
    assert event["subtype"] == "message_changed" and event["message"]["subtype"] == "tombstone"
    assert event["previous_message"]["text"] == "Thread: the plan for the quarter"

    # The last reply gone, the tombstone goes too (a message_deleted of the tombstone).
    fake.delete_message(ch.id, first["ts"])
    fake.delete_message(ch.id, second["ts"])
    assert parent_ts not in await history(client, ch.id)
    last, tomb_gone = (e["event"] for e in fake.event_envelopes[-2:])
    assert last["deleted_ts"] == second["ts"]
    assert tomb_gone["deleted_ts"] == parent_ts
    assert tomb_gone["previous_message"]["subtype"] == "tombstone"


async def test_a_parent_without_replies_is_simply_deleted(
    fake: FakeSlack, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    parent = fake.post_message(ch.id, "A thread that never was")
    reply = fake.post_message(ch.id, "An answer deleted first", thread_ts=parent["ts"])
    fake.delete_message(ch.id, reply["ts"])
    fake.delete_message(ch.id, parent["ts"])
    assert kinds_of(fake)[-1] == ("message", "message_deleted")
    assert parent["ts"] not in ch.by_ts


async def test_renames_deletions_and_joins_change_the_channels(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    public = member_channel(workspace)
    old = public.name
    fake.rename_channel(public.id, "quarterly-planning")
    info = (await client.conversations_info(channel=public.id))["channel"]
    assert info["name"] == "quarterly-planning" and old in info["previous_names"]
    line = (await history(client, public.id))[fake.event_envelopes[-1]["event"]["ts"]]
    assert line["subtype"] == "channel_name" and line["old_name"] == old
    with pytest.raises(ValueError, match="invalid channel name"):
        fake.rename_channel(public.id, "Not A Name")

    private = channel_where(workspace, private=True, archived=False, member=False)
    assert ws_hears_nothing(fake, lambda: fake.post_message(private.id, "Secret, bot not here"))
    fake.add_bot(private.id)
    assert kinds_of(fake)[-2:] == [("message", "channel_join"), ("member_joined_channel", None)]
    assert fake.event_envelopes[-1]["event"]["channel_type"] == "G"
    assert await history(client, private.id)  # readable now
    fake.rename_channel(private.id, "secret-renamed")
    assert kinds_of(fake)[-2][0] == "group_rename"

    fake.delete_channel(public.id)
    assert kinds_of(fake)[-1] == ("channel_deleted", None)
    with pytest.raises(SlackApiError) as info_err:
        await client.conversations_history(channel=public.id)
    assert info_err.value.response["error"] == "channel_not_found"


def ws_hears_nothing(fake: FakeSlack, act: Any) -> bool:
    before = len(fake.event_envelopes)
    act()
    return len(fake.event_envelopes) == before


# -- the change stream ---------------------------------------------------------------------------
def test_change_stream_is_deterministic_by_seed_and_mixes_every_kind(workspace: Workspace) -> None:
    one = change_stream(workspace, 2000, seed=11)
    again = change_stream(workspace, 2000, seed=11)
    other = change_stream(workspace, 2000, seed=12)
    assert one.changes == again.changes and one.expected == again.expected
    assert one.changes != other.changes
    kinds = one.kinds()
    assert len(one.changes) == 2000
    assert set(kinds) == {
        "post",
        "reply",
        "edit",
        "delete",
        "join",
        "bot",
        "rename",
        "delete_channel",
        "foreign",
    }
    assert kinds["delete_channel"] == 1
    assert one.notes["tombstones"] > 0
    assert one.notes["edits_to_noise"] > 0 and one.notes["edits_back"] > 0
    assert one.delivery["duplicate_rate"] > 0 and one.delivery["shuffle_window"] > 1
    # Changes round-trip as plain data (POST /_fake/changes).
    assert [Change.from_dict(c.to_dict()) for c in one.changes] == one.changes


@pytest.fixture
def stream(workspace: Workspace) -> ChangeStream:
    return change_stream(workspace, 2000, seed=4)


async def test_the_streams_prediction_is_the_emulators_final_state(
    fake: FakeSlack, client: AsyncWebClient, stream: ChangeStream
) -> None:
    initial_texts = texts_of(fake.workspace, stream.initial.must_store)
    assert fake.apply_changes(stream.changes) == 2000
    truth = fake.final_truth(stream.initial)
    assert truth == stream.expected
    assert truth.foreign and all(team == stream.foreign_team for team, _, _ in truth.foreign)
    # Something of each kind of outcome.
    assert truth.deleted_channels and truth.gone & stream.initial.must_store
    assert set(truth.messages) - stream.initial.must_store  # new messages kept
    edited = {k for k, t in truth.messages.items() if k in initial_texts and initial_texts[k] != t}
    assert edited
    # What the Web API answers agrees with the truth, message by message.
    for channel, name in truth.channel_names.items():
        info = (await client.conversations_info(channel=channel))["channel"]
        assert info["name"] == name
        shown = {}
        cursor = None
        while True:
            page = await client.conversations_history(channel=channel, limit=999, cursor=cursor)
            shown.update({m["ts"]: m for m in page["messages"]})
            cursor = page.get("response_metadata", {}).get("next_cursor")
            if not cursor:
                break
        for (cid, ts), text in truth.messages.items():
            if cid == channel and ts in shown:
                assert shown[ts]["text"] == text


async def test_replaying_the_streams_events_on_the_initial_truth_gives_the_final_truth(
    fake: FakeSlack, stream: ChangeStream
) -> None:
    ws = fake.workspace
    initial = texts_of(ws, stream.initial.must_store)
    names = {c: ws.channels[c].name for c in stream.initial.channels_in_scope}
    fake.apply_changes(stream.changes)
    envelopes = fake.event_envelopes
    assert len({e["event_id"] for e in envelopes}) == len(envelopes) > 2000
    expected = stream.expected
    in_order = Mirror(ws.team_id, initial, names).apply(envelopes)
    assert in_order.messages() == expected.messages
    assert in_order.names == expected.channel_names
    # Out of order too: every event carries what it needs (edited.ts, deletion markers).
    shuffled = list(envelopes)
    random.Random(9).shuffle(shuffled)
    mirror = Mirror(ws.team_id, initial, names).apply(shuffled + shuffled[:100])  # + duplicates
    assert mirror.messages() == expected.messages
    assert mirror.names == expected.channel_names


async def test_play_delivers_the_stream_out_of_order_with_duplicates(
    fake: FakeSlack, workspace: Workspace
) -> None:
    stream = change_stream(workspace, 300, seed=2, duplicate_rate=0.1)
    initial = texts_of(workspace, stream.initial.must_store)
    names = {c: workspace.channels[c].name for c in stream.initial.channels_in_scope}
    seen: list[dict[str, Any]] = []

    async def app(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(await request.json())
        return aiohttp.web.Response(status=200)

    web_app = aiohttp.web.Application()
    web_app.router.add_post("/slack/events", app)
    runner = aiohttp.web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
        fake.configure_events(mode="http", url=url, duplicate_delay=0.05)
        fake.play(stream)
        counters = await fake.events_settled(10)
    finally:
        await runner.cleanup()
    assert counters["duplicated"] > 0 and counters["failed"] == 0
    assert len(seen) == counters["queued"] == len(fake.event_envelopes) + counters["duplicated"]
    teams = {e["team_id"] for e in seen}
    assert teams == {workspace.team_id, stream.foreign_team}
    mirror = Mirror(workspace.team_id, initial, names).apply(seen)
    assert mirror.messages() == stream.expected.messages
    assert mirror.names == stream.expected.channel_names


# -- helpers: the backfill's initial copy, and a reference mirror of the events -----------------
def texts_of(ws: Workspace, keys: set[Key]) -> dict[Key, str]:
    return {k: str(ws.channels[k[0]].by_ts[k[1]].get("text", "")) for k in keys}


class Mirror:
    """What a correct app does with the events, order-independently: per message the newest
    version wins (a new message's ts, an edit's `edited.ts`), a deletion or tombstone is final,
    noise is not kept, other workspaces are ignored, renames by `event_ts`."""

    def __init__(self, team: str, initial: dict[Key, str], names: dict[str, str]) -> None:
        self.team = team
        self.versions: dict[Key, tuple[int, str | None]] = {k: (0, t) for k, t in initial.items()}
        self.deleted: set[Key] = set()
        self.dead: set[str] = set()
        self.names = dict(names)
        self.renamed: dict[str, int] = {}

    def apply(self, envelopes: list[dict[str, Any]]) -> Mirror:
        for envelope in envelopes:
            if envelope["team_id"] == self.team:
                self.one(envelope["event"])
        for channel in self.dead:
            self.names.pop(channel, None)
        return self

    def one(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in ("channel_rename", "group_rename"):
            channel, when = event["channel"]["id"], ts_key(event["event_ts"])
            if when > self.renamed.get(channel, 0):
                self.renamed[channel] = when
                self.names[channel] = event["channel"]["name"]
        elif kind in ("channel_deleted", "group_deleted"):
            self.dead.add(event["channel"])
        elif kind == "message":
            channel, subtype = event["channel"], event.get("subtype")
            if subtype == "message_deleted":
                self.deleted.add((channel, event["deleted_ts"]))
            elif subtype == "message_changed":
                msg = event["message"]
                if msg.get("subtype") == "tombstone":
                    self.deleted.add((channel, msg["ts"]))
                else:
                    self.upsert((channel, msg["ts"]), ts_key(msg["edited"]["ts"]), msg)
            else:
                self.upsert((channel, event["ts"]), ts_key(event["ts"]), event)

    def upsert(self, key: Key, version: int, msg: dict[str, Any]) -> None:
        if version >= self.versions.get(key, (-1, None))[0]:
            self.versions[key] = (version, None if is_noise(msg) else msg["text"])

    def messages(self) -> dict[Key, str]:
        return {
            k: text
            for k, (_, text) in self.versions.items()
            if text is not None and k not in self.deleted and k[0] not in self.dead
        }


def test_ground_truth_of_a_fresh_workspace_is_the_initial_truth(workspace: Workspace) -> None:
    stream = change_stream(workspace, 50, seed=1)
    assert stream.initial == ground_truth(workspace, 7)
