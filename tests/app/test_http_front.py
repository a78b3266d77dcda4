"""The HTTP front refuses malformed and unverifiable requests with 400/401: never a 500, one log
line per kind (throttled), no traceback. Driven over real HTTP against the app in-process."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.signature import Clock

from app.request_check import Signed, check_signature, new_verifier, shape_problem
from app.throttled_log import ThrottledLog
from fakeslack.outgoing import slash_command_body
from tests.scenarios.harness import Scenario, start_scenario


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Scenario]:
    async with start_scenario(
        f"sqlite+aiosqlite:///{tmp_path}/backfill.db", tmp_path, messages=60
    ) as s:
        yield s


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
DEEP = 100_000


def form_payload(raw: str) -> bytes:
    from urllib.parse import quote

    return f"payload={quote(raw)}".encode()


def payload(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0"},
        "user": {"id": "U0"},
        "api_app_id": "A0",
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "x", "block_id": "b", "type": "button"}],
    }
    base.update(fields)
    return form_payload(json.dumps(base))


def submission(view: Any) -> bytes:
    return form_payload(
        json.dumps(
            {"type": "view_submission", "team": {"id": "T0"}, "user": {"id": "U0"}, "view": view}
        )
    )


# (name, body, content type headers, signed?, expected status)
MALFORMED: list[tuple[str, bytes, dict[str, str], bool, int]] = [
    ("payload={bad", b"payload={bad", FORM, True, 400),
    ("payload=[]", b"payload=[]", FORM, True, 400),
    ("payload=null", b"payload=null", FORM, True, 400),
    ('payload="text"', form_payload('"text"'), FORM, True, 400),
    ("json []", b"[]", JSON, True, 400),
    ("json null", b"null", JSON, True, 400),
    ("json 17", b"17", JSON, True, 400),
    ("broken json", b'{"type": "event_callback", ', JSON, True, 400),
    ("deep json", b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}", JSON, True, 400),
    ("deep payload", form_payload('{"a": ' + "[" * DEEP + "]" * DEEP + "}"), FORM, True, 400),
    ("empty body", b"", FORM, True, 400),
    ("not utf-8", b"payload=\xff\xfe{}", FORM, True, 400),
    ("no type", form_payload('{"team": {"id": "T0"}}'), FORM, True, 400),
    ("type 5", payload(type=5), FORM, True, 400),
    ("team 5", payload(team=5), FORM, True, 400),
    ("team.id list", payload(team={"id": ["T0"]}), FORM, True, 400),
    ("user list", payload(user=["U0"]), FORM, True, 400),
    ("user.id dict", payload(user={"id": {"x": 1}}), FORM, True, 400),
    ("enterprise 1", payload(enterprise=1), FORM, True, 400),
    ("channel true", payload(channel=True), FORM, True, 400),
    ("actions object", payload(actions={"action_id": "x"}), FORM, True, 400),
    ("actions of strings", payload(actions=["x"]), FORM, True, 400),
    ("action_id 7", payload(actions=[{"action_id": 7, "block_id": "b"}]), FORM, True, 400),
    ("authorizations string", payload(authorizations="T0"), FORM, True, 400),
    ("authorizations of ints", payload(authorizations=[1]), FORM, True, 400),
    ("response_urls of strings", payload(response_urls=["https://x"]), FORM, True, 400),
    ("actions null", payload(actions=None), FORM, True, 400),
    ("actions empty", payload(actions=[]), FORM, True, 400),
    (
        "action without action_id",
        payload(actions=[{"block_id": "b", "value": "1"}]),
        FORM,
        True,
        400,
    ),
    ("response_url null", payload(response_url="null"), FORM, True, 400),
    (
        "response_urls of non-urls",
        payload(response_urls=[{"response_url": "-1.5"}]),
        FORM,
        True,
        400,
    ),
    (
        "command without response_url",
        b"command=%2Fbackfill&team_id=T0&user_id=U0&text=help",
        FORM,
        True,
        400,
    ),
    (
        "command with response_url null",
        b"command=%2Fbackfill&team_id=T0&user_id=U0&text=help&response_url=null",
        FORM,
        True,
        400,
    ),
    ("view string", submission("V1"), FORM, True, 400),
    (
        "view without type",
        submission({"id": "V1", "callback_id": "run_modal.view"}),
        FORM,
        True,
        400,
    ),
    ("view null", submission(None), FORM, True, 400),
    (
        "block_suggestion without action_id",
        form_payload('{"type": "block_suggestion", "team": {"id": "T0"}, "user": {"id": "U0"}}'),
        FORM,
        True,
        400,
    ),
    (
        "shortcut without callback_id",
        form_payload('{"type": "shortcut", "team": {"id": "T0"}, "user": {"id": "U0"}}'),
        FORM,
        True,
        400,
    ),
    (
        "view.callback_id int",
        submission({"id": "V1", "type": "modal", "callback_id": 3}),
        FORM,
        True,
        400,
    ),
    (
        "view.state list",
        submission({"id": "V1", "type": "modal", "callback_id": "c", "state": []}),
        FORM,
        True,
        400,
    ),
    (
        "view.state.values of lists",
        submission(
            {"id": "V1", "type": "modal", "callback_id": "c", "state": {"values": {"b": ["x"]}}}
        ),
        FORM,
        True,
        400,
    ),
    (
        "view.state.values element null",
        submission(
            {
                "id": "V1",
                "type": "modal",
                "callback_id": "c",
                "state": {"values": {"b": {"a": None}}},
            }
        ),
        FORM,
        True,
        400,
    ),
    (
        "event string",
        json.dumps({"type": "event_callback", "event": "x"}).encode(),
        JSON,
        True,
        400,
    ),
    (
        "event.type list",
        json.dumps({"type": "event_callback", "team_id": "T0", "event": {"type": ["x"]}}).encode(),
        JSON,
        True,
        400,
    ),
    (
        "event.user number",
        json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0",
                "event": {"type": "app_home_opened", "user": 5},
            }
        ).encode(),
        JSON,
        True,
        400,
    ),
    ("unsigned payload={bad", b"payload={bad", FORM, False, 401),
    ("unsigned json []", b"[]", JSON, False, 401),
]


@pytest.mark.parametrize(
    "name,body,headers,signed,status", MALFORMED, ids=[case[0] for case in MALFORMED]
)
async def test_http_front_malformed_request_is_refused_without_a_traceback(
    app: Scenario,
    caplog: pytest.LogCaptureFixture,
    name: str,
    body: bytes,
    headers: dict[str, str],
    signed: bool,
    status: int,
) -> None:
    caplog.set_level(logging.WARNING)
    secret = app.fake.signing_secret if signed else "not-the-signing-secret"
    for _ in range(3):
        async with app.http.post(
            app.url, data=body, headers={**headers, **sign(body, secret)}
        ) as resp:
            assert resp.status == status, (name, await resp.text())
            answer = json.loads(await resp.text())
        assert answer["ok"] is False and answer["error"]
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    refusals = [r for r in caplog.records if r.name == "app.http_server"]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]


async def test_http_front_a_null_view_in_a_payload_no_listener_takes_is_refused(
    app: Scenario, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by test_http_fuzz: a payload of the served workspace that no listener takes, with
    `"view": null`. Bolt's "unhandled request" warning reads `view` whenever the key is there,
    so it raised (a 500 and a traceback); `view`, when given, must be an object."""
    caplog.set_level(logging.WARNING)
    body = form_payload(json.dumps({"type": "", "team": {"id": app.fake.team_id}, "view": None}))
    async with app.http.post(
        app.url, data=body, headers={**FORM, **sign(body, app.fake.signing_secret)}
    ) as resp:
        assert resp.status == 400, await resp.text()
        assert "`view` must be an object" in json.loads(await resp.text())["error"]
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


