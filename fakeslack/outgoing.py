"""What Slack sends to an app: slash commands, events and interactions, signed with the app's
signing secret exactly as Slack does (`v0=` HMAC-SHA256 of `v0:<timestamp>:<body>`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode


def signature_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def slash_command_body(
    text: str,
    *,
    team_id: str,
    user_id: str,
    response_url: str = "https://hooks.slack.com/x",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    channel_id: str = "C0FAKE",
    enterprise_id: str | None = None,
    is_enterprise_install: bool = False,
) -> str:
    """A slash command's form body; in an Enterprise Grid organisation it also names the
    organisation and whether the app is installed org-wide (Slack's fields)."""
    grid: dict[str, str] = {}
    if enterprise_id is not None:
        grid = {
            "enterprise_id": enterprise_id,
            "enterprise_name": "Grid Org",
            "is_enterprise_install": "true" if is_enterprise_install else "false",
        }
    return urlencode(
        {
            **grid,
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": "fake",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "someone",
            "command": "/backfill",
            "text": text,
            "api_app_id": "A0FAKE",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def event_body(event: dict[str, Any], *, team_id: str) -> str:
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "api_app_id": "A0FAKE",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1000)}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "is_bot": True}],
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def form_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        **signature_headers(body, secret, timestamp),
    }


def json_headers(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", **signature_headers(body, secret, timestamp)}
