"""The oracle: which messages a correct backfill must store, and which it must not; and what a
perfect live mirror holds after that backfill and the events since (`final_truth`).

This is an independent implementation of the app's storage contract (window, channel scope, thread
lookback, noise filter) written against the raw workspace, never against the app's code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fakeslack.workspace import Channel, Message, ts_key

if TYPE_CHECKING:
    from fakeslack.workspace import Workspace

DAY = 86400
NOISE_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "group_join",
        "group_leave",
        "group_topic",
        "group_purpose",
        "group_name",
        "group_archive",
        "group_unarchive",
        "pinned_item",
        "unpinned_item",
        "tombstone",
    }
)
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SPECIAL = re.compile(r"<![^>]*>")
_EMOJI = re.compile(r":[a-z0-9_+\-']+:")
_SPACE = re.compile(r"\s+")

Key = tuple[str, str]  # (channel_id, ts)


def visible_text(text: str) -> str:
    """Text without user mentions, `<!...>` specials, `:emoji:` codes and whitespace."""
    text = _MENTION.sub("", text or "")
    text = _SPECIAL.sub("", text)
    text = _EMOJI.sub("", text)
    return _SPACE.sub("", text)


def is_noise(msg: Message, *, min_text_chars: int = 8, include_bots: bool = False) -> bool:
    if msg.get("subtype") in NOISE_SUBTYPES:
        return True
    if not include_bots and (msg.get("bot_id") or msg.get("subtype") == "bot_message"):
        return True
    return len(visible_text(msg.get("text", ""))) < min_text_chars


@dataclass
class GroundTruth:
    """`must_store, must_not_store = workspace.ground_truth(days)` unpacks the two sets."""

    must_store: set[Key]
    must_not_store: set[Key]
    channels_in_scope: list[str] = field(default_factory=list)
    channels_skipped: list[str] = field(default_factory=list)
    channels_to_join: list[str] = field(default_factory=list)
    threads_with_replies: set[Key] = field(default_factory=set)
    oldest: float = 0.0
    now: float = 0.0

    def __iter__(self) -> Iterator[set[Key]]:
        return iter((self.must_store, self.must_not_store))


def channels_in_scope(
    ws: Workspace, *, auto_join: bool = True, channel_ids: Iterable[str] | None = None
) -> tuple[list[Channel], list[Channel]]:
    """(in scope, skipped): non-archived public channels (joined, or joinable when auto_join) and
    non-archived private channels the bot is in; `channel_ids` narrows that set."""
    wanted = set(channel_ids) if channel_ids is not None else None
    scope: list[Channel] = []
    skipped: list[Channel] = []
    for ch in ws.channels.values():
        if ch.is_im or ch.deleted:
            continue
        if wanted is not None and ch.id not in wanted:
            continue
        member = ws.bot_user_id in ch.members
        readable = member or (not ch.is_private and auto_join)
        if ch.is_archived or not readable:
            skipped.append(ch)
        else:
            scope.append(ch)
    return scope, skipped


def ground_truth(
    ws: Workspace,
    days: float,
    now: float | None = None,
    *,
    lookback_days: float = 14,
    min_text_chars: int = 8,
    include_bots: bool = False,
    auto_join: bool = True,
    channel_ids: Iterable[str] | None = None,
) -> GroundTruth:
    """Rules: window start `oldest = now - days*86400`; a message in a channel in scope is
    stored iff oldest < ts <= now, it is not noise, and, for a thread reply (not a broadcast), its
    parent's ts > oldest - lookback*86400. Every other message visible in those channels (history
    or replies, ts <= now) is in `must_not_store`. Messages newer than `now` are in neither set."""
    with ws.lock:
        now = ws.now if now is None else float(now)
        oldest_k = round((now - days * DAY) * 1_000_000)
        lookback_k = round((now - (days + lookback_days) * DAY) * 1_000_000)
        now_k = round(now * 1_000_000)
        scope, skipped = channels_in_scope(ws, auto_join=auto_join, channel_ids=channel_ids)
        store: set[Key] = set()
        not_store: set[Key] = set()
        threads: set[Key] = set()
        for ch in scope:
            for ts, msg in ch.by_ts.items():
                k = ts_key(ts)
                if k > now_k:
                    continue
                keep = k > oldest_k and not is_noise(
                    msg, min_text_chars=min_text_chars, include_bots=include_bots
                )
                if keep and ch.is_reply(msg) and msg.get("subtype") != "thread_broadcast":
                    keep = ts_key(msg["thread_ts"]) > lookback_k
                (store if keep else not_store).add((ch.id, ts))
            for parent_ts, replies in ch.replies.items():
                if not len(replies) or ts_key(parent_ts) <= lookback_k:
                    continue
                if any(oldest_k < k <= now_k for k in replies.keys):
                    threads.add((ch.id, parent_ts))
        return GroundTruth(
            must_store=store,
            must_not_store=not_store,
            channels_in_scope=sorted(c.id for c in scope),
            channels_skipped=sorted(c.id for c in skipped),
            channels_to_join=sorted(c.id for c in scope if ws.bot_user_id not in c.members),
            threads_with_replies=threads,
            oldest=now - days * DAY,
            now=now,
        )


def expected_calls(
    ws: Workspace, days: float, now: float | None = None, **kwargs: object
) -> dict[str, int]:
    """Calls a minimal correct backfill makes: one `conversations.replies` walk per thread with a
    reply in the window (parent within the lookback), one `conversations.join` per public channel
    in scope the bot is not in. Pages beyond the first are not counted."""
    gt = ground_truth(ws, days, now, **kwargs)  # type: ignore[arg-type]
    return {
        "conversations.replies": len(gt.threads_with_replies),
        "conversations.join": len(gt.channels_to_join),
        "channels": len(gt.channels_in_scope),
    }


@dataclass
class FinalTruth:
    """A perfect mirror's store: `messages` (channel, ts) -> text that must be there, `gone` what
    must not be (deleted, tombstoned, edited into noise, in a deleted channel, or noise all
    along), the channels' current names, the deleted channels, and other workspaces' messages
    (team, channel, ts) that the app was sent and must not store."""

    messages: dict[Key, str]
    gone: set[Key]
    channel_names: dict[str, str] = field(default_factory=dict)
    deleted_channels: set[str] = field(default_factory=set)
    foreign: set[tuple[str, str, str]] = field(default_factory=set)


def final_truth(
    ws: Workspace,
    initial: GroundTruth,
    told: Iterable[Key],
    *,
    foreign: Iterable[tuple[str, str, str]] = (),
    channel_ids: Iterable[str] | None = None,
    min_text_chars: int = 8,
    include_bots: bool = False,
) -> FinalTruth:
    """After a backfill that stored `initial.must_store` and the events since (`told`: the
    messages whose post or edit event the app was sent), in the channels of `initial`'s scope
    (or `channel_ids`): a message must be stored iff it still exists, in a channel that still
    exists, it is not noise as it is NOW (same filter as `ground_truth`), and the backfill stored
    it or an event told the app of it (an edit that makes a message qualify stores it, one that
    makes it noise removes it). Every other message the backfill saw or the app was told of is
    `gone`; other messages (never read, never announced) are in neither."""
    told = set(told)
    scope = set(initial.channels_in_scope if channel_ids is None else channel_ids)
    wanted = initial.must_store | told
    with ws.lock:
        messages: dict[Key, str] = {}
        gone: set[Key] = set()
        for key in initial.must_store | initial.must_not_store | told:
            channel_id, ts = key
            if channel_id not in scope:
                continue
            ch = ws.channels.get(channel_id)
            msg = None if ch is None or ch.deleted else ch.by_ts.get(ts)
            keep = (
                msg is not None
                and key in wanted
                and not is_noise(msg, min_text_chars=min_text_chars, include_bots=include_bots)
            )
            if keep and msg is not None:
                messages[key] = msg.get("text", "")
            else:
                gone.add(key)
        names = {}
        deleted = set()
        for channel_id in scope:
            ch = ws.channels.get(channel_id)
            if ch is None or ch.deleted:
                deleted.add(channel_id)
            else:
                names[channel_id] = ch.name
        return FinalTruth(messages, gone, names, deleted, set(foreign))