BAD_HEADERS: list[tuple[str, dict[str, str], int]] = [
    ("timestamp abc", {"X-Slack-Request-Timestamp": "abc"}, 400),
    ("timestamp empty", {"X-Slack-Request-Timestamp": ""}, 401),
    # HTTP drops the space before a header value: an old timestamp, refused as out of date.
    ("timestamp spaces", {"X-Slack-Request-Timestamp": " 1700000000"}, 401),
    ("timestamp underscores", {"X-Slack-Request-Timestamp": "1_700_000_000"}, 400),
    ("timestamp arabic digits", {"X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠"}, 400),
    ("timestamp huge", {"X-Slack-Request-Timestamp": "9" * 40}, 400),
    ("timestamp negative", {"X-Slack-Request-Timestamp": "-1"}, 400),
    ("signature empty", {"X-Slack-Signature": ""}, 401),
    ("signature v1", {"X-Slack-Signature": "v1=" + "0" * 64}, 400),
    ("signature short", {"X-Slack-Signature": "v0=abc"}, 400),
    ("signature wrong", {"X-Slack-Signature": "v0=" + "0" * 64}, 401),
    ("timestamp old", {"X-Slack-Request-Timestamp": str(int(time.time()) - 301)}, 401),
    ("timestamp future", {"X-Slack-Request-Timestamp": str(int(time.time()) + 400)}, 401),
]


