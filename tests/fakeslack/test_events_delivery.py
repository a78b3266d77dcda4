"""fakeslack's Events API delivery: signed HTTP POSTs to a local receiver (checked with slack_sdk's
own `SignatureVerifier`), Slack's retries (`X-Slack-Retry-Num`, `X-Slack-Retry-Reason`,
`X-Slack-No-Retry`), Socket Mode envelopes through slack_sdk's real client, duplicates, shuffled
order, another workspace's events, the counters, and the HTTP control routes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, generate
from fakeslack.events import EventsConfig
from tests.fakeslack.helpers import NOW, channel_where, member_channel

# What a policy answers for one request: status, headers, seconds to wait first.
Answer = tuple[int, dict[str, str], float]
FAST = {"retry_delays": (0.05, 0.05, 0.05)}
REPO = Path(__file__).resolve().parents[2]


class Receiver:
    """The app's side of HTTP delivery: records every request; `policy` decides the answer."""

    def __init__(self, secret: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.requests: list[dict[str, Any]] = []
        self.policy: Callable[[dict[str, Any]], Answer] = lambda request: (200, {}, 0.0)
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        record = {
            "headers": dict(request.headers),
            "body": json.loads(raw),
            "valid": self.verifier.is_valid(
                raw,
                request.headers.get("X-Slack-Request-Timestamp", ""),
                request.headers.get("X-Slack-Signature", ""),
            ),
        }
        self.requests.append(record)
        status, headers, delay = self.policy(record)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers)

    def event_ids(self) -> list[str]:
        return [r["body"]["event_id"] for r in self.requests]

    def attempts_of(self, event_id: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["body"]["event_id"] == event_id]


