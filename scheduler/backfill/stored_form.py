"""How a Slack message is stored: the one conversion from a message as Slack sends it (in a
history page, a replies page or a live event) to the `MessageRecord` both stores receive, so a
backfill and the live mirror store a message identically. Pure; imports `db.records` and the
engine's filter and user-name helpers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from db.records import MessageRecord
from scheduler.backfill.filter import render_mentions
from scheduler.backfill.users import author_of


def edited_ts_of(message: Mapping[str, Any]) -> str | None:
    """Slack's `edited.ts` of the message's current text; None when it was never edited."""
    edited = message.get("edited")
    ts = edited.get("ts") if isinstance(edited, Mapping) else None
    return ts if isinstance(ts, str) and ts else None


def stored_form(
    workspace_id: str,
    channel_id: str,
    channel_name: str,
    message: Mapping[str, Any],
    thread_ts: str | None,
    names: Mapping[str, str],
) -> MessageRecord:
    """The record of `message` (which must carry its `ts`): author by display name, mentions
    rendered as `@name`, `thread_ts` as the caller decided (set on replies and on parents that
    have replies), and the edit it reflects."""
    user_id, user_name = author_of(message, names)
    text = message.get("text")
    return MessageRecord(
        workspace_id=workspace_id,
        channel_id=channel_id,
        channel_name=channel_name,
        ts=str(message["ts"]),
        thread_ts=thread_ts,
        user_id=user_id,
        user_name=user_name,
        text=render_mentions(text if isinstance(text, str) else "", names),
        edited_ts=edited_ts_of(message),
    )


__all__ = ["edited_ts_of", "stored_form"]