@pytest.mark.parametrize("name,override,status", BAD_HEADERS, ids=[c[0] for c in BAD_HEADERS])
async def test_http_front_bad_signature_headers_are_400_or_401(
    app: Scenario,
    caplog: pytest.LogCaptureFixture,
    name: str,
    override: dict[str, str],
    status: int,
) -> None:
    caplog.set_level(logging.WARNING)
    body = slash_command_body("help", team_id=app.team_id, user_id=app.admin).encode()
    headers = {**FORM, **sign(body, app.fake.signing_secret), **override}
    async with app.http.post(app.url, data=body, headers=headers) as resp:
        assert resp.status == status, (name, await resp.text())
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert await app.snapshot() == ([], [])


async def test_http_front_missing_or_doubled_signature_headers_are_refused(app: Scenario) -> None:
    body = slash_command_body("help", team_id=app.team_id, user_id=app.admin).encode()
    async with app.http.post(app.url, data=body, headers=FORM) as resp:
        assert resp.status == 401
    good = sign(body, app.fake.signing_secret)
    doubled = [
        ("Content-Type", FORM["Content-Type"]),
        ("X-Slack-Request-Timestamp", good["X-Slack-Request-Timestamp"]),
        ("X-Slack-Signature", "v0=" + "1" * 64),
        ("X-Slack-Signature", good["X-Slack-Signature"]),
    ]
    async with app.http.post(app.url, data=body, headers=doubled) as resp:  # type: ignore[arg-type]
        assert resp.status == 400


async def test_http_front_two_hundred_unsigned_requests_log_one_line(
    app: Scenario,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for i in range(200):
        body = b"payload={bad" if i % 2 else b"[]"
        headers = {
            **FORM,
            "X-Slack-Request-Timestamp": "abc" if i % 3 == 0 else "1",
            "X-Slack-Signature": "v0=" + "0" * 64,
        }
        async with app.http.post(app.url, data=body, headers=headers) as resp:
            assert resp.status in (400, 401)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) <= 2, lines  # one per kind: bad timestamp, bad signature
    assert sum(len(line) for line in lines) < 1000
    assert not [r for r in caplog.records if r.exc_info]


async def test_http_front_is_still_the_first_to_answer_a_good_request(app: Scenario) -> None:
    seen = await app.command("help", app.admin)
    assert seen.status == 200 and "/backfill schedule" in seen.ack_text


