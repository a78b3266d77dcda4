"""Slack's side of a change in the workspace: what it does to history, and which events the app
receives for it (the inner events of docs.slack.dev's Events API, shaped as slack-platform.md §16).

Each function mutates the `Workspace` under its lock as Slack does, so `conversations.history` and
`conversations.replies` answer the new state at once, and returns an `Outcome`: the events an app
with the manifest's bot subscriptions receives. Message events come only from conversations the
bot is in (`message.channels`, `message.groups`; never DMs: the app has no `message.im`); channel
events (`channel_rename`, `channel_deleted`, ...) for public channels and the private ones the bot
is in, named `group_*` for private channels as Slack's event catalogue has them. Envelopes and
delivery live in `events.py`. One module, though past 400 lines: every change shares the rules
of who hears what and the event shapes, and `apply` maps a `Change` (the data form a stream is
made of) onto exactly these functions. Imports nothing of the app.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from fakeslack.workspace import Channel, Message, Workspace, key_to_ts, ts_key

Event = dict[str, Any]

TOMBSTONE_TEXT = "This message was deleted."
SLACKBOT = "USLACKBOT"
# Subtypes a person cannot edit or delete (system lines, and a deleted parent's placeholder).
UNCHANGEABLE = frozenset(
    {
        "tombstone",
        "channel_join",
        "channel_leave",
        "channel_name",
        "channel_topic",
        "channel_purpose",
        "channel_archive",
        "pinned_item",
    }
)
# Slack's channel names: lower case letters, digits, `-` and `_`, at most 80 characters.
CHANNEL_NAME = re.compile(r"^[a-z0-9_\-]{1,80}$")
KINDS = (
    "post",  # a top-level message
    "reply",  # a thread reply (`thread_ts`)
    "bot",  # a `bot_message` from an integration (noise unless bots are kept)
    "join",  # `user` joins the channel: a `channel_join` line and `member_joined_channel`
    "edit",  # `message_changed`
    "delete",  # `message_deleted`, or a tombstone for a thread parent with replies
    "rename",  # `channel_rename` and a `channel_name` line
    "delete_channel",  # `channel_deleted`
    "foreign",  # a message in ANOTHER workspace (`team`), for the same app
)


@dataclass(frozen=True)
class Change:
    """One change, as data (so a stream can be generated, stored, compared and sent over HTTP).

    `at` is when it happens (unix seconds; the real clock when None): an edit's `edited.ts`, a
    deletion's `event_ts`. `ts` is the new message's ts for post/reply/bot/join/rename/foreign
    (fresh when None) and the target for edit/delete."""

    kind: str
    channel: str
    at: float | None = None
    ts: str | None = None
    thread_ts: str | None = None
    text: str = ""
    user: str | None = None
    name: str | None = None  # rename: the new name
    team: str | None = None  # foreign: the other workspace's team id

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        if data.get("kind") not in KINDS:
            raise ValueError(f"change kind must be one of {', '.join(KINDS)}")
        if not isinstance(data.get("channel"), str):
            raise TypeError("a change needs a channel id")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class Outcome:
    """What a change did: the message it created or changed, the inner events the app receives
    (for `team`, None meaning this workspace), and the (channel, ts) of the messages whose new
    content those events carry (posts and edits: what a mirror is told to store)."""

    message: Message | None = None
    events: list[Event] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)
    team: str | None = None


# -- who hears what ----------------------------------------------------------------------------
def channel_type(ch: Channel) -> str:
    """`channel_type` of a message event."""
    return "im" if ch.is_im else "group" if ch.is_private else "channel"


def hears_messages(ws: Workspace, ch: Channel) -> bool:
    return not ch.is_im and ws.bot_user_id in ch.members


def hears_channel(ws: Workspace, ch: Channel) -> bool:
    return not ch.is_im and (not ch.is_private or ws.bot_user_id in ch.members)


def _need(ws: Workspace, channel_id: str) -> Channel:
    ch = ws.channel(channel_id)
    if ch is None:
        raise KeyError(f"no channel {channel_id}")
    return ch


def _stamp(ws: Workspace, ch: Channel, at: float | None, *after: str) -> str:
    """A fresh ts for the change at `at` (default: the real clock), later than every ts in
    `after` (an edit is newer than the message and its previous edit)."""
    ts = ws.next_ts(ch, at)
    floor = max((ts_key(t) for t in after), default=0)
    return ts if ts_key(ts) > floor else key_to_ts(floor + 1)


# -- events ------------------------------------------------------------------------------------
def message_event(ch: Channel, msg: Message) -> Event:
    """A new message as `message.channels` / `message.groups` deliver it."""
    event = ch.render(msg)
    event.update(channel=ch.id, channel_type=channel_type(ch), event_ts=msg["ts"])
    return event


def changed_event(ch: Channel, stamp: str, message: Message, previous: Message) -> Event:
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": ch.id,
        "channel_type": channel_type(ch),
        "ts": stamp,
        "event_ts": stamp,
        "message": message,
        "previous_message": previous,
    }


def deleted_event(ch: Channel, stamp: str, deleted_ts: str, previous: Message) -> Event:
    return {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": ch.id,
        "channel_type": channel_type(ch),
        "ts": stamp,
        "event_ts": stamp,
        "deleted_ts": deleted_ts,
        "previous_message": previous,
    }


def posted(ws: Workspace, ch: Channel, msg: Message) -> Outcome:
    """The outcome of a message already inserted in `ch` (also for `chat.postMessage`)."""
    if not hears_messages(ws, ch):
        return Outcome(msg)
    return Outcome(msg, [message_event(ch, msg)], [(ch.id, msg["ts"])])


def edited(ws: Workspace, ch: Channel, msg: Message, previous: Message) -> Outcome:
    """The outcome of `msg` already edited in place (also for `chat.update`)."""
    if not hears_messages(ws, ch):
        return Outcome(msg)
    stamp = msg.get("edited", {}).get("ts") or _stamp(ws, ch, None, msg["ts"])
    return Outcome(msg, [changed_event(ch, stamp, ch.render(msg), previous)], [(ch.id, msg["ts"])])


# -- the changes -------------------------------------------------------------------------------
def post(
    ws: Workspace,
    channel_id: str,
    text: str,
    *,
    user: str | None = None,
    thread_ts: str | None = None,
    broadcast: bool = False,
    subtype: str | None = None,
    ts: str | None = None,
    at: float | None = None,
    **fields: Any,
) -> Outcome:
    """A new message (a reply when `thread_ts`; `user=""` for none, as on a `bot_message`)."""
    with ws.lock:
        ch = _need(ws, channel_id)
        if ch.is_archived:
            raise ValueError(f"channel {channel_id} is archived")
        ts = ts or ws.next_ts(ch, at)
        if thread_ts:
            if subtype:
                fields["subtype"] = subtype
            msg = ws.add_reply(
                channel_id, thread_ts, text, user=user, ts=ts, broadcast=broadcast, **fields
            )
        else:
            msg = ws.add_message(channel_id, text, user=user, ts=ts, subtype=subtype, **fields)
        return posted(ws, ch, msg)


def edit(
    ws: Workspace,
    channel_id: str,
    ts: str,
    text: str,
    *,
    user: str | None = None,
    at: float | None = None,
) -> Outcome:
    """`message_changed`: new text, `edited: {user, ts}`, the old message as `previous_message`."""
    with ws.lock:
        ch = _need(ws, channel_id)
        msg = ch.by_ts.get(ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel_id}")
        if msg.get("subtype") in UNCHANGEABLE:
            raise ValueError(f"a {msg['subtype']} message cannot be edited")
        previous = ch.render(msg)
        stamp = _stamp(ws, ch, at, ts, msg.get("edited", {}).get("ts") or "0")
        msg["text"] = text
        if msg.get("blocks"):  # the rich_text mirror of what was typed follows the new text
            msg["blocks"] = [rich_text(text, msg["blocks"][0].get("block_id", "edit"))]
        msg["edited"] = {"user": user or msg.get("user", ""), "ts": stamp}
        return edited(ws, ch, msg, previous)


def delete(ws: Workspace, channel_id: str, ts: str, *, at: float | None = None) -> Outcome:
    """`message_deleted`; a thread parent that still has replies becomes a tombstone instead
    (`message_changed` whose message has subtype `tombstone`) and its replies stay. Deleting the
    last reply under a tombstone removes the tombstone too (a second `message_deleted`)."""
    with ws.lock:
        ch = _need(ws, channel_id)
        msg = ch.by_ts.get(ts)
        if msg is None:
            raise KeyError(f"no message {ts} in {channel_id}")
        if msg.get("subtype") == "tombstone":
            raise ValueError("a tombstone cannot be deleted; delete its replies")
        stamp = _stamp(ws, ch, at, ts)
        previous = ch.render(msg)
        hears = hears_messages(ws, ch)
        if not ch.is_reply(msg) and ch.thread_replies(ts):
            msg.clear()  # in place: history's index holds this very dict
            msg.update(
                {
                    "type": "message",
                    "subtype": "tombstone",
                    "text": TOMBSTONE_TEXT,
                    "user": SLACKBOT,
                    "hidden": True,
                    "ts": ts,
                }
            )
            events = [changed_event(ch, stamp, ch.render(msg), previous)]
            return Outcome(msg, events if hears else [])
        ch.remove(ts)
        events = [deleted_event(ch, stamp, ts, previous)]
        parent = ch.by_ts.get(msg["thread_ts"]) if ch.is_reply(msg) else None
        tombstone = parent is not None and parent.get("subtype") == "tombstone"
        if parent is not None and tombstone and not ch.thread_replies(parent["ts"]):
            gone = ch.render(parent)
            ch.remove(parent["ts"])
            events.append(deleted_event(ch, stamp, parent["ts"], gone))
        return Outcome(None, events if hears else [])


def rename(
    ws: Workspace,
    channel_id: str,
    name: str,
    *,
    user: str | None = None,
    ts: str | None = None,
    at: float | None = None,
) -> Outcome:
    """`channel_rename` (`group_rename` for a private channel), and the `channel_name` line Slack
    posts in the channel. The old name joins `previous_names`."""
    if not CHANNEL_NAME.match(name):
        raise ValueError(f"invalid channel name {name!r}")
    with ws.lock:
        ch = _need(ws, channel_id)
        old = ch.name
        if name == old:
            return Outcome()
        if any(c.name == name and not c.deleted for c in ws.channels.values()):
            raise ValueError(f"name {name!r} is taken")
        ch.previous_names.append(old)
        ch.name = name
        stamp = ts or ws.next_ts(ch, at)
        event: Event = {
            "type": "group_rename" if ch.is_private else "channel_rename",
            "channel": {
                "id": ch.id,
                "name": name,
                "name_normalized": name,
                "created": ch.created,
                "is_channel": True,
                "is_group": ch.is_private,
                "is_mpim": False,
            },
            "event_ts": stamp,
        }
        line = ws.add_message(
            channel_id,
            f'has renamed the channel from "{old}" to "{name}"',
            user=user or ch.creator,
            ts=stamp,
            subtype="channel_name",
            old_name=old,
            name=name,
        )
        out = posted(ws, ch, line)
        out.events[:0] = [event] if hears_channel(ws, ch) else []
        return out


def delete_channel(ws: Workspace, channel_id: str, *, at: float | None = None) -> Outcome:
    """`channel_deleted` (`group_deleted` for a private channel); the channel and its history
    are gone (`channel_not_found`)."""
    with ws.lock:
        ch = _need(ws, channel_id)
        hears = hears_channel(ws, ch)
        stamp = ws.next_ts(ch, at)
        ws.delete_channel(channel_id)
        kind = "group_deleted" if ch.is_private else "channel_deleted"
        return Outcome(
            events=[{"type": kind, "channel": ch.id, "event_ts": stamp}] if hears else []
        )


def add_member(
    ws: Workspace,
    channel_id: str,
    user_id: str,
    *,
    inviter: str | None = None,
    ts: str | None = None,
    at: float | None = None,
) -> Outcome:
    """`user_id` joins: a `channel_join` line and `member_joined_channel` (for the bot's own
    join too: `user` is then the bot user id). Nothing when already a member."""
    with ws.lock:
        ch = _need(ws, channel_id)
        if ch.is_archived:
            raise ValueError(f"channel {channel_id} is archived")
        if user_id in ch.members:
            return Outcome()
        ch.members.add(user_id)
        extra = {"inviter": inviter} if inviter else {}
        line = ws.add_message(
            channel_id,
            f"<@{user_id}> has joined the channel",
            user=user_id,
            ts=ts or ws.next_ts(ch, at),
            subtype="channel_join",
            **extra,
        )
        out = posted(ws, ch, line)
        if hears_channel(ws, ch) and ws.bot_user_id in ch.members:
            out.events.append(
                {
                    "type": "member_joined_channel",
                    "user": user_id,
                    "channel": ch.id,
                    "channel_type": "G" if ch.is_private else "C",
                    "team": ws.team_id,
                    **extra,
                    "event_ts": line["ts"],
                }
            )
        return out


def foreign_message(change: Change) -> Outcome:
    """A message posted in another workspace that has the app too: the app receives it with that
    workspace's `team_id`; this workspace does not change."""
    ts = change.ts or key_to_ts(round((change.at or 0.0) * 1_000_000))
    event: Event = {
        "type": "message",
        "user": change.user or "U0FOREIGN1",
        "text": change.text,
        "ts": ts,
        "team": change.team,
        "channel": change.channel,
        "channel_type": "channel",
        "event_ts": ts,
    }
    return Outcome(None, [event], [], change.team)