@pytest.fixture
async def receiver(workspace: Workspace) -> AsyncIterator[Receiver]:
    made = Receiver(workspace.signing_secret)
    app = web.Application()
    app.router.add_post("/slack/events", made.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    made.url = f"http://127.0.0.1:{port}/slack/events"
    try:
        yield made
    finally:
        await runner.cleanup()


@pytest.fixture
async def http_fake(fake: FakeSlack, receiver: Receiver) -> FakeSlack:
    fake.configure_events(mode="http", url=receiver.url, **FAST)
    return fake


def first_attempt(request: dict[str, Any]) -> bool:
    return "X-Slack-Retry-Num" not in request["headers"]


# -- HTTP: one signed POST per event -----------------------------------------------------------
async def test_each_change_reaches_the_app_once_signed_and_shaped_as_slack_sends_it(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    fake = http_fake
    ch = member_channel(workspace)
    outsider = channel_where(workspace, private=False, archived=False, member=False)
    parent = dict(fake.post_message(ch.id, "Who can review the migration plan today?"))
    reply = fake.post_message(ch.id, "I can take it after lunch", thread_ts=parent["ts"])
    fake.edit_message(ch.id, reply["ts"], "I can take it right now")
    lonely = fake.post_message(ch.id, "A message nobody answers, deleted soon")
    fake.delete_message(ch.id, lonely["ts"])
    fake.delete_message(ch.id, parent["ts"])  # has a reply: a tombstone
    fake.rename_channel(ch.id, "renamed-for-events")
    fake.add_bot(outsider.id)
    fake.post_bot_message(ch.id, "Deploy of build #12 finished successfully")
    fake.delete_channel(outsider.id)
    counters = await fake.events_settled(5)

    envelopes = fake.event_envelopes
    inner = [(e["event"]["type"], e["event"].get("subtype")) for e in envelopes]
    assert inner == [
        ("message", None),
        ("message", None),
        ("message", "message_changed"),
        ("message", None),
        ("message", "message_deleted"),
        ("message", "message_changed"),  # the tombstone
        ("channel_rename", None),
        ("message", "channel_name"),
        ("message", "channel_join"),
        ("member_joined_channel", None),
        ("message", "bot_message"),
        ("channel_deleted", None),
    ]
    # Every event once, signed, no retry headers; event ids unique.
    assert sorted(receiver.event_ids()) == sorted(e["event_id"] for e in envelopes)
    assert len(set(receiver.event_ids())) == len(envelopes) == 12
    for request in receiver.requests:
        assert request["valid"] is True
        assert request["headers"]["Content-Type"] == "application/json"
        assert "X-Slack-Retry-Num" not in request["headers"]
    assert counters == {
        "queued": 12,
        "delivered": 12,
        "acked": 12,
        "retried": 0,
        "failed": 0,
        "duplicated": 0,
        "pending": 0,
    }
    # The envelope, as §16.1 shows it.
    env = envelopes[0]
    assert env["type"] == "event_callback"
    assert env["team_id"] == workspace.team_id and env["api_app_id"] == workspace.app_id
    assert env["event_id"].startswith("Ev") and isinstance(env["event_time"], int)
    assert env["authorizations"] == [
        {
            "enterprise_id": None,
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "is_bot": True,
            "is_enterprise_install": False,
        }
    ]
    new = env["event"]
    assert new["channel"] == ch.id and new["channel_type"] == "channel"
    assert new["ts"] == new["event_ts"] == parent["ts"]
    assert new["text"] == "Who can review the migration plan today?"
    threaded = envelopes[1]["event"]
    assert threaded["thread_ts"] == parent["ts"] and threaded["parent_user_id"] == parent["user"]
    changed = envelopes[2]["event"]
    assert changed["hidden"] is True and changed["message"]["ts"] == reply["ts"]
    assert changed["message"]["text"] == "I can take it right now"
    assert changed["message"]["edited"]["ts"] == changed["event_ts"] == changed["ts"]
    assert changed["previous_message"]["text"] == "I can take it after lunch"
    deleted = envelopes[4]["event"]
    assert deleted["deleted_ts"] == lonely["ts"] and deleted["hidden"] is True
    assert deleted["previous_message"]["text"] == "A message nobody answers, deleted soon"
    tomb = envelopes[5]["event"]["message"]
    assert tomb["subtype"] == "tombstone" and tomb["ts"] == tomb["thread_ts"] == parent["ts"]
    assert tomb["user"] == "USLACKBOT" and tomb["reply_count"] == 1
    renamed = envelopes[6]["event"]["channel"]
    assert renamed["id"] == ch.id and renamed["name"] == "renamed-for-events"
    joined = envelopes[9]["event"]
    assert joined["user"] == workspace.bot_user_id and joined["channel"] == outsider.id
    assert joined["channel_type"] == "C" and joined["team"] == workspace.team_id
    assert envelopes[11]["event"] == {
        "type": "channel_deleted",
        "channel": outsider.id,
        "event_ts": envelopes[11]["event"]["event_ts"],
    }


async def test_a_500_then_200_is_retried_once_with_the_same_event_id(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    receiver.policy = lambda r: (500, {}, 0.0) if first_attempt(r) else (200, {}, 0.0)
    http_fake.post_message(member_channel(workspace).id, "This one needs a second try")
    counters = await http_fake.events_settled(5)
    first, retry = receiver.requests
    assert first["body"] == retry["body"]  # same body, same event_id
    assert retry["headers"]["X-Slack-Retry-Num"] == "1"
    assert retry["headers"]["X-Slack-Retry-Reason"] == "http_error"
    assert retry["valid"] is True
    assert counters["delivered"] == 2 and counters["retried"] == 1 and counters["acked"] == 1
    assert counters["failed"] == 0


async def test_an_answer_slower_than_the_ack_timeout_is_retried_as_http_timeout(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    http_fake.configure_events(ack_timeout=0.3)
    receiver.policy = lambda r: (200, {}, 0.8 if first_attempt(r) else 0.0)
    http_fake.post_message(member_channel(workspace).id, "A slow handler on the app's side")
    counters = await http_fake.events_settled(5)
    first, retry = receiver.requests
    assert retry["body"]["event_id"] == first["body"]["event_id"]
    assert retry["headers"]["X-Slack-Retry-Reason"] == "http_timeout"
    assert retry["headers"]["X-Slack-Retry-Num"] == "1"
    assert counters["acked"] == 1 and counters["retried"] == 1
    [timed_out, acked] = http_fake.events.attempts
    assert timed_out["outcome"] == "http_timeout" and acked["outcome"] == "acked"


def test_the_ack_timeout_defaults_to_slacks_3_seconds() -> None:
    assert EventsConfig().ack_timeout == 3.0
    assert len(EventsConfig().retry_delays) == 3


async def test_x_slack_no_retry_stops_the_retries(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    receiver.policy = lambda r: (503, {"X-Slack-No-Retry": "1"}, 0.0)
    http_fake.post_message(member_channel(workspace).id, "Please do not send this again")
    counters = await http_fake.events_settled(5)
    assert len(receiver.requests) == 1
    assert counters["failed"] == 1 and counters["retried"] == 0 and counters["acked"] == 0


async def test_an_event_is_retried_three_times_then_given_up(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    receiver.policy = lambda r: (404, {}, 0.0)
    http_fake.post_message(member_channel(workspace).id, "Nobody listens to this one")
    counters = await http_fake.events_settled(5)
    assert [r["headers"].get("X-Slack-Retry-Num") for r in receiver.requests] == [
        None,
        "1",
        "2",
        "3",
    ]
    assert len({r["body"]["event_id"] for r in receiver.requests}) == 1
    assert counters["failed"] == 1 and counters["delivered"] == 4 and counters["pending"] == 0


async def test_a_refused_connection_is_retried_as_connection_failed(
    fake: FakeSlack, workspace: Workspace
) -> None:
    fake.configure_events(mode="http", url="http://127.0.0.1:9/slack/events", **FAST)
    fake.post_message(member_channel(workspace).id, "Sent to a port nobody listens on")
    counters = await fake.events_settled(5)
    assert counters["failed"] == 1 and counters["retried"] == 3
    reasons = [a["retry_reason"] for a in fake.events.attempts]
    assert reasons == ["", "connection_failed", "connection_failed", "connection_failed"]


# -- many at once, duplicates, order, another workspace ------------------------------------------
async def test_many_changes_are_delivered_in_the_background(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    for i in range(300):
        http_fake.post_message(ch.id, f"Message number {i} of a quick burst")
    assert http_fake.event_counters["queued"] == 300  # posting did not wait for delivery
    counters = await http_fake.events_settled(10)
    assert counters["acked"] == 300 and len(set(receiver.event_ids())) == 300


async def test_duplicates_repeat_the_event_id_without_retry_headers(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    http_fake.configure_events(duplicate_rate=1.0, duplicate_delay=0.05)
    ch = member_channel(workspace)
    for i in range(5):
        http_fake.post_message(ch.id, f"Delivered twice, number {i}")
    counters = await http_fake.events_settled(5)
    assert Counter(receiver.event_ids()) == {e["event_id"]: 2 for e in http_fake.event_envelopes}
    assert all(first_attempt(r) for r in receiver.requests)
    assert counters["duplicated"] == 5 and counters["queued"] == 10 and counters["acked"] == 10


async def test_a_shuffle_window_delivers_out_of_order(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    http_fake.configure_events(concurrency=1, shuffle_window=8, seed=5)
    ch = member_channel(workspace)
    for i in range(40):
        http_fake.post_message(ch.id, f"Ordered message number {i}")
    await http_fake.events_settled(5)
    sent = [e["event_id"] for e in http_fake.event_envelopes]
    assert sorted(receiver.event_ids()) == sorted(sent)
    assert receiver.event_ids() != sent


async def test_events_of_another_workspace_carry_its_team(
    http_fake: FakeSlack, receiver: Receiver
) -> None:
    event = {
        "type": "message",
        "channel": "C0OTHERWS01",
        "channel_type": "channel",
        "user": "U0OTHERWS01",
        "text": "Hello from the other workspace",
        "ts": "1760000001.000100",
        "event_ts": "1760000001.000100",
    }
    envelope = http_fake.emit_event(event, team_id="T0OTHERWS01")
    await http_fake.events_settled(5)
    [request] = receiver.requests
    assert request["valid"] is True and request["body"] == envelope
    assert envelope["team_id"] == "T0OTHERWS01"
    assert envelope["authorizations"][0]["team_id"] == "T0OTHERWS01"
    assert envelope["authorizations"][0]["user_id"] != http_fake.workspace.bot_user_id


# -- what the Web API changes -------------------------------------------------------------------
async def test_the_apps_own_posts_edits_and_joins_are_events_too(
    http_fake: FakeSlack, receiver: Receiver, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    posted = await client.chat_postMessage(channel=ch.id, text="Posted by the app itself")
    await client.chat_update(channel=ch.id, ts=posted["ts"], text="Updated by the app itself")
    human = next(u for u, v in workspace.users.items() if not v["is_bot"] and not v["deleted"])
    await client.chat_postMessage(channel=human, text="A DM: no event (no message.im)")
    outsider = channel_where(workspace, private=False, archived=False, member=False)
    await client.conversations_join(channel=outsider.id)
    await http_fake.events_settled(5)
    kinds = [
        (r["body"]["event"]["type"], r["body"]["event"].get("subtype")) for r in receiver.requests
    ]
    assert sorted(kinds, key=str) == sorted(
        [
            ("message", None),
            ("message", "message_changed"),
            ("message", "channel_join"),
            ("member_joined_channel", None),
        ],
        key=str,
    )
    bot_post = next(
        r["body"]["event"]
        for r in receiver.requests
        if "subtype" not in r["body"]["event"] and r["body"]["event"]["type"] == "message"
    )
    assert bot_post["bot_id"] == workspace.bot_id and bot_post["ts"] == posted["ts"]


async def test_no_event_from_a_channel_the_bot_is_not_in(
    http_fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    outsider = channel_where(workspace, private=False, archived=False, member=False)
    http_fake.post_message(outsider.id, "Said where the bot cannot hear it")
    await http_fake.events_settled(5)
    assert receiver.requests == [] and http_fake.event_envelopes == []


async def test_delivery_off_records_envelopes_and_sends_nothing(
    fake: FakeSlack, workspace: Workspace
) -> None:
    fake.post_message(member_channel(workspace).id, "Nobody is listening for events yet")
    assert len(fake.event_envelopes) == 1
    assert (await fake.events_settled(1))["queued"] == 0


# -- Socket Mode --------------------------------------------------------------------------------
async def test_socket_mode_delivers_the_same_events_and_redelivers_an_unacked_one(
    fake: FakeSlack, workspace: Workspace
) -> None:
    fake.configure_events(mode="socket", ack_timeout=1.0, **FAST)
    seen: list[dict[str, Any]] = []

    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        seen.append(
            {
                "type": req.type,
                "payload": req.payload,
                "retry": req.retry_attempt,
                "reason": req.retry_reason,
            }
        )
        first_of_its_id = sum(s["payload"]["event_id"] == req.payload["event_id"] for s in seen)
        if req.payload["event"].get("subtype") == "message_changed" and first_of_its_id == 1:
            return  # no ack: Slack sends it again
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))

    client = SocketModeClient(
        app_token=fake.app_token, web_client=AsyncWebClient(base_url=fake.base_url)
    )
    client.socket_mode_request_listeners.append(listener)
    await client.connect()
    try:
        await fake.wait_socket_connections(1)
        ch = member_channel(workspace)
        msg = fake.post_message(ch.id, "Over the socket, like Slack does")
        fake.edit_message(ch.id, msg["ts"], "Over the socket, edited")
        counters = await fake.events_settled(5)
    finally:
        await client.close()
    assert [s["type"] for s in seen] == ["events_api"] * 3
    assert [s["payload"] for s in seen[:2]] == fake.event_envelopes
    retry = seen[2]
    assert retry["payload"] == seen[1]["payload"]
    assert (retry["retry"], retry["reason"]) == (1, "timeout")
    assert (seen[0]["retry"], seen[0]["reason"]) == (0, "")
    assert counters["acked"] == 2 and counters["retried"] == 1


# -- counters and control routes ----------------------------------------------------------------
async def test_counters_and_control_routes(
    fake: FakeSlack, receiver: Receiver, workspace: Workspace
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{fake.url}/_fake/events/config",
            json={"mode": "http", "url": receiver.url, "retry_delays": [0.05, 0.05, 0.05]},
        ) as r:
            assert r.status == 200 and (await r.json())["config"]["url"] == receiver.url
        async with http.post(f"{fake.url}/_fake/events/config", json={"mode": "carrier"}) as r:
            assert r.status == 400
        ch = member_channel(workspace)
        body = {"changes": [{"kind": "post", "channel": ch.id, "text": "Posted over HTTP"}]}
        async with http.post(f"{fake.url}/_fake/changes", json=body) as r:
            assert r.status == 200 and (await r.json())["applied"] == 1
        async with http.get(f"{fake.url}/_fake/events/settled", params={"timeout": "5"}) as r:
            assert (await r.json())["counters"]["acked"] == 1
        async with http.get(f"{fake.url}/_fake/counters") as r:
            assert (await r.json())["events"]["acked"] == 1
        async with http.get(f"{fake.url}/_fake/events") as r:
            state = await r.json()
    assert state["attempts"][0]["outcome"] == "acked"
    assert fake.event_counters["delivered"] == 1 and receiver.requests[0]["valid"]


def test_thread_mode_waits_for_delivery_from_another_thread() -> None:
    ws = generate(3, users=12, channels=8, messages=200, days=10, now=NOW)
    config = EventsConfig(mode="socket", ack_timeout=0.1, retry_delays=(0.0, 0.0, 0.0))
    with FakeSlack(ws, rate_limits=False, events=config) as fake:
        fake.post_message(member_channel(ws).id, "Nobody connected: Slack keeps retrying")
        with pytest.raises(TimeoutError):
            fake.events_settled_sync(0.05)
        counters = fake.events_settled_sync(5)
    assert counters["failed"] == 1 and counters["retried"] == 3


async def test_cli_events_url_sends_the_changes_to_the_app(receiver: Receiver) -> None:
    """`python -m fakeslack --events-url …` (the demo's hook): signed with the printed secret."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakeslack",
        *("--seed", "4", "--messages", "300", "--users", "12", "--channels", "8"),
        *("--now", str(NOW), "--no-rate-limits", "--events-url", receiver.url),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        receiver.verifier = SignatureVerifier(info["signing_secret"])
        base = info["url"].removesuffix("/api/")
        async with aiohttp.ClientSession() as http:
            generate_some = {"generate": {"n": 30, "seed": 3}}
            async with http.post(f"{base}/_fake/changes", json=generate_some) as r:
                assert (await r.json())["applied"] == 30
            async with http.get(f"{base}/_fake/events/settled") as r:
                counters = (await r.json())["counters"]
    finally:
        proc.terminate()
        await proc.wait()
    assert counters["acked"] == counters["queued"] == len(receiver.requests) > 30
    assert all(r["valid"] for r in receiver.requests)
    assert {r["body"]["team_id"] for r in receiver.requests} >= {info["team_id"]}
