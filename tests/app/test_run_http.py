"""`python -m app run` in HTTP mode, as a real process against fakeslack, driven by signed requests."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakeslack import FakeSlack
from fakeslack.outgoing import (
    event_body,
    form_headers,
    interaction_body,
    json_headers,
    slash_command_body,
)
from tests.support.app_process import (
    HELP_SYNTAX,
    AppProcess,
    app_on,
    assert_admin_home_published,
    settings_for,
    some_user,
)


@pytest.fixture(scope="module")
def app(fake: FakeSlack) -> Iterator[AppProcess]:
    with app_on(fake) as proc:
        yield proc


def command(
    app: AppProcess,
    fake: FakeSlack,
    text: str,
    *,
    secret: str | None = None,
    timestamp: int | None = None,
) -> tuple[int, str]:
    body = slash_command_body(text, team_id=fake.team_id, user_id=some_user(fake, admin=True))
    return app.post(
        "/slack/events", body, form_headers(body, secret or fake.signing_secret, timestamp)
    )


def test_run_http_healthz_is_200_with_json(app: AppProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{app.url}/healthz", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == {"status": "ok", "mode": "http"}


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
def test_run_http_help_is_answered_within_the_ack(
    app: AppProcess, fake: FakeSlack, text: str
) -> None:
    status, body = command(app, fake, text)
    assert status == 200
    reply = json.loads(body)
    assert reply["response_type"] == "ephemeral"
    rendered = json.dumps(reply["blocks"])
    for syntax in HELP_SYNTAX:
        assert syntax in rendered
    assert "/backfill history" in reply["text"]  # the notification fallback too


def test_run_http_unknown_subcommand_says_so_and_shows_usage(
    app: AppProcess, fake: FakeSlack
) -> None:
    status, body = command(app, fake, "frobnicate now")
    reply = json.loads(body)
    assert status == 200 and "`frobnicate` is not a /backfill command" in json.dumps(
        reply["blocks"]
    )
    assert "/backfill status" in json.dumps(reply["blocks"])


def test_run_http_bad_signature_is_401(app: AppProcess, fake: FakeSlack) -> None:
    status, _ = command(app, fake, "help", secret="not-the-signing-secret")
    assert status == 401


def test_run_http_six_minute_old_timestamp_is_401(app: AppProcess, fake: FakeSlack) -> None:
    status, _ = command(app, fake, "help", timestamp=int(time.time()) - 6 * 60)
    assert status == 401


def test_run_http_app_home_opened_publishes_the_home_tab(app: AppProcess, fake: FakeSlack) -> None:
    user = some_user(fake, admin=True)
    body = event_body(
        {
            "type": "app_home_opened",
            "user": user,
            "channel": "D0FAKE",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        },
        team_id=fake.team_id,
    )
    status, _ = app.post("/slack/events", body, json_headers(body, fake.signing_secret))
    assert status == 200
    assert_admin_home_published(fake, user)


def test_run_http_unclaimed_button_is_acknowledged(app: AppProcess, fake: FakeSlack) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": fake.team_id},
        "user": {"id": some_user(fake, admin=False)},
        "api_app_id": "A0FAKE",
        "trigger_id": "1.2.3",
        "actions": [
            {"action_id": "old.button", "block_id": "b", "type": "button", "action_ts": "1"}
        ],
    }
    body = interaction_body(payload)
    status, _ = app.post("/slack/events", body, form_headers(body, fake.signing_secret))
    assert status == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_http_signal_exits_0_and_never_logs_secrets(
    fake: FakeSlack, tmp_path: Path, sig: int
) -> None:
    proc = AppProcess(settings_for(fake, tmp_path), tmp_path)
    proc.wait_healthy()
    command(proc, fake, "help")
    command(proc, fake, "help", secret="wrong-secret-value")
    assert proc.stop(sig) == 0
    output = proc.output()
    assert output.count("stopped") == 1, output  # closed once
    for secret in (fake.bot_token, fake.signing_secret):
        assert secret not in output
    # Nothing printed spans lines: one event, one line (each starts with a timestamp).
    for line in output.splitlines():
        assert line[:4].isdigit(), line


def test_run_http_every_manifest_entry_has_a_listener(app: AppProcess, fake: FakeSlack) -> None:
    """Each command, event and the interactivity setting in manifest.yml reaches a listener (not 404)."""
    import yaml

    from tests.support.app_process import REPO

    manifest = yaml.safe_load((REPO / "manifest.yml").read_text())
    user = some_user(fake, admin=True)
    requests: list[tuple[str, str, dict[str, str]]] = []
    for entry in manifest["features"]["slash_commands"]:
        body = slash_command_body("help", team_id=fake.team_id, user_id=user).replace(
            "command=%2Fbackfill", "command=" + entry["command"].replace("/", "%2F")
        )
        requests.append((entry["command"], body, form_headers(body, fake.signing_secret)))
    for event_type in manifest["settings"]["event_subscriptions"]["bot_events"]:
        # `message.channels` / `message.groups` subscribe to the `message` event of a kind of
        # channel (slack-platform.md §16.3); the others are the event's own type.
        kind, _, family = event_type.partition(".")
        event = {"type": kind, "user": user, "tab": "home", "event_ts": f"{time.time():.6f}"}
        if family:
            event |= {"channel": "C0LISTENED", "channel_type": family.removesuffix("s")}
        body = event_body(event, team_id=fake.team_id)
        requests.append((event_type, body, json_headers(body, fake.signing_secret)))
    if manifest["settings"]["interactivity"]["is_enabled"]:
        for payload in (
            {
                "type": "block_actions",
                "team": {"id": fake.team_id},
                "user": {"id": user},
                "api_app_id": "A0FAKE",
                "trigger_id": "1.2.3",
                "actions": [
                    {"action_id": "x", "block_id": "b", "type": "button", "action_ts": "1"}
                ],
            },
            {
                "type": "view_submission",
                "team": {"id": fake.team_id},
                "user": {"id": user},
                "api_app_id": "A0FAKE",
                "trigger_id": "1.2.3",
                "view": {
                    "id": "V1",
                    "type": "modal",
                    "callback_id": "x",
                    "state": {"values": {}},
                    "private_metadata": "",
                    "hash": "h",
                },
            },
        ):
            body = interaction_body(payload)
            requests.append((payload["type"], body, form_headers(body, fake.signing_secret)))
    assert len(requests) >= 4
    for name, body, headers in requests:
        status, _ = app.post("/slack/events", body, headers)
        assert status == 200, f"{name} got {status}"
