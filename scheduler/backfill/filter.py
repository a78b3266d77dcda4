"""The noise filter: one pure rule deciding which Slack messages a backfill keeps, plus the
text helpers it rests on (visible text, mention rendering). No I/O, imports nothing of ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Channel/group housekeeping that says nothing about the conversation itself.
NOISE_SUBTYPES: frozenset[str] = frozenset(
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
        "tombstone",  # the placeholder left where a thread parent was deleted
    }
)

# `<@U123>` or `<@W123|label>` (W = Enterprise Grid users).
_USER_MENTION = re.compile(r"<@([UW][A-Za-z0-9]+)(?:\|([^>]*))?>")
# `<!here>`, `<!channel>`, `<!subteam^S123|@team>`, `<!date^…|…>`.
_SPECIAL_MENTION = re.compile(r"<![^>]*>")
# `:wave:`, `:+1:`, and the skin-tone suffix of `:+1::skin-tone-2:` (matched as a second code).
_EMOJI = re.compile(r":[a-z0-9_+\-']+:")
_WHITESPACE = re.compile(r"\s+")


def visible_text(text: str) -> str:
    """What a reader actually sees as words: `text` without user mentions (`<@U…>`, `<@W…|label>`),
    special mentions (`<!…>`), emoji codes (`:smile:`, `:+1::skin-tone-2:`) and without any whitespace.

    Characters are Unicode code points, so CJK text counts one per character.
    """
    stripped = _USER_MENTION.sub("", text)
    stripped = _SPECIAL_MENTION.sub("", stripped)
    stripped = _EMOJI.sub("", stripped)
    return _WHITESPACE.sub("", stripped)


def keep_message(message: Mapping[str, Any], *, include_bots: bool, min_text_chars: int) -> bool:
    """Whether a message from `conversations.history`/`conversations.replies` is worth storing.

    Rules, in order:
      1. Housekeeping subtypes are noise: channel_/group_ join, leave, topic, purpose, name,
         archive, unarchive; pinned_item, unpinned_item; tombstone.
      2. Bot messages (a non-empty `bot_id`, or subtype `bot_message`) are noise unless
         `include_bots`.
      3. A message whose visible text (see `visible_text`) has fewer than `min_text_chars`
         characters is noise: "ok", ":+1:", "<@U1> :wave:", a file_share without a caption.
         Exactly `min_text_chars` characters is enough.
      4. Everything else is kept: thread replies and thread_broadcast (same rules), file_share
         with enough text, edited messages (judged on their current `text`), unknown subtypes.
    Never raises on malformed input: non-string fields count as absent.
    """
    subtype = message.get("subtype")
    if not isinstance(subtype, str):
        subtype = None
    if subtype in NOISE_SUBTYPES:
        return False
    if not include_bots and (bool(message.get("bot_id")) or subtype == "bot_message"):
        return False
    if min_text_chars <= 0:
        return True
    text = message.get("text")
    if not isinstance(text, str):
        text = ""
    return len(visible_text(text)) >= min_text_chars


def mentioned_users(text: str) -> set[str]:
    """The user ids `<@U123>` / `<@W123|label>` mentions in `text` name."""
    return {match.group(1) for match in _USER_MENTION.finditer(text)}


def render_mentions(text: str, names: Mapping[str, str]) -> str:
    """Render `<@U123>` and `<@U123|label>` as `@name` using `names` (user id -> display name);
    an id missing from `names` renders as `@U123`. Other markup is left as it is."""

    def _render(match: re.Match[str]) -> str:
        user_id = match.group(1)
        return "@" + (names.get(user_id) or user_id)

    return _USER_MENTION.sub(_render, text)