def apply(ws: Workspace, change: Change) -> Outcome:
    """Carry out one `Change` on `ws`."""
    kind, channel, at = change.kind, change.channel, change.at
    if kind in ("post", "reply"):
        return post(
            ws,
            channel,
            change.text,
            user=change.user,
            thread_ts=change.thread_ts if kind == "reply" else None,
            ts=change.ts,
            at=at,
        )
    if kind == "bot":
        return post(ws, channel, change.text, ts=change.ts, at=at, **bot_fields(ws, change.user))
    if kind == "join":
        return add_member(ws, channel, change.user or ws.bot_user_id, ts=change.ts, at=at)
    if kind == "edit":
        return edit(ws, channel, _target(change), change.text, user=change.user, at=at)
    if kind == "delete":
        return delete(ws, channel, _target(change), at=at)
    if kind == "rename":
        if not change.name:
            raise ValueError("a rename needs a name")
        return rename(ws, channel, change.name, user=change.user, ts=change.ts, at=at)
    if kind == "delete_channel":
        return delete_channel(ws, channel, at=at)
    if kind == "foreign":
        return foreign_message(change)
    raise ValueError(f"unknown change kind {kind!r}")


def _target(change: Change) -> str:
    if not change.ts:
        raise ValueError(f"a {change.kind} needs the message ts")
    return change.ts


def bot_fields(ws: Workspace, bot_user: str | None) -> dict[str, Any]:
    """The fields of a `bot_message` from `bot_user` (default: the first integration's bot)."""
    bots = [
        u
        for u in ws.users.values()
        if u.get("is_bot") and u["id"] != ws.bot_user_id and u.get("profile", {}).get("bot_id")
    ]
    bot = next((u for u in bots if u["id"] == bot_user), bots[0] if bots else None)
    return {
        "user": "",
        "subtype": "bot_message",
        "bot_id": bot["profile"]["bot_id"] if bot else "B0INTEGRATN",
        "username": bot["name"] if bot else "integration",
        "icons": {"emoji": ":robot_face:"},
    }


def rich_text(text: str, block_id: str) -> dict[str, Any]:
    """The `rich_text` block a Slack client attaches to what a person typed."""
    return {
        "type": "rich_text",
        "block_id": block_id,
        "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
    }
