"""The one Bolt error handler, and the words for a failed request: the database away or busy
gets a plain sentence and one log line; anything else is logged with its traceback and the user
told in plain words. Never a traceback or an internal name in what the user reads."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from db.session import database_busy, database_unavailable

log = logging.getLogger(__name__)
PLAIN_ERROR = "Sorry, something went wrong on our side, and nothing was changed. Please try again."
DATABASE_UNAVAILABLE = (
    "The database is unavailable right now, so nothing was changed. Please try again in a minute."
)
DATABASE_BUSY = "The database is busy right now, so nothing was changed. Please try again shortly."
FORM_TOO_LATE = (
    "Slack no longer allowed this form to open (a form must open within 3 seconds of the click "
    "or command). Nothing was changed. Please try again."
)
# `views.open` refusals that mean the trigger ran out or was forged, not a bug of ours.
_TRIGGER_ERRORS = frozenset({"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"})


def explain_failure(error: BaseException, what: str) -> str:
    """Log `error` (one line when the database is away or busy: that is not a bug, and an
    outage must not fill the log with tracebacks) and return what to tell the user."""
    if database_unavailable(error):
        log.warning("%s: the database is unavailable (%s)", what, type(error).__name__)
        return DATABASE_UNAVAILABLE
    if database_busy(error):
        log.warning("%s: the database is busy (%s)", what, type(error).__name__)
        return DATABASE_BUSY
    if isinstance(error, SlackApiError) and error.response.get("error") in _TRIGGER_ERRORS:
        log.warning("%s: Slack refused to open a form (%s)", what, error.response.get("error"))
        return FORM_TOO_LATE
    log.error("%s", what, exc_info=error)
    return PLAIN_ERROR


def register(app: AsyncApp) -> None:
    app.error(handle_error)


async def handle_error(
    error: Exception,
    body: dict[str, Any],
    respond: AsyncRespond | None,
    response: BoltResponse | None = None,
) -> None:
    team = body.get("team")
    text = explain_failure(
        error,
        "listener failed for {} from team {}".format(
            body.get("command") or body.get("type"),
            body.get("team_id") or (team.get("id") if isinstance(team, dict) else None),
        ),
    )
    if text != PLAIN_ERROR and response is not None and answer_in_form(response, body, text):
        return
    if respond is None or respond.response_url is None:
        return  # no response_url in this payload (events, view submissions): nobody to tell
    try:
        await respond(text=text, response_type="ephemeral", replace_original=False)
    except Exception:
        log.warning("could not tell the user about the failure", exc_info=True)


def answer_in_form(response: BoltResponse, body: dict[str, Any], text: str) -> bool:
    """A form submitted while the database was away or busy (its claim runs before the
    acknowledgement): the reason shows in the form, which stays open to submit again, instead
    of Slack's generic error. False when there is no form or no input to show it under."""
    view = body.get("view")
    if body.get("type") != "view_submission" or not isinstance(view, dict):
        return False
    block_id = next(
        (
            str(b["block_id"])
            for b in view.get("blocks") or []
            if isinstance(b, dict) and b.get("type") == "input" and b.get("block_id")
        ),
        None,
    )
    if block_id is None:
        return False
    response.status = 200
    response.body = json.dumps({"response_action": "errors", "errors": {block_id: text}})
    response.headers["content-type"] = ["application/json;charset=utf-8"]
    return True
