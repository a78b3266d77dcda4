"""What the gateway accepts as Slack's answer to each method it calls: the shape of every field the
engine relies on (`messages` a list of objects with a string `ts`, `has_more` a boolean, cursors
strings, `channels`/`members` lists of objects with an `id`, `channel`/`user` objects, `ok` true).
An answer that passes `problem_of` can be read without a type check; one that does not is a
malformed answer, which the gateway retries like a 5xx. Imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

# Slack's message timestamps: "<seconds>.<microseconds>", always a string.
_TS = re.compile(r"\d+\.\d+")


def problem_of(method: str, data: object) -> str | None:
    """None when `data` is a well-formed successful answer to `method`, else what is wrong with
    it, in words (short; it ends up in the run's report)."""
    if not isinstance(data, dict):
        return f"the answer is a {type(data).__name__}, not a JSON object"
    if data.get("ok") is not True:
        return "ok is not true"
    problem = _cursor_problem(data)
    if problem is not None:
        return problem
    check = _CHECKS.get(method)
    return None if check is None else check(data)


def _cursor_problem(data: Mapping[str, Any]) -> str | None:
    meta = data.get("response_metadata")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        return "response_metadata is not an object"
    cursor = meta.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        return "response_metadata.next_cursor is not a string"
    return None


def _messages(data: Mapping[str, Any]) -> str | None:
    messages = data.get("messages")
    if messages is None:
        return "messages is missing"
    if not isinstance(messages, list):
        return "messages is not a list"
    if "has_more" in data and not isinstance(data["has_more"], bool):
        return "has_more is not a boolean"
    for message in messages:
        problem = _message_problem(message)
        if problem is not None:
            return problem
    return None


def _message_problem(message: object) -> str | None:
    if not isinstance(message, dict):
        return "a message is not an object"
    ts = message.get("ts")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return "a message has no valid ts"
    # Fields the engine computes with: a wrong type would stop the run on an internal error.
    for key in ("thread_ts", "latest_reply"):
        value = message.get(key)
        if value is not None and (not isinstance(value, str) or not _TS.fullmatch(value)):
            return f"a message's {key} is not a timestamp"
    count = message.get("reply_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        return "a message's reply_count is not a count"
    for key in ("user", "bot_id", "subtype"):
        value = message.get(key)
        if value is not None and not isinstance(value, str):
            return f"a message's {key} is not a string"
    return None


def _objects_with_id(key: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(data: Mapping[str, Any]) -> str | None:
        items = data.get(key)
        if items is None:
            return f"{key} is missing"
        if not isinstance(items, list):
            return f"{key} is not a list"
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                return f"an entry of {key} is not an object with an id"
        return None

    return check


def _object(key: str) -> Callable[[Mapping[str, Any]], str | None]:
    def check(data: Mapping[str, Any]) -> str | None:
        value = data.get(key)
        if not isinstance(value, dict):
            return f"{key} is missing" if value is None else f"{key} is not an object"
        return None

    return check


_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "conversations.history": _messages,
    "conversations.replies": _messages,
    "conversations.list": _objects_with_id("channels"),
    "users.list": _objects_with_id("members"),
    "conversations.info": _object("channel"),
    "conversations.join": _object("channel"),
    "users.info": _object("user"),
}