async def test_http_front_an_oversized_body_is_still_413(app: Scenario) -> None:
    body = b"payload=" + b"x" * (2 * 1024 * 1024)
    async with app.http.post(
        app.url, data=body, headers={**FORM, **sign(body, app.fake.signing_secret)}
    ) as resp:
        assert resp.status == 413


async def test_http_front_a_command_mentioning_payload_reaches_its_listener(app: Scenario) -> None:
    """Bolt alone took any form containing the word "payload" for an empty interactivity body."""
    seen = await app.command("payload", app.member)
    assert seen.status == 200
    assert "`payload` is not a /backfill command" in seen.ack_text


# -- the pieces ---------------------------------------------------------------------------------


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


def test_http_front_signature_window_follows_the_injected_clock() -> None:
    body = b"command=%2Fbackfill&text=help"
    headers = sign(body, "secret-value", timestamp=1_000_000)
    verifier = new_verifier("secret-value", FixedClock(1_000_000 + 300))
    signed = check_signature(verifier, headers, body)
    assert isinstance(signed, Signed) and signed.valid_until == 1_000_300
    verifier.clock = FixedClock(1_000_000 + 301)
    late = check_signature(verifier, headers, body)
    assert getattr(late, "status", None) == 401


def test_http_front_shape_accepts_what_slack_sends() -> None:
    assert (
        shape_problem(
            {
                "command": "/backfill",
                "text": "",
                "team_id": "T0",
                "user_id": "U0",
                "response_url": "https://hooks.slack.com/commands/T0/1/x",
            }
        )
        is None
    )
    assert (
        shape_problem(
            {
                "type": "block_actions",
                "team": None,
                "user": {"id": "U"},
                "enterprise": None,
                "actions": [{"action_id": "a", "block_id": "b", "selected_option": {"value": "v"}}],
                "container": {"type": "view"},
                "is_enterprise_install": False,
                "view": {"id": "V", "state": {"values": {"b": {"a": {}}}}},
            }
        )
        is None
    )
    assert (
        shape_problem(
            {
                "type": "event_callback",
                "team_id": "T0",
                "authorizations": [{"team_id": "T0", "is_bot": True}],
                "event": {"type": "channel_rename", "channel": {"id": "C1", "name": "x"}},
            }
        )
        is None
    )
    assert shape_problem({"type": "url_verification", "challenge": "abc"}) is None


def test_http_front_throttled_log_counts_what_it_left_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("t.throttle"), interval=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING)
    assert throttled.emit("a", "refused %s", "x")
    assert not throttled.emit("a", "refused %s", "x")
    assert throttled.emit("b", "other")
    now[0] = 61
    assert throttled.emit("a", "refused %s", "x")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "refused x",
        "other",
        "refused x (and 1 more like it since the last such line)",
    ]


async def test_http_front_an_exception_out_of_bolt_is_one_throttled_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The last-resort net: whatever escapes Bolt's dispatch is answered without a traceback per
    request (Bolt itself turns listener errors into responses)."""
    from aiohttp.test_utils import TestClient, TestServer

    from app.http_server import EVENTS_PATH, SlackFront, build_web_app
    from db.replays import MemoryReplayLedger

    class Exploding:
        async def async_dispatch(self, request: object) -> object:
            raise KeyError("type")

    caplog.set_level(logging.DEBUG)
    front = SlackFront(new_verifier("secret-value"), MemoryReplayLedger())
    web_app = build_web_app(Exploding(), mode="http", front=front)  # type: ignore[arg-type]
    async with TestClient(TestServer(web_app)) as client:
        for text in ("help", "list", "status"):
            body = slash_command_body(text, team_id="T0", user_id="U0").encode()
            headers = {**FORM, **sign(body, "secret-value")}
            response = await client.post(EVENTS_PATH, data=body, headers=headers)
            assert response.status == 500
            assert "Traceback" not in await response.text()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "KeyError" in lines[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
