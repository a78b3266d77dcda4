"""The live mirror end to end (issue 13's "Done when"), on SQLite and PostgreSQL: the app in-process
on real HTTP (or Socket Mode) against fakeslack, whose workspace changes reach the app as Events
API deliveries, signed, retried, duplicated and out of order as Slack sends them. What is stored is
read back from SQL and Chroma and compared exactly with fakeslack's own account of the final state
(`final_truth`, taken after the stream was played).

- a 7-day backfill, then a stream of 2,000 mixed changes over HTTP (and 300 over Socket Mode): the
  store equals the emulator's final state, every message that must be there with its final text
  and channel name, nothing else, also with a channel deleted in the stream and a message event
  of that channel delivered after its deletion;
- a slow acknowledgement, a failed one and a duplicated delivery: one row, one count each;
- a deletion applied while a run holds a page it read before: the deletion wins.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.runtime import running_app
from db.messages import upsert_messages_changed
from db.records import MessageRecord
from fakeslack import ChangeStream, FakeSlack, FinalTruth, change_stream, generate, is_noise
from fakeslack.outgoing import slash_command_body
from scheduler.backfill import writer
from scheduler.backfill.gateway import HistoryPage, SlackGateway
from tests.scenarios.harness import Scenario, scenario_settings

DAYS = 7
APPLIED_WITHIN_S = 180.0  # the whole backlog, on two shared cores: generous
Key = tuple[str, str]  # (channel_id, ts)

# Slack's user mention markup, stored as `@display name` (design.md: as a backfill stores it).
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


# --- the app's side ----------------------------------------------------------------------------


async def command(s: Scenario, text: str, *, socket: bool = False) -> None:
    """`/backfill text` from the workspace's primary owner, over HTTP or as a Socket Mode
    `slash_commands` envelope (the same form fields, as a JSON object)."""
    if not socket:
        seen = await s.command(text, s.admin)
        assert seen.status == 200, seen
        return
    body = slash_command_body(
        text,
        team_id=s.team_id,
        user_id=s.admin,
        channel_id="C0SCENARIO",
        response_url=s.fake.new_response_url(s.admin, "C0SCENARIO"),
        trigger_id=s.fake.new_trigger_id(s.admin),
    )
    payload: dict[str, Any] = dict(parse_qsl(body))
    payload["api_app_id"] = s.fake.workspace.app_id
    ack = await s.fake.deliver("slash_commands", payload, timeout=10)
    assert ack["type"] == "slash_commands", ack


async def backfill(s: Scenario, *, socket: bool = False) -> float:
    """A manual run of the last `DAYS` days to success; the `now` its window ends at. The
    generated workspace's `now` is when it was generated, the app's clock the real one: the run's
    own window end (from its checkpoints) is what `change_stream` must be told, so that the
    stream's `initial` is exactly what this run stored."""
    await command(s, f"run days={DAYS}", socket=socket)
    run = await s.eventually(
        lambda: _first_run(s), timeout=30, what="the manual run to be recorded"
    )
    done = await s.wait_run_status(run["job_run_id"], "success", "failed", timeout=180)
    assert done["status"] == "success", done
    ends = await s.rows(
        "SELECT DISTINCT window_latest_ts FROM channel_checkpoints WHERE job_run_id = :id",
        id=run["job_run_id"],
    )
    assert len(ends) == 1, ends  # one window for every channel
    return float(ends[0]["window_latest_ts"])


async def _first_run(s: Scenario) -> dict[str, Any] | None:
    runs = await s.runs()
    return runs[0] if runs else None


async def inbox_size(s: Scenario) -> int:
    [row] = await s.inbox_rows("SELECT count(*) AS n FROM mirror_inbox")
    return int(row["n"])


async def mirror_caught_up(s: Scenario, timeout: float = APPLIED_WITHIN_S) -> None:
    """Every delivery acked or given up, then the inbox empty (the drainer deletes an event only
    once it is applied) and the mirror's own status agreeing."""
    counters = await s.fake.events_settled(timeout)
    assert counters["failed"] == 0, f"deliveries given up (events Slack would drop): {counters}"

    async def empty() -> bool:
        return await inbox_size(s) == 0

    await s.eventually(empty, timeout=timeout, what="the mirror's inbox to be empty")
    status = await s.rt.deps.mirror.status(s.team_id)  # type: ignore[union-attr]
    assert status.backlog == 0, status


