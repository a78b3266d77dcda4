"""The listeners' error handler: a failure is told to the person through `respond` when the
payload has a `response_url`, and to nobody (no second error) when it has none, as for events."""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.context.respond.async_respond import AsyncRespond

from handlers.errors import handle_error


class RecordingRespond(AsyncRespond):
    def __init__(self, response_url: str | None) -> None:
        super().__init__(response_url=response_url)
        self.sent: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        self.sent.append(kwargs)


async def test_a_failed_event_listener_tells_nobody(caplog: pytest.LogCaptureFixture) -> None:
    respond = RecordingRespond(None)
    body = {"type": "event_callback", "team_id": "T1", "event": {"type": "message"}}
    await handle_error(RuntimeError("the inbox insert failed"), body, respond)
    assert respond.sent == []
    assert "could not tell the user" not in caplog.text  # no second error, no traceback


async def test_a_failed_command_is_told_in_plain_words() -> None:
    respond = RecordingRespond("https://hooks.slack.com/commands/T1/1/x")
    body = {"command": "/backfill", "team_id": "T1"}
    await handle_error(RuntimeError("boom"), body, respond)
    assert len(respond.sent) == 1 and respond.sent[0]["response_type"] == "ephemeral"
