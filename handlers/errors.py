"""The one Bolt error handler: log with the traceback, tell the user in plain words."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

log = logging.getLogger(__name__)
PLAIN_ERROR = "Sorry, something went wrong on our side, and nothing was changed. Please try again."


def register(app: AsyncApp) -> None:
    app.error(handle_error)


async def handle_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None) -> None:
    log.error(
        "listener failed for %s from team %s",
        body.get("command") or body.get("type"),
        body.get("team_id") or (body.get("team") or {}).get("id"),
        exc_info=error,
    )
    if respond is None:  # no response_url in this payload (events, view submissions)
        return
    try:
        await respond(text=PLAIN_ERROR, response_type="ephemeral", replace_original=False)
    except Exception:  # noqa: BLE001 - the user cannot be told; the log above has the cause
        log.warning("could not tell the user about the failure", exc_info=True)