# --- what is stored ------------------------------------------------------------------------------


def display_names(fake: FakeSlack) -> dict[str, str]:
    """Each user's name as Slack shows it: display name, else real name, else the id."""
    names = {}
    for uid, user in fake.workspace.users.items():
        profile = user.get("profile") or {}
        candidates = (profile.get("display_name"), profile.get("real_name"), user.get("real_name"))
        names[uid] = next((c.strip() for c in candidates if isinstance(c, str) and c.strip()), uid)
    return names


def as_stored(text: str, names: Mapping[str, str]) -> str:
    return _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)


def doc_id(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def _sample(items: Iterable[Any], n: int = 8) -> list[Any]:
    return sorted(items, key=str)[:n]


class StoreDiffers(AssertionError):
    """SQL or Chroma is not the emulator's final state."""


class DeletedChannelComesBack(StoreDiffers):
    """... and only because messages of a channel deleted in Slack are stored (again)."""


async def store_diff(s: Scenario, truth: FinalTruth) -> list[tuple[str, bool]]:
    """How SQL and Chroma differ from `truth` (empty when they equal it): a few examples of
    each kind of difference, for the failure message, each marked True when it is about
    messages of a deleted channel."""
    names = display_names(s.fake)
    want = {key: as_stored(text, names) for key, text in truth.messages.items()}
    rows = await s.rows("SELECT workspace_id, channel_id, ts, text, channel_name FROM messages")
    mine = {(r["channel_id"], r["ts"]): r for r in rows if r["workspace_id"] == s.team_id}
    problems: list[tuple[str, bool]] = []

    def report(what: str, found: Iterable[Any], deleted_channel: bool = False) -> None:
        found = list(found)
        if found:
            problems.append((f"{what}: {len(found)}, e.g. {_sample(found)}", deleted_channel))

    def in_deleted_channel(key: Key) -> bool:
        return key[0] in truth.deleted_channels

    # SQL.
    report(
        "rows of another workspace",
        [
            (r["workspace_id"], r["channel_id"], r["ts"])
            for r in rows
            if r["workspace_id"] != s.team_id
        ],
    )
    report("SQL missing", [(k, want[k]) for k in want.keys() - mine.keys()])
    extra = mine.keys() - want.keys()
    report("SQL holds messages of a deleted channel", filter(in_deleted_channel, extra), True)
    extra = {k for k in extra if not in_deleted_channel(k)}
    report("SQL holds what must be gone", [k for k in extra if k in truth.gone])
    report(
        "SQL holds what the emulator never had",
        [(k, mine[k]["text"]) for k in extra if k not in truth.gone],
    )
    report(
        "SQL text differs (stored, final)",
        [
            (k, mine[k]["text"], want[k])
            for k in want.keys() & mine.keys()
            if mine[k]["text"] != want[k]
        ],
    )
    report(
        "SQL channel_name differs (stored, final)",
        [
            (k, mine[k]["channel_name"], truth.channel_names.get(k[0]))
            for k in want.keys() & mine.keys()
            if mine[k]["channel_name"] != truth.channel_names.get(k[0])
        ],
    )
    foreign_keys = {(channel, ts) for _team, channel, ts in truth.foreign}
    report("SQL holds another workspace's message", [k for k in mine if k in foreign_keys])

    # Chroma: every wanted document with its final text and name, none of the gone ones, and
    # no more documents than wanted (so nothing else either).
    vectors = s.rt.vectors
    docs = await vectors.get(s.team_id, [doc_id(k) for k in want])
    report("Chroma missing", [k for k in want if doc_id(k) not in docs])
    report(
        "Chroma document differs (stored, final)",
        [
            (k, docs[doc_id(k)]["document"], want[k])
            for k in want
            if doc_id(k) in docs and docs[doc_id(k)]["document"] != want[k]
        ],
    )
    report(
        "Chroma channel_name differs (stored, final)",
        [
            (k, docs[doc_id(k)]["metadata"].get("channel_name"), truth.channel_names.get(k[0]))
            for k in want
            if doc_id(k) in docs
            and docs[doc_id(k)]["metadata"].get("channel_name") != truth.channel_names.get(k[0])
        ],
    )
    gone = await vectors.get(s.team_id, [doc_id(k) for k in truth.gone | foreign_keys])
    of_deleted = [d for d in gone if d.split(":")[0] in truth.deleted_channels]
    report("Chroma holds messages of a deleted channel", of_deleted, True)
    report("Chroma holds what must be gone", [d for d in gone if d not in of_deleted])
    count = await vectors.count(s.team_id)
    if count != len(want):
        problems.append(
            (
                f"Chroma holds {count} documents, {len(want)} expected",
                count == len(want) + len(gone),
            )
        )
    for team in sorted({team for team, _c, _t in truth.foreign}):
        if await vectors.count(team):
            problems.append((f"Chroma has a collection for another workspace {team}", False))
    return problems


async def assert_store_is(s: Scenario, truth: FinalTruth) -> None:
    problems = await store_diff(s, truth)
    if problems:
        error = (
            DeletedChannelComesBack
            if all(deleted_channel for _what, deleted_channel in problems)
            else StoreDiffers
        )
        raise error(
            "the store differs from the emulator's final state:\n"
            + "\n".join(what for what, _deleted_channel in problems)
        )


def out_of_order_deliveries(fake: FakeSlack) -> int:
    """First attempts delivered before an envelope built earlier (Slack's order inverted)."""
    built = {env["event_id"]: i for i, env in enumerate(fake.event_envelopes)}
    order = [built[a["event_id"]] for a in fake.events.attempts if a["attempt"] == 0]
    return sum(1 for a, b in itertools.pairwise(order) if b < a)


async def play_and_compare(
    s: Scenario,
    stream: ChangeStream,
    *,
    late: LateRetry | None = None,
    **delivery: Any,
) -> FinalTruth:
    """Deliver `stream` (out of order and with duplicates, as it says), wait until the mirror has
    applied everything, and compare the store with the emulator's final state."""
    s.fake.configure_events(**delivery)
    started = time.monotonic()
    assert s.fake.play(stream) == len(stream.changes)
    if late is not None:  # every envelope is built, none is sent yet (nothing awaited since)
        late.choose(s.fake.event_envelopes)
    await mirror_caught_up(s)
    applied_s = time.monotonic() - started
    truth = s.fake.final_truth(stream.initial)
    counters = s.fake.event_counters
    print(
        f"\n{len(stream.changes)} changes {dict(stream.kinds())} {dict(stream.notes)}; "
        f"deliveries {counters}; {out_of_order_deliveries(s.fake)} out of order; applied in "
        f"{applied_s:.1f} s; {len(truth.messages)} messages must be stored, "
        f"{len(truth.gone)} must not"
    )
    # The stream is the mix the issue asks for, and the truth is not trivially small.
    assert counters["duplicated"] > 0 and out_of_order_deliveries(s.fake) > 0
    assert truth.messages and truth.gone and truth.foreign
    if late is not None:
        late.check(s.fake)
    await assert_store_is(s, truth)
    return truth


def stores_a_message(event: Mapping[str, Any]) -> bool:
    """Whether a message event carries a message the mirror must store (as of that event)."""
    if event.get("type") != "message":
        return False
    if event.get("subtype") == "message_changed":
        message = event.get("message") or {}
        return message.get("subtype") != "tombstone" and not is_noise(message)
    return not event.get("subtype") and not event.get("hidden") and not is_noise(dict(event))


class LateRetry:
    """A message event of the channel the stream deletes, taken in only after the channel's
    deletion: when it comes first, the app refuses it with a 500 (as when the database does not
    answer) until `channel_deleted` has been taken in, and Slack's retry brings it after. The last
    event before the deletion that stores a message is chosen, so that the wait is short."""

    def __init__(self, s: Scenario, monkeypatch: pytest.MonkeyPatch, stream: ChangeStream) -> None:
        self.channel = next(c.channel for c in stream.changes if c.kind == "delete_channel")
        self.event_id: str | None = None
        self.refused = 0
        self.deleted = False
        self.taken_after_deletion: bool | None = None
        mirror = s.rt.deps.mirror
        assert mirror is not None
        take_in = mirror.take_in

        async def held_take_in(body: Mapping[str, Any]) -> bool:
            mine = body.get("event_id") == self.event_id
            if mine and not self.deleted:
                self.refused += 1
                raise RuntimeError("the database does not answer (a test holds this event)")
            fresh = await take_in(body)
            if mine and fresh:
                self.taken_after_deletion = self.deleted
            event = body.get("event") or {}
            if event.get("type") in DELETIONS and event.get("channel") == self.channel:
                self.deleted = True
            return fresh

        monkeypatch.setattr(mirror, "take_in", held_take_in)

    def choose(self, envelopes: list[dict[str, Any]]) -> None:
        chosen = None
        for env in envelopes:
            event = env["event"]
            if event.get("channel") != self.channel:
                continue
            if event.get("type") in DELETIONS:
                break
            if stores_a_message(event):
                chosen = env["event_id"]
        assert chosen is not None, "no message event before the channel's deletion"
        self.event_id = chosen

    def check(self, fake: FakeSlack) -> None:
        """The chosen event was taken in once, after the deletion (refused before it, if it came
        first), and Slack's last delivery of it was acknowledged."""
        outcomes = [
            (a["attempt"], a["outcome"])
            for a in fake.events.attempts
            if a["event_id"] == self.event_id
        ]
        assert self.taken_after_deletion is True, (self.refused, outcomes)
        assert outcomes[-1][1] == "acked", outcomes
        assert sum(o != "acked" for _attempt, o in outcomes) == self.refused, outcomes


DELETIONS = ("channel_deleted", "group_deleted")
# What the test with a channel deletion shows (design.md: "`channel_deleted` removes the
# channel's messages"; events arrive in any order and are retried).


# --- 1. a backfill, then 2,000 changes over signed HTTP ----------------------------------------


# With a deleted channel, a message event of that channel is made to come after the deletion (so
# that it always does): the channel's tombstone keeps it out (it came back before that fix).
DELETE_A_CHANNEL = pytest.mark.parametrize(
    "delete_a_channel",
    [
        pytest.param(False, id="channels-kept"),
        pytest.param(True, id="a-channel-deleted"),
    ],
)


@DELETE_A_CHANNEL
async def test_mirror_after_backfill_and_2000_events_equals_slacks_final_state(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, delete_a_channel: bool
) -> None:
    s = scenario
    now = await backfill(s)
    stream = change_stream(
        s.fake.workspace, n=2000, seed=13, days=DAYS, now=now, delete_a_channel=delete_a_channel
    )
    kinds = stream.kinds()
    for kind in ("post", "reply", "edit", "delete", "rename", "foreign"):
        assert kinds[kind] > 0, kinds
    assert kinds["delete_channel"] == int(delete_a_channel)
    assert stream.notes["tombstones"] > 0 and stream.notes["edits_to_noise"] > 0, stream.notes
    # What the backfill stored is exactly what the stream's `initial` assumes.
    await assert_store_is(s, initial_truth(s.fake, stream))
    late = LateRetry(s, monkeypatch, stream) if delete_a_channel else None
    await play_and_compare(
        s, stream, late=late, mode="http", url=s.url, retry_delays=(1.0, 5.0, 30.0)
    )


def initial_truth(fake: FakeSlack, stream: ChangeStream) -> FinalTruth:
    """What the backfill must have stored before the stream, in `FinalTruth`'s terms."""
    ws, initial = fake.workspace, stream.initial
    return FinalTruth(
        {k: str(ws.channels[k[0]].by_ts[k[1]].get("text", "")) for k in initial.must_store},
        set(initial.must_not_store),
        {c: ws.channels[c].name for c in initial.channels_in_scope},
    )


# --- 2. retries and duplicate event ids --------------------------------------------------------


async def test_mirror_retries_and_duplicate_event_ids_give_one_row(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scenario
    mirror = s.rt.deps.mirror
    assert mirror is not None
    ack_timeout = 1.0
    s.fake.configure_events(
        mode="http", url=s.url, ack_timeout=ack_timeout, retry_delays=(0.3, 0.6, 1.0)
    )
    channel = s.channels["general"]
    taken: list[tuple[str, bool]] = []  # (event_id, fresh) of every copy the app received
    real_take_in = mirror.take_in

    async def take_in(body: Mapping[str, Any]) -> bool:
        """The real intake, then (once each) an acknowledgement slower than Slack waits, or one
        that fails after the event was written: both make Slack send the event again."""
        fresh = await real_take_in(body)
        taken.append((str(body.get("event_id")), fresh))
        text = str((body.get("event") or {}).get("text") or "")
        if fresh and "[slow ack]" in text:
            await asyncio.sleep(ack_timeout + 1.0)
        if fresh and "[failed ack]" in text:
            raise RuntimeError("the acknowledgement fails after the event was taken in")
        return fresh

    monkeypatch.setattr(mirror, "take_in", take_in)
    applied_before = mirror.applied

    slow = s.fake.post_message(channel, "A message whose first ack is too slow [slow ack]")
    failed = s.fake.post_message(channel, "A message whose first ack fails [failed ack]")
    s.fake.configure_events(duplicate_rate=1.0)  # the same envelope twice, not as a retry
    twice = s.fake.post_message(channel, "A message Slack delivers twice over")
    s.fake.edit_message(channel, twice["ts"], "A message Slack delivers twice, edited twice over")
    s.fake.configure_events(duplicate_rate=0.0)
    await mirror_caught_up(s, timeout=60)

    envelopes = s.fake.event_envelopes[-4:]
    ids = [env["event_id"] for env in envelopes]
    attempts = {i: [a for a in s.fake.events.attempts if a["event_id"] == i] for i in ids}
    outcomes = {i: [(a["attempt"], a["duplicate"], a["outcome"]) for a in attempts[i]] for i in ids}
    # Slack's side: each event went at least twice, the last copy acknowledged.
    assert outcomes[ids[0]][:2] == [(0, False, "http_timeout"), (1, False, "acked")], outcomes
    assert outcomes[ids[1]][:2] == [(0, False, "http_error"), (1, False, "acked")], outcomes
    for i in ids[2:]:
        assert sorted(outcomes[i]) == [(0, False, "acked"), (0, True, "acked")], outcomes
    # The app's side: every copy reached the intake, exactly one of each was taken in.
    for i in ids:
        copies = [fresh for event_id, fresh in taken if event_id == i]
        assert len(copies) >= 2 and copies.count(True) == 1, (i, copies)
    assert mirror.applied - applied_before == len(ids)
    [state] = await s.inbox_rows(
        "SELECT applied_today FROM mirror_state WHERE workspace_id = :w", w=s.team_id
    )
    assert state["applied_today"] == len(ids)

    rows = await s.rows(
        "SELECT ts, text FROM messages WHERE workspace_id = :w AND channel_id = :c "
        "AND ts IN (:a, :b, :d)",
        w=s.team_id,
        c=channel,
        a=slow["ts"],
        b=failed["ts"],
        d=twice["ts"],
    )
    assert sorted((r["ts"], r["text"]) for r in rows) == sorted(
        [
            (slow["ts"], "A message whose first ack is too slow [slow ack]"),
            (failed["ts"], "A message whose first ack fails [failed ack]"),
            (twice["ts"], "A message Slack delivers twice, edited twice over"),
        ]
    )
    docs = await s.rt.vectors.get(
        s.team_id, [doc_id((channel, m["ts"])) for m in (slow, failed, twice)]
    )
    assert len(docs) == 3
    assert docs[doc_id((channel, twice["ts"]))]["document"] == (
        "A message Slack delivers twice, edited twice over"
    )


# --- 3. a deletion racing a run's page ---------------------------------------------------------


async def test_mirror_deletion_wins_over_a_runs_page_read_before_it(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = scenario
    s.fake.configure_events(mode="http", url=s.url)
    channel = s.channels["general"]
    doomed = s.fake.post_message(
        channel, "A message read by a run, then deleted before the run writes it", user=s.member
    )
    key = (channel, doomed["ts"])
    await mirror_caught_up(s, timeout=30)
    assert await _stored(s, key), "the post event was not applied"

    # The run's walk of `channel` holds the page with the message once Slack has answered it:
    # the message is read, not yet written, until the deletion has been applied.
    read, release = asyncio.Event(), asyncio.Event()
    pages_read_after: list[bool] = []
    real_pages = SlackGateway.history_pages

    async def held_pages(
        self: SlackGateway, channel_id: str, **kwargs: Any
    ) -> AsyncIterator[HistoryPage]:
        async for page in real_pages(self, channel_id, **kwargs):
            if channel_id == channel and not read.is_set():
                if any(m.get("ts") == doomed["ts"] for m in page.messages):
                    read.set()
                    await release.wait()
            elif channel_id == channel:
                pages_read_after.append(any(m.get("ts") == doomed["ts"] for m in page.messages))
            yield page

    monkeypatch.setattr(SlackGateway, "history_pages", held_pages)
    # What the writers hand to the database (the run's batches and the drainer's alike).
    written_after_release: list[Key] = []
    real_upsert = upsert_messages_changed

    async def watched_upsert(
        session: AsyncSession, records: Sequence[MessageRecord]
    ) -> list[tuple[str, str]]:
        if release.is_set():
            written_after_release.extend((r.channel_id, r.ts) for r in records)
        return await real_upsert(session, records)

    monkeypatch.setattr(writer, "upsert_messages_changed", watched_upsert)  # the writer's import
    await command(s, f"run days={DAYS} channels=<#{channel}|general>")
    await asyncio.wait_for(read.wait(), 60)

    s.fake.delete_message(channel, doomed["ts"])
    await mirror_caught_up(s, timeout=30)
    assert not await _stored(s, key)
    tombstone = await s.rows(
        "SELECT reason FROM message_tombstones WHERE workspace_id = :w AND channel_id = :c "
        "AND ts = :t",
        w=s.team_id,
        c=channel,
        t=doomed["ts"],
    )
    assert tombstone == [{"reason": "deleted"}]
    [running] = await s.runs()
    assert running["status"] == "running"  # the page is still in the run's hands

    release.set()
    done = await s.wait_run_status(running["job_run_id"], "success", "failed", timeout=120)
    assert done["status"] == "success", done
    assert done["messages_collected"] > 0
    assert not any(pages_read_after)  # later reads no longer see it: only the held page had it
    # The run did write its copy, after the deletion: the database kept it out.
    assert key in written_after_release
    assert not await _stored(s, key), "the run's page brought a deleted message back into SQL"
    assert not await s.rt.vectors.get(s.team_id, [doc_id(key)]), "... into Chroma"
    # The run did write the rest of its pages.
    others = await s.rows(
        "SELECT count(*) AS n FROM messages WHERE workspace_id = :w AND channel_id = :c",
        w=s.team_id,
        c=channel,
    )
    assert others[0]["n"] > 0


async def _stored(s: Scenario, key: Key) -> bool:
    rows = await s.rows(
        "SELECT ts FROM messages WHERE workspace_id = :w AND channel_id = :c AND ts = :t",
        w=s.team_id,
        c=key[0],
        t=key[1],
    )
    return bool(rows)


# --- 4. Socket Mode ----------------------------------------------------------------------------


@asynccontextmanager
async def socket_scenario(database_url: str, tmp_path: Path) -> AsyncIterator[Scenario]:
    """`start_scenario`'s workspace and app, the app in Socket Mode (an app-level token; Slack
    pushes everything through the WebSocket the app opens)."""
    workspace = generate(seed=11, users=30, channels=6, messages=1500, days=20)
    fake = FakeSlack(workspace, time_compression=60)
    await fake.start()
    try:
        settings = scenario_settings(fake, database_url, tmp_path, SLACK_APP_TOKEN=fake.app_token)
        assert settings.socket_mode
        async with (
            running_app(settings, rate_minute_seconds=1.0) as rt,
            aiohttp.ClientSession() as http,
        ):
            await fake.wait_socket_connections(1, timeout=30)
            s = Scenario(fake, rt, http)
            try:
                yield s
            finally:
                fake.faults.clear()
                fake.configure_events(mode="off")
    finally:
        await fake.stop()


@DELETE_A_CHANNEL
async def test_mirror_in_socket_mode_ends_in_slacks_final_state(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delete_a_channel: bool
) -> None:
    async with socket_scenario(database_url, tmp_path) as s:
        now = await backfill(s, socket=True)
        stream = change_stream(
            s.fake.workspace, n=300, seed=29, days=DAYS, now=now, delete_a_channel=delete_a_channel
        )
        assert stream.kinds()["delete_channel"] == int(delete_a_channel)
        late = LateRetry(s, monkeypatch, stream) if delete_a_channel else None
        await play_and_compare(s, stream, late=late, mode="socket", retry_delays=(1.0, 5.0, 30.0))
        assert s.fake.calls_of("apps.connections.open")
        # No HTTP delivery: every event went through the socket.
        assert all(a["status"] is None for a in s.fake.events.attempts)
