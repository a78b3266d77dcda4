"""What a Slack event means for the stored copy (design.md, "Live mirror"): pure rules, one event
in, the changes to make out. The drainer (`scheduler.mirror`) carries them out through the
engine's own filter, stored form and batched writer.

- a new message or thread reply (no subtype, `thread_broadcast`, `file_share`, `me_message`, any
  other visible subtype) is stored if the filter keeps it, as a backfill stores it;
- `message_changed`: the new version is stored, or removed as `disqualified` when the filter no
  longer keeps it; a thread parent deleted while replies remain comes as a tombstone: removed;
- `message_deleted`: removed (`deleted`);
- `channel_rename` / `group_rename`: the channel's stored name changes;
- `channel_deleted` / `group_deleted`: the channel's messages go.
Anything else (joins, archives, the bot joining a channel, hidden housekeeping) changes nothing
now; a channel the bot joins is read by the next run.

Imports the engine's filter and stored-form helpers and `db.removals`' reasons only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from db.removals import DELETED, DISQUALIFIED
from scheduler.backfill.filter import keep_message
from scheduler.backfill.stored_form import edited_ts_of

# The inner event types the app subscribes to for the mirror (manifest.yml), besides `message`.
CHANNEL_EVENTS = frozenset(
    {
        "channel_rename",
        "group_rename",
        "channel_deleted",
        "group_deleted",
        "channel_archive",
        "group_archive",
        "member_joined_channel",
    }
)


@dataclass(frozen=True, slots=True)
class Store:
    """Store this message (as Slack shows it now) with this `thread_ts`."""

    message: Mapping[str, Any]
    thread_ts: str | None

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.message.get("ts")


@dataclass(frozen=True, slots=True)
class Remove:
    """Remove the stored message `ts`, and why (`deleted`, or `disqualified` as of `edited_ts`)."""

    ts: str
    reason: str = DELETED
    edited_ts: str | None = None


@dataclass(frozen=True, slots=True)
class Rename:
    """The channel is now called `name`, as of `event_ts` (Slack's stamp of the rename, when the
    event carries one: renames, too, can arrive out of order)."""

    name: str
    event_ts: str | None = None


@dataclass(frozen=True, slots=True)
class DropChannel:
    pass


Change = Store | Remove | Rename | DropChannel


def channel_of(event: Mapping[str, Any]) -> str | None:
    """The channel an inner event is about (`channel` is an id, or an object with one)."""
    channel = event.get("channel")
    if isinstance(channel, Mapping):
        channel = channel.get("id")
    return channel if isinstance(channel, str) and channel else None


def followed(event: Mapping[str, Any]) -> bool:
    """Whether the mirror follows this event's conversation: public and private channels, not
    direct messages (the app's own DMs with people are not part of the copy)."""
    if event.get("channel_type") in ("im", "mpim"):
        return False
    channel = channel_of(event)
    return channel is not None and not channel.startswith("D")


def thread_ts_of(message: Mapping[str, Any]) -> str | None:
    """`thread_ts` as stored: set on replies and on parents that have replies (design.md)."""
    thread_ts, ts = message.get("thread_ts"), message.get("ts")
    if not isinstance(thread_ts, str) or not thread_ts:
        return None
    if thread_ts != ts or (message.get("reply_count") or 0) > 0:
        return thread_ts
    return None


def changes_of(
    event: Mapping[str, Any], *, include_bots: bool, min_text_chars: int
) -> list[Change]:
    """The changes one inner event makes to a channel's stored copy (none for what it ignores)."""
    kind = event.get("type")
    if kind in ("channel_rename", "group_rename"):
        channel = event.get("channel")
        name = channel.get("name") if isinstance(channel, Mapping) else None
        stamp = event.get("event_ts")
        stamp = stamp if isinstance(stamp, str) and stamp else None
        return [Rename(name, stamp)] if isinstance(name, str) and name else []
    if kind in ("channel_deleted", "group_deleted"):
        return [DropChannel()]
    if kind != "message":
        return []
    subtype = event.get("subtype")
    if subtype == "message_deleted":
        deleted = event.get("deleted_ts")
        return [Remove(deleted)] if isinstance(deleted, str) and deleted else []
    if subtype == "message_changed":
        message = event.get("message")
        if not isinstance(message, Mapping) or not isinstance(message.get("ts"), str):
            return []
        if message.get("subtype") == "tombstone":
            return [Remove(message["ts"])]
        if keep_message(message, include_bots=include_bots, min_text_chars=min_text_chars):
            return [Store(message, thread_ts_of(message))]
        return [Remove(message["ts"], DISQUALIFIED, edited_ts_of(message))]
    if subtype == "message_replied" or event.get("hidden"):
        return []  # a parent's reply count, or other housekeeping Slack hides from history
    if not isinstance(event.get("ts"), str):
        return []
    if keep_message(event, include_bots=include_bots, min_text_chars=min_text_chars):
        return [Store(event, thread_ts_of(event))]
    return []


__all__ = [
    "CHANNEL_EVENTS",
    "Change",
    "DropChannel",
    "Remove",
    "Rename",
    "Store",
    "changes_of",
    "channel_of",
    "followed",
    "thread_ts_of",
]
