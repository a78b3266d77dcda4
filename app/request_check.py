"""Admission of one HTTP request to `/slack/events`, before Bolt sees it: Slack's signature
checked here (slack_sdk's `SignatureVerifier`, clock injectable), then the parsed body's shape.

Order matters: the headers and the HMAC are checked on the raw bytes, and nothing of the body is
parsed until the signature holds, so an unsigned request costs one HMAC and one log line at most.
The body is then parsed the way Bolt parses it (Bolt's own `AsyncBoltRequest`, so what is checked
is exactly what its listeners get), and the fields Bolt's matchers, its context and our guards read
must have Slack's types. Pure: no I/O, no logging (the front logs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

# Slack's replay window: a timestamp further than this from now is refused.
WINDOW_SECONDS: Final = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # ASCII digits only: int() would take " 1_0", "١٢"
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")
JSON_TYPE: Final = "application/json"
ACCEPTED_BODIES: Final = (
    "a slash command form, a form whose payload is a JSON object, or a JSON object"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: the HTTP status, a short kind for the log, and plain words."""

    status: int
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class Signed:
    """A request whose signature holds: its signature, the second it was signed, its text."""

    signature: str
    timestamp: int
    text: str

    @property
    def valid_until(self) -> int:
        """The last second at which these same bytes would still pass the signature check."""
        return self.timestamp + WINDOW_SECONDS


def check_signature(
    verifier: SignatureVerifier, headers: Mapping[str, str], body: bytes
) -> Signed | Refusal:
    """The raw request against Slack's signing recipe (design: slack-platform.md §6)."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        return Refusal(401, "unsigned", "missing X-Slack-Signature or X-Slack-Request-Timestamp")
    if not _TIMESTAMP.fullmatch(timestamp):
        return Refusal(
            400, "bad-timestamp", "X-Slack-Request-Timestamp must be Unix seconds (digits only)"
        )
    if not _SIGNATURE.fullmatch(signature):
        return Refusal(
            400, "bad-signature-header", "X-Slack-Signature must be v0= followed by 64 hex digits"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "not-utf8", "the body must be UTF-8")
    if not verifier.is_valid(text, timestamp, signature):
        return Refusal(401, "bad-signature", "the signature does not match or is out of date")
    return Signed(signature=signature, timestamp=int(timestamp), text=text)


def new_verifier(signing_secret: str, clock: Clock | None = None) -> SignatureVerifier:
    return SignatureVerifier(signing_secret, clock=clock or Clock())


def parse_request(
    signed: Signed, headers: Mapping[str, str], query: str
) -> AsyncBoltRequest | Refusal:
    """Bolt's request for a verified body, or why its body is not one Slack would send."""
    if not signed.text.strip():
        return Refusal(400, "empty-body", f"the body is empty; expected {ACCEPTED_BODIES}")
    try:
        # Bolt parses the body and builds its context here; malformed JSON, a JSON array or
        # null, or ids of the wrong type raise (ValueError, TypeError, RecursionError…).
        request = AsyncBoltRequest(body=signed.text, query=query, headers=dict(headers))
    except Exception:  # noqa: BLE001 - any failure to parse means a malformed body
        return Refusal(400, "malformed-body", f"the body is not {ACCEPTED_BODIES}")
    if not isinstance(request.body, dict):
        return Refusal(400, "malformed-body", f"the body is not {ACCEPTED_BODIES}")
    if (
        not request.body
        and "payload" in signed.text
        and request.content_type != JSON_TYPE
        and not signed.text.startswith("{")
    ):
        # Bolt takes any form that merely contains the word "payload" for an interactivity
        # payload, and a form without that field for an empty body: `/backfill run
        # channels=#payload-team` would reach no listener. Parse such a form as the command it is.
        fields = dict(parse_qsl(signed.text, keep_blank_values=True))
        if "payload" not in fields:
            request.body = fields
            request.context = build_async_context(AsyncBoltContext({}), fields)
    problem = shape_problem(request.body)
    if problem is not None:
        return Refusal(400, "malformed-body", problem)
    return request


# -- shape ----------------------------------------------------------------------------------------

_ID = (str, type(None))
# Top-level fields read by Bolt's context and matchers or by our guards, when present.
_TOP_STRINGS: Final = (
    "type",
    "command",
    "text",
    "team_id",
    "user_id",
    "channel_id",
    "enterprise_id",
    "api_app_id",
    "trigger_id",
    "response_url",
    "callback_id",
    "action_id",
    "thread_ts",
    "event_id",
    "token",
    "team_domain",
    "channel_name",
    "user_name",
)
_VIEW_STRINGS: Final = (
    "id",
    "type",
    "callback_id",
    "private_metadata",
    "hash",
    "team_id",
    "app_installed_team_id",
    "root_view_id",
    "previous_view_id",
    "external_id",
    "bot_id",
    "app_id",
)
_ACTION_STRINGS: Final = ("action_id", "block_id", "type", "value", "action_ts")


def shape_problem(body: dict[str, Any]) -> str | None:
    """None when the fields Bolt and our guards rely on have Slack's types, else what is wrong."""
    if not isinstance(body.get("command"), str) and not isinstance(body.get("type"), str):
        return f"the body has neither a command nor a type; expected {ACCEPTED_BODIES}"
    for name in _TOP_STRINGS:
        if not isinstance(body.get(name), _ID):
            return f"`{name}` must be a string"
    for name in ("team", "user", "enterprise", "channel"):
        problem = _entity(body.get(name), name)
        if problem:
            return problem
    if not isinstance(body.get("is_enterprise_install"), (bool, str, type(None))):
        return "`is_enterprise_install` must be a boolean"
    for name in ("container", "message", "previous_message", "state"):
        if not isinstance(body.get(name), (dict, type(None))):
            return f"`{name}` must be an object"
    return (
        _required_by_type(body)
        or _authorizations(body.get("authorizations"))
        or _view(body)
        or _actions(body.get("actions"))
        or _response_urls(body)
        or _event(body)
    )


