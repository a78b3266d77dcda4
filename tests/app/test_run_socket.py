"""`python -m app run` in Socket Mode (SLACK_APP_TOKEN set, no signing secret), as a real process
against fakeslack: the app opens a WebSocket through `apps.connections.open` and fakeslack pushes
envelopes to it, the way Slack does."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeslack import FakeSlack
from tests.support.app_process import (
    HELP_SYNTAX,
    AppProcess,
    app_on,
    assert_admin_home_published,
    settings_for,
    some_user,
)


def start(fake: FakeSlack, workdir: Path) -> AppProcess:
    proc = AppProcess(settings_for(fake, workdir, socket_mode=True), workdir)
    try:
        proc.wait_healthy()
        fake.wait_socket_connections_sync(1, timeout=30)
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def app(fake: FakeSlack) -> Iterator[AppProcess]:
    with app_on(fake, socket_mode=True) as proc:
        yield proc


def slash_payload(fake: FakeSlack, text: str, user: str) -> dict[str, Any]:
    """What Slack puts in a `slash_commands` envelope: the HTTP form fields, as a JSON object."""
    channel = next(c.id for c in fake.workspace.channels.values() if not c.is_im)
    return {
        "token": "deprecated-verification-token",
        "team_id": fake.team_id,
        "team_domain": "fake",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": "someone",
        "command": "/backfill",
        "text": text,
        "api_app_id": fake.workspace.app_id,
        "is_enterprise_install": "false",
        "response_url": fake.new_response_url(user, channel),
        "trigger_id": fake.new_trigger_id(user),
    }


def command(fake: FakeSlack, text: str) -> dict[str, Any]:
    ack = fake.deliver_sync(
        "slash_commands", slash_payload(fake, text, some_user(fake, admin=True)), timeout=10
    )
    assert ack["type"] == "slash_commands" and ack["latency"] < 3  # Slack's 3 s ack deadline
    return ack


def test_run_socket_healthz_reports_socket_mode(app: AppProcess, fake: FakeSlack) -> None:
    with urllib.request.urlopen(f"{app.url}/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {"status": "ok", "mode": "socket"}
    assert fake.socket_connections == 1
    opened = fake.calls_of("apps.connections.open")
    assert opened and all(c.ok for c in opened)


@pytest.mark.parametrize("text", ["help", "", "  HELP  "])
def test_run_socket_help_is_answered_in_the_ack(
    app: AppProcess, fake: FakeSlack, text: str
) -> None:
    reply = command(fake, text)["payload"]
    assert reply["response_type"] == "ephemeral"
    rendered = json.dumps(reply["blocks"])
    for syntax in HELP_SYNTAX:
        assert syntax in rendered
    assert "/backfill history" in reply["text"]  # the notification fallback too


def test_run_socket_unknown_subcommand_says_so(app: AppProcess, fake: FakeSlack) -> None:
    reply = command(fake, "frobnicate now")["payload"]
    assert "`frobnicate` is not a /backfill command" in json.dumps(reply["blocks"])


def test_run_socket_app_home_opened_publishes_the_home_tab(
    app: AppProcess, fake: FakeSlack
) -> None:
    user = some_user(fake, admin=True)
    event = {
        "token": "deprecated-verification-token",
        "team_id": fake.team_id,
        "api_app_id": fake.workspace.app_id,
        "event": {
            "type": "app_home_opened",
            "user": user,
            "channel": "D0FAKE",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
        "type": "event_callback",
        "event_id": f"Ev{int(time.time() * 1000)}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "team_id": fake.team_id,
                "user_id": fake.workspace.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    ack = fake.deliver_sync("events_api", event, timeout=10)
    assert ack["payload"] is None  # events are acked bare
    assert_admin_home_published(fake, user)


def test_run_socket_refresh_requested_reconnects(app: AppProcess, fake: FakeSlack) -> None:
    before = len(fake.calls_of("apps.connections.open"))
    fake.request_disconnect("refresh_requested")
    fake.wait_socket_connections_sync(1, timeout=10)  # a new connection, not the refreshed one
    assert len(fake.calls_of("apps.connections.open")) == before + 1
    assert command(fake, "help")["payload"]["response_type"] == "ephemeral"
    deadline = time.monotonic() + 5
    while fake.socket_connections != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.socket_connections == 1  # the old one is gone


def test_run_socket_sigterm_exits_0_and_never_logs_secrets(
    app: AppProcess, fake: FakeSlack, tmp_path: Path
) -> None:
    # A second instance of the app: Slack spreads envelopes over both connections.
    proc = start(fake, tmp_path)
    try:
        fake.wait_socket_connections_sync(2, timeout=10)
        acks = [command(fake, "help") for _ in range(2)]
        assert len({a["connection_id"] for a in acks}) == 2  # both instances answered
    finally:
        code = proc.stop()
    assert code == 0
    deadline = time.monotonic() + 5
    while fake.socket_connections != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake.socket_connections == 1  # it closed its socket; the module's app is still there
    output = proc.output()
    assert "socket mode" in output and output.count("stopped") == 1, output
    for secret in (fake.bot_token, fake.app_token):
        assert secret not in output
    for line in output.splitlines():
        assert line[:4].isdigit(), line
