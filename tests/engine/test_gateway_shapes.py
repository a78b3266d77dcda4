"""The gateway checks the shape of every Slack answer it hands over, against fakeslack over HTTP
with the real slack_sdk client: a malformed `ok: true` answer, a truncated JSON body or a non-JSON
page is retried with backoff like a 5xx, and when every attempt got one, the call fails as
`MalformedSlackAnswer` (a transient `SlackUnavailable`) saying what was wrong, never an empty
page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from fakeslack import FakeSlack
from scheduler.backfill.answers import problem_of
from scheduler.backfill.errors import MALFORMED, MalformedSlackAnswer, SlackUnavailable
from scheduler.backfill.gateway import SlackGateway
from tests.engine.test_gateway import (
    FAST,
    MAIN,
    PARENT_TS,
    FakeSleep,
    build_workspace,
    ts,
)

HISTORY = "conversations.history"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(build_workspace(), rate_limits=False) as server:
        yield server


def gateway(fake: FakeSlack, **kwargs: Any) -> SlackGateway:
    kwargs.setdefault("sleep", FakeSleep())
    kwargs.setdefault("rand", lambda: 1.0)
    return SlackGateway(fake.bot_token, base_url=fake.base_url, profile=FAST, **kwargs)


async def history_ts(gw: SlackGateway) -> list[str]:
    return [
        m["ts"]
        async for p in gw.history_pages(MAIN, oldest=ts(29), latest=None)
        for m in p.messages
    ]


EXPECTED = [ts(i) for i in range(44, 29, -1)]

# (fault keyword arguments, the words the gateway uses for it)
MALFORMED_HISTORY = [
    pytest.param({}, "messages is missing", id="ok-only"),
    pytest.param({"drop": ["messages"]}, "messages is missing", id="no-messages"),
    pytest.param({"replace": {"messages": {"0": "x"}}}, "messages is not a list", id="dict"),
    pytest.param({"replace": {"messages": [1, 2]}}, "not an object", id="scalars"),
    pytest.param({"replace": {"messages": [{"text": "no ts"}]}}, "no valid ts", id="no-ts"),
    pytest.param({"replace": {"messages": [{"ts": 1700000000.5}]}}, "no valid ts", id="float-ts"),
    pytest.param({"replace": {"has_more": "yes"}}, "has_more is not a boolean", id="has-more"),
    pytest.param(
        {"replace": {"response_metadata": {"next_cursor": 7}}}, "next_cursor", id="cursor-int"
    ),
    pytest.param({"replace": {"response_metadata": "x"}}, "response_metadata", id="meta-str"),
    pytest.param(
        {"replace": {"messages": [{"ts": ts(1), "reply_count": "3"}]}}, "reply_count", id="count"
    ),
    pytest.param(
        {"replace": {"messages": [{"ts": ts(1), "thread_ts": "yesterday"}]}}, "thread_ts", id="tts"
    ),
    pytest.param({"replace": {"messages": [{"ts": ts(1), "user": {"id": "U"}}]}}, "user", id="u"),
    pytest.param({"body": {"ok": False}}, "no error code", id="ok-false-no-error"),
    pytest.param({"body": {"messages": []}}, "no error code", id="no-ok"),
    pytest.param({"body": [{"ok": True}]}, "not a JSON object", id="json-list"),
    pytest.param({"body": "ok"}, "not a JSON object", id="json-string"),
    pytest.param({"body": {}}, "not complete JSON", id="empty-object"),
]


@pytest.mark.parametrize(("fault", "words"), MALFORMED_HISTORY)
async def test_malformed_history_retried_with_backoff_then_read(
    fake: FakeSlack, fault: dict[str, Any], words: str
) -> None:
    sleep = FakeSleep()
    gw = gateway(fake, sleep=sleep)
    fake.faults.malformed(HISTORY, channel=MAIN, count=2, **fault)
    assert await history_ts(gw) == EXPECTED
    assert [c.ok for c in fake.calls_of(HISTORY)] == [False, False, True, True]
    assert sleep.delays == [0.5, 1.0]  # backed off like a 5xx
    stats = gw.stats()
    assert stats.malformed == 2 and stats.retries == 2


@pytest.mark.parametrize(("fault", "words"), MALFORMED_HISTORY)
async def test_persistent_malformed_history_fails_saying_so(
    fake: FakeSlack, fault: dict[str, Any], words: str
) -> None:
    gw = gateway(fake, max_attempts=4)
    fake.faults.malformed(HISTORY, count=None, **fault)
    with pytest.raises(MalformedSlackAnswer) as err:
        await history_ts(gw)
    assert isinstance(err.value, SlackUnavailable)  # transient: a later run may be answered well
    assert err.value.error == MALFORMED and err.value.method == HISTORY
    assert words in err.value.detail
    assert "malformed" in err.value.describe() and words in err.value.describe()
    assert len(fake.calls_of(HISTORY)) == 4 and err.value.attempts == 4


@pytest.mark.parametrize("kind", ["truncated", "non_json-html", "non_json-text"])
async def test_truncated_and_non_json_bodies_are_retried(fake: FakeSlack, kind: str) -> None:
    sleep = FakeSleep()
    gw = gateway(fake, sleep=sleep)
    if kind == "truncated":
        fake.faults.truncated(HISTORY, count=2)
    else:
        ctype = "text/html" if kind.endswith("html") else "text/plain"
        fake.faults.non_json(HISTORY, count=2, content_type=ctype)
    assert await history_ts(gw) == EXPECTED
    assert sleep.delays == [0.5, 1.0] and gw.stats().malformed == 2


async def test_persistent_truncated_json_fails_as_malformed(fake: FakeSlack) -> None:
    gw = gateway(fake, max_attempts=3)
    fake.faults.truncated("users.info", count=None)
    with pytest.raises(MalformedSlackAnswer) as err:
        await gw.user_info("U0ALICE001")
    assert "not complete JSON" in err.value.detail
    assert len(fake.calls_of("users.info")) == 3


Call = Callable[[SlackGateway], Awaitable[Any]]


async def _list(gw: SlackGateway) -> list[dict[str, Any]]:
    return [c async for c in gw.list_channels()]


async def _users(gw: SlackGateway) -> list[dict[str, Any]]:
    return [u async for u in gw.users_pages()]


@pytest.mark.parametrize(
    ("method", "fault", "call"),
    [
        pytest.param("conversations.list", {"drop": ["channels"]}, _list, id="list-missing"),
        pytest.param(
            "conversations.list", {"replace": {"channels": [{"name": "x"}]}}, _list, id="list-id"
        ),
        pytest.param("users.list", {"replace": {"members": "all"}}, _users, id="users-str"),
        pytest.param(
            "conversations.info",
            {"replace": {"channel": MAIN}},
            lambda gw: gw.channel_info(MAIN),
            id="info-str",
        ),
        pytest.param(
            "conversations.join", {"drop": ["channel"]}, lambda gw: gw.join(MAIN), id="join"
        ),
        pytest.param(
            "users.info", {"drop": ["user"]}, lambda gw: gw.user_info("U0ALICE001"), id="user"
        ),
        pytest.param(
            "conversations.replies",
            {"replace": {"has_more": 1}},
            lambda gw: gw.replies(MAIN, PARENT_TS),
            id="replies",
        ),
    ],
)
async def test_every_method_checks_its_shape(
    fake: FakeSlack, method: str, fault: dict[str, Any], call: Call
) -> None:
    good = await call(gateway(fake))
    fake.faults.malformed(method, count=1, **fault)
    gw = gateway(fake)
    assert await call(gw) == good
    assert gw.stats().malformed == 1


def test_well_formed_answers_pass() -> None:
    message = {
        "ts": ts(1),
        "thread_ts": ts(1),
        "reply_count": 2,
        "latest_reply": ts(2),
        "user": "U1",
        "text": "hi",
        "bot_id": None,
    }
    history = {
        "ok": True,
        "messages": [message],
        "has_more": False,
        "response_metadata": {"next_cursor": ""},
    }
    assert problem_of(HISTORY, history) is None
    assert problem_of(HISTORY, {"ok": True, "messages": []}) is None  # has_more is optional
    assert problem_of("conversations.list", {"ok": True, "channels": []}) is None
    assert problem_of("users.info", {"ok": True, "user": {"id": "U1"}}) is None
    assert problem_of("auth.test", {"ok": True, "team_id": "T1"}) is None
    assert problem_of("auth.test", {"ok": "true"}) == "ok is not true"