# What Bolt's matchers index without looking first, per payload type (a missing or null one
# raised inside Bolt's dispatch: a 500).
_CALLBACK_TYPES: Final = frozenset(
    {
        "shortcut",
        "message_action",
        "interactive_message",
        "dialog_submission",
        "dialog_cancellation",
        "dialog_suggestion",
        "workflow_step_edit",
    }
)


def _required_by_type(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    # Slack sends both with every slash command; listeners answer on the response_url.
    if isinstance(body.get("command"), str) and (
        not isinstance(body.get("user_id"), str) or "response_url" not in body
    ):
        return "a slash command needs a user_id and a response_url"
    if kind == "block_actions":
        actions = body.get("actions")
        if (
            not isinstance(actions, list)
            or not actions
            or not all(
                isinstance(action, dict) and isinstance(action.get("action_id"), str)
                for action in actions
            )
        ):
            return "a block_actions payload needs a non-empty `actions` list with action_ids"
    elif kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not all(
            isinstance(view.get(key), str) for key in ("type", "callback_id")
        ):
            return f"a {kind} payload needs a `view` object with a string type and callback_id"
    elif kind == "block_suggestion":
        if not isinstance(body.get("action_id"), str):
            return "a block_suggestion payload needs a string `action_id`"
    elif kind in _CALLBACK_TYPES and not isinstance(body.get("callback_id"), str):
        return f"a {kind} payload needs a string `callback_id`"
    return None


def _entity(value: Any, name: str) -> str | None:
    """`team`, `user`, `enterprise`, `channel`: an id string, or an object with a string `id`."""
    if isinstance(value, dict):
        for key in ("id", "team_id", "enterprise_id"):
            if not isinstance(value.get(key), _ID):
                return f"`{name}.{key}` must be a string"
        return None
    if not isinstance(value, _ID):
        return f"`{name}` must be an object or an id"
    return None


def _authorizations(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        return "`authorizations` must be a list of objects"
    for entry in value:
        for key in ("team_id", "enterprise_id", "user_id"):
            if not isinstance(entry.get(key), _ID):
                return f"`authorizations[].{key}` must be a string"
        if not isinstance(entry.get("is_enterprise_install"), (bool, str, type(None))):
            return "`authorizations[].is_enterprise_install` must be a boolean"
    return None


def _view(body: dict[str, Any]) -> str | None:
    # Slack leaves `view` out when there is none; Bolt's warning about a request no listener
    # takes reads `view` whenever the key is there, so a null one raised inside Bolt (a 500).
    if "view" not in body:
        return None
    view = body["view"]
    if not isinstance(view, dict):
        return "`view` must be an object"
    for key in _VIEW_STRINGS:
        if not isinstance(view.get(key), _ID):
            return f"`view.{key}` must be a string"
    if not isinstance(view.get("blocks"), (list, type(None))):
        return "`view.blocks` must be a list"
    state = view.get("state")
    if state is None:
        return None
    if not isinstance(state, dict):
        return "`view.state` must be an object"
    values = state.get("values")
    if values is None:
        return None
    # Slack's shape: {block_id: {action_id: {"type": …, <value fields>}}}. What each element
    # holds is the listener's to parse; the nesting is the envelope's.
    if not isinstance(values, dict) or not all(
        isinstance(block, dict) and all(isinstance(element, dict) for element in block.values())
        for block in values.values()
    ):
        return "`view.state.values` must map block ids to action ids to objects"
    return None


def _actions(actions: Any) -> str | None:
    if actions is None:
        return None
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        return "`actions` must be a list of objects"
    for action in actions:
        for key in _ACTION_STRINGS:
            if not isinstance(action.get(key), _ID):
                return f"`actions[].{key}` must be a string"
        if not isinstance(action.get("selected_option"), (dict, type(None))):
            return "`actions[].selected_option` must be an object"
    return None


def _response_urls(body: dict[str, Any]) -> str | None:
    url = body.get("response_url")
    if url is not None and not (isinstance(url, str) and _URL.fullmatch(url)):
        return "`response_url` must be an http(s) URL"
    value = body.get("response_urls")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("response_url"), str)
        and _URL.fullmatch(entry["response_url"])
        for entry in value
    ):
        return "`response_urls` must be a list of objects with an http(s) response_url"
    return None


def _event(body: dict[str, Any]) -> str | None:
    if "event" not in body and body.get("type") != "event_callback":
        return None
    event = body.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return "`event` must be an object with a string type"
    for key in ("user", "channel", "item", "message", "previous_message"):
        if not isinstance(event.get(key), (str, dict, type(None))):
            return f"`event.{key}` must be an object or an id"
    for key in (
        "tab",
        "subtype",
        "channel_type",
        "text",
        "ts",
        "event_ts",
        "thread_ts",
        "team",
        "user_team",
        "bot_id",
    ):
        if not isinstance(event.get(key), _ID):
            return f"`event.{key}` must be a string"
    for key in ("message", "previous_message"):
        inner = event.get(key)
        if isinstance(inner, dict):
            for inner_key in ("user", "thread_ts", "subtype"):
                if not isinstance(inner.get(inner_key), (str, dict, type(None))):
                    return f"`event.{key}.{inner_key}` must be a string"
    return None
