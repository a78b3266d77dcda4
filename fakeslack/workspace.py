"""The in-memory Slack workspace that fakeslack serves: users, channels, messages and threads.

Messages are stored raw; thread metadata on parents (`reply_count`, `reply_users`, ...) is computed
when a message is rendered, so adding a late reply is always reflected. Imports nothing of the app.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

Message = dict[str, Any]


def ts_key(ts: str) -> int:
    """A Slack `ts` ("1700000000.000100") as integer microseconds, for ordering and comparisons."""
    sec, _, frac = ts.partition(".")
    if sec.isdigit() and (not frac or frac.isdigit()) and len(frac) <= 6:
        return int(sec) * 1_000_000 + int(frac.ljust(6, "0") or 0)
    try:
        value = Decimal(ts)
    except InvalidOperation as exc:
        raise ValueError(f"invalid ts {ts!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"invalid ts {ts!r}")
    return int(value * 1_000_000)


def key_to_ts(key: int) -> str:
    return f"{key // 1_000_000}.{key % 1_000_000:06d}"


def float_to_ts(value: float) -> str:
    return key_to_ts(round(value * 1_000_000))


def stable_id(prefix: str, *parts: str, length: int = 10) -> str:
    """A deterministic Slack-style id (`prefix` + upper-case base36) derived from `parts`."""
    digest = int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:12], "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(length):
        digest, r = divmod(digest, 36)
        out.append(alphabet[r])
    return prefix + "".join(out)


class _Sorted:
    """Messages kept in ascending `ts` order (parallel key list for bisect)."""

    __slots__ = ("keys", "msgs")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.msgs: list[Message] = []

    def insert(self, key: int, msg: Message) -> None:
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.msgs.insert(i, msg)

    def remove(self, key: int) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
            del self.msgs[i]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    is_general: bool = False
    is_im: bool = False
    created: int = 0
    creator: str = ""
    topic: str = ""
    purpose: str = ""
    members: set[str] = field(default_factory=set)
    previous_names: list[str] = field(default_factory=list)
    im_user: str | None = None  # the other party of a DM
    deleted: bool = False
    # The newest ts key ever stored here (deletions do not lower it: Slack never reuses a ts).
    newest: int = field(default=0, repr=False)
    top: _Sorted = field(default_factory=_Sorted, repr=False)  # what history shows
    by_ts: dict[str, Message] = field(default_factory=dict, repr=False)  # every message
    replies: dict[str, _Sorted] = field(default_factory=dict, repr=False)  # parent ts -> replies

    # -- messages -----------------------------------------------------------------------------
    def insert(self, msg: Message) -> None:
        ts = msg["ts"]
        if ts in self.by_ts:
            raise ValueError(f"duplicate ts {ts} in {self.id}")
        key = ts_key(ts)
        self.by_ts[ts] = msg
        self.newest = max(self.newest, key)
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != ts:
            self.replies.setdefault(thread_ts, _Sorted()).insert(key, msg)
            if msg.get("subtype") == "thread_broadcast":
                self.top.insert(key, msg)
        else:
            self.top.insert(key, msg)

    def load(self, msgs: list[Message]) -> None:
        """Bulk insert (fast path for the generator): sort once instead of bisecting each."""
        for msg in sorted(msgs, key=lambda m: ts_key(m["ts"])):
            ts = msg["ts"]
            if ts in self.by_ts:
                raise ValueError(f"duplicate ts {ts} in {self.id}")
            key = ts_key(ts)
            self.by_ts[ts] = msg
            self.newest = max(self.newest, key)
            thread_ts = msg.get("thread_ts")
            if thread_ts and thread_ts != ts:
                rs = self.replies.setdefault(thread_ts, _Sorted())
                rs.keys.append(key)
                rs.msgs.append(msg)
                if msg.get("subtype") != "thread_broadcast":
                    continue
            self.top.keys.append(key)
            self.top.msgs.append(msg)
        # Re-sort in case load() was called on a non-empty channel.
        for s in [self.top, *self.replies.values()]:
            if any(a > b for a, b in zip(s.keys, s.keys[1:], strict=False)):
                pairs = sorted(zip(s.keys, s.msgs, strict=True), key=lambda p: p[0])
                s.keys = [p[0] for p in pairs]
                s.msgs = [p[1] for p in pairs]

    def remove(self, ts: str) -> None:
        msg = self.by_ts.pop(ts)
        key = ts_key(ts)
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != ts:
            self.replies[thread_ts].remove(key)
            if msg.get("subtype") == "thread_broadcast":
                self.top.remove(key)
        else:
            self.top.remove(key)

    def is_reply(self, msg: Message) -> bool:
        thread_ts = msg.get("thread_ts")
        return bool(thread_ts) and thread_ts != msg["ts"]

    def thread_replies(self, parent_ts: str) -> list[Message]:
        rs = self.replies.get(parent_ts)
        return list(rs.msgs) if rs else []

    def render(self, msg: Message) -> Message:
        """The message as the API shows it, with live thread metadata on parents."""
        out = dict(msg)
        if not self.is_reply(msg):
            rs = self.replies.get(msg["ts"])
            if rs is not None and len(rs):
                users: list[str] = []
                for r in rs.msgs:
                    u = r.get("user") or r.get("bot_id")
                    if u and u not in users:
                        users.append(u)
                out["thread_ts"] = msg["ts"]
                out["reply_count"] = len(rs)
                out["reply_users_count"] = len(users)
                out["reply_users"] = users
                out["latest_reply"] = rs.msgs[-1]["ts"]
                out["is_locked"] = False
                out["subscribed"] = False
        return out

    def last_key(self) -> int:
        return self.newest

    # -- the conversation object --------------------------------------------------------------
    def to_api(self, team_id: str, bot_user_id: str) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user or "",
                "is_user_deleted": False,
                "priority": 0,
            }
        topic_set = self.created if self.topic else 0
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": team_id,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "creator": self.creator,
            "is_ext_shared": False,
            "shared_team_ids": [team_id],
            "pending_connected_team_ids": [],
            "is_member": bot_user_id in self.members,
            "topic": {
                "value": self.topic,
                "creator": self.creator if self.topic else "",
                "last_set": topic_set,
            },
            "purpose": {
                "value": self.purpose,
                "creator": self.creator if self.purpose else "",
                "last_set": topic_set,
            },
            "previous_names": list(self.previous_names),
            "num_members": len(self.members),
        }


class Workspace:
    """A Slack team: users, channels (with messages), the app's bot identity and credentials."""

    def __init__(
        self,
        *,
        team_id: str = "T0FAKE00001",
        team_name: str = "Fake Workspace",
        domain: str = "fakeworkspace",
        bot_user_id: str = "U0FAKEBOT01",
        bot_id: str = "B0FAKEBOT01",
        app_id: str = "A0FAKEAPP01",
        bot_token: str = "xoxb-fake-token",
        signing_secret: str = "fakesecret",
        now: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.domain = domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.now = time.time() if now is None else float(now)
        self.seed = seed
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.dm_by_user: dict[str, str] = {}
        # Held by the server while it reads or writes; tests may mutate from another thread.
        self.lock = threading.RLock()

    # -- users and channels -------------------------------------------------------------------
    def add_user(self, user: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.users[user["id"]] = user
            return user

    def add_channel(self, channel: Channel) -> Channel:
        with self.lock:
            self.channels[channel.id] = channel
            return channel

    def channel(self, channel_id: str) -> Channel | None:
        ch = self.channels.get(channel_id)
        return None if ch is None or ch.deleted else ch

    def dm_id_for(self, user_id: str) -> str:
        """The stable `D…` id of the bot's DM with `user_id` (opened or not)."""
        return self.dm_by_user.get(user_id) or stable_id(
            "D", self.team_id, self.bot_user_id, user_id
        )

    def open_dm(self, user_id: str) -> Channel:
        """The bot's DM with `user_id`; the same stable `D…` id every time."""
        with self.lock:
            dm_id = self.dm_by_user.get(user_id)
            if dm_id is None:
                dm_id = self.dm_id_for(user_id)
                self.dm_by_user[user_id] = dm_id
                self.channels[dm_id] = Channel(
                    id=dm_id,
                    name=dm_id,
                    is_private=True,
                    is_im=True,
                    created=int(time.time()),
                    members={self.bot_user_id, user_id},
                    im_user=user_id,
                )
            return self.channels[dm_id]

    def delete_channel(self, channel_id: str) -> None:
        with self.lock:
            ch = self.channels.get(channel_id)
            if ch is not None:
                ch.deleted = True

    # -- messages -----------------------------------------------------------------------------
    def next_ts(self, channel: Channel, at: float | None = None) -> str:
        """A fresh ts for `channel` at `at` (default: the real clock), unique and increasing."""
        key = round((time.time() if at is None else at) * 1_000_000)
        if at is None:
            key = max(key, channel.last_key() + 1)
        while key_to_ts(key) in channel.by_ts:
            key += 1
        return key_to_ts(key)

    def add_message(
        self,
        channel_id: str,
        text: str = "",
        *,
        user: str | None = None,
        ts: str | None = None,
        subtype: str | None = None,
        **fields: Any,
    ) -> Message:
        """Post a top-level message (default author: the first human user; default ts: now)."""
        with self.lock:
            ch = self._need_channel(channel_id)
            msg: Message = {"type": "message"}
            if subtype:
                msg["subtype"] = subtype
            author = user if user is not None else self._default_author()
            if author:
                msg["user"] = author
            msg["text"] = text
            msg["ts"] = ts or self.next_ts(ch)
            msg["team"] = self.team_id
            msg.update(fields)
            ch.insert(msg)
            return msg

    def add_reply(
        self,
        channel_id: str,
        thread_ts: str,
        text: str = "",
        *,
        user: str | None = None,
        ts: str | None = None,
        broadcast: bool = False,
        **fields: Any,
    ) -> Message:
        """Post a reply in the thread of `thread_ts` (a `thread_broadcast` when `broadcast`)."""
        with self.lock:
            ch = self._need_channel(channel_id)
            parent = ch.by_ts.get(thread_ts)
            if parent is None or ch.is_reply(parent):
                raise KeyError(f"no parent message {thread_ts} in {channel_id}")
            author = user if user is not None else self._default_author()
            msg: Message = {"type": "message"}
            if broadcast:
                msg["subtype"] = "thread_broadcast"
            if author:
                msg["user"] = author
            msg["text"] = text
            msg["ts"] = ts or self.next_ts(ch)
            msg["thread_ts"] = thread_ts
            if parent.get("user"):
                msg["parent_user_id"] = parent["user"]
            msg["team"] = self.team_id
            if broadcast:
                msg["root"] = {k: parent[k] for k in ("type", "user", "text", "ts") if k in parent}
            msg.update(fields)
            ch.insert(msg)
            return msg

    def edit_message(
        self,
        channel_id: str,
        ts: str,
        text: str,
        *,
        user: str | None = None,
        at: float | None = None,
    ) -> Message:
        """Change the text in place, with `edited` = who and when (`at`, default the real clock).
        No event: `FakeSlack.edit_message` is the change that also tells the app."""
        with self.lock:
            ch = self._need_channel(channel_id)
            msg = ch.by_ts[ts]
            msg["text"] = text
            msg["edited"] = {"user": user or msg.get("user", ""), "ts": self.next_ts(ch, at)}
            return msg

    def delete_message(self, channel_id: str, ts: str) -> None:
        """Remove the message outright, telling nobody (a deletion the app never hears of, as
        when an event is lost); `FakeSlack.delete_message` is the change Slack announces."""
        with self.lock:
            self._need_channel(channel_id).remove(ts)

    def _need_channel(self, channel_id: str) -> Channel:
        ch = self.channel(channel_id)
        if ch is None:
            raise KeyError(f"no channel {channel_id}")
        return ch

    def _default_author(self) -> str | None:
        for uid, u in self.users.items():
            if not u.get("is_bot") and not u.get("deleted"):
                return uid
        return None

    # -- oracles ------------------------------------------------------------------------------
    def ground_truth(self, days: float, now: float | None = None, **kwargs: Any) -> Any:
        """See `fakeslack.ground_truth.ground_truth`."""
        from fakeslack.ground_truth import ground_truth

        return ground_truth(self, days, now, **kwargs)

    def expected_calls(
        self, days: float, now: float | None = None, **kwargs: Any
    ) -> dict[str, int]:
        """See `fakeslack.ground_truth.expected_calls`."""
        from fakeslack.ground_truth import expected_calls

        return expected_calls(self, days, now, **kwargs)

    # -- summaries ----------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        chans = [c for c in self.channels.values() if not c.is_im]
        return {
            "users": len(self.users),
            "channels": len(chans),
            "messages": sum(len(c.by_ts) for c in chans),
        }
