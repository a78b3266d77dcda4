"""Text for Slack: escaping (the one place for it: `escape_text`, `mrkdwn_text`, `user_text`,
used for fallback `text` and blocks alike), mrkdwn made inert in user-chosen names, truncation
that never cuts an entity or a link, counts and plurals, mentions of people and channels, "and N
more" lists and packing lines into chunks.

Pure: imports the standard library and `blocks.limits` (the id shapes) only. Every function
accepts odd input and degrades to something readable instead of raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

from blocks.limits import CONVERSATION_ID, USER_ID, is_conversation_id, is_user_id

ELLIPSIS = "…"


# --- escaping and truncation ---------------------------------------------------------------


def escape_text(text: str) -> str:
    """Slack's escaping of `&`, `<` and `>` (`&amp;` `&lt;` `&gt;`): the only characters Slack
    treats as control sequences in a message's `text` and in mrkdwn (`<!channel>`, `<@U…>`,
    `<#C…>`, `<https://…|label>`). Every echo of user text goes through it, in the fallback
    `text` and in the blocks alike (usually by way of `mrkdwn_text` or `user_text`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# The one escaping function has kept this name for the builders that call it.
escape_mrkdwn = escape_text

# mrkdwn has no escape for its formatting characters: in a name or label a user chose, each is
# replaced by a look-alike that Slack does not format (`*pwn*` would be bold, `~x~` struck).
_MRKDWN_LOOKALIKES = str.maketrans({"*": "∗", "~": "∼", "`": "ˋ"})
# `_` formats only at a word's edge (`_x_`); inside a name (`team_eng`) it is kept as typed.
_EDGE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def neutralise_mrkdwn(text: str) -> str:
    """`text` with mrkdwn's formatting characters made inert (not escaped for `&<>`: see
    `user_text`)."""
    return _EDGE_UNDERSCORE.sub("ˍ", text.translate(_MRKDWN_LOOKALIKES))


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """`text` cut to at most `limit` characters, ending with `…` when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)].rstrip() + ellipsis


def _rendered_cut(raw: str, limit: int, render: Callable[[str], str]) -> str:
    """`render(raw)` cut to `limit` characters without splitting an `&amp;`-style entity
    (escaping lengthens the text, so the cut is made on the raw text)."""
    if limit <= 0:
        return ""
    rendered = render(raw)
    if len(rendered) <= limit:
        return rendered
    keep = min(len(raw), limit)
    while keep > 0:
        candidate = render(raw[:keep].rstrip()) + ELLIPSIS
        if len(candidate) <= limit:
            return candidate
        keep -= max(1, len(candidate) - limit)
    return ELLIPSIS if limit >= 1 else ""


def mrkdwn_text(raw: str, limit: int) -> str:
    """`raw` escaped (`escape_text`) and cut to `limit` characters: for our own sentences that
    quote user input, in mrkdwn and in the fallback `text` alike."""
    return _rendered_cut(raw, limit, escape_text)


# An exact mention of a Slack id, once escaped: `&lt;@U123&gt;`, `&lt;#C123&gt;` (no label).
_ESCAPED_MENTION = re.compile(rf"&lt;(@{USER_ID.pattern}|#{CONVERSATION_ID.pattern})&gt;")


def app_text(raw: str, limit: int) -> str:
    """A sentence the app's own services wrote (a run refused because another is running "by
    <@U123>"): escaped like `mrkdwn_text`, except exact mentions of a user or channel id, which
    Slack renders as a name. Labelled mentions, `<!…>` and links stay escaped. Never for text
    the user typed: that goes through `mrkdwn_text` or `user_text`."""
    return _ESCAPED_MENTION.sub(r"<\1>", mrkdwn_text(raw, limit))


def user_text(raw: str, limit: int) -> str:
    """A value the user chose (a channel label, a name) as it is echoed anywhere: escaped, its
    mrkdwn formatting characters made inert, cut to `limit`. The same in `text` and blocks."""
    return _rendered_cut(raw, limit, lambda r: escape_text(neutralise_mrkdwn(r)))


def plain_text(raw: str, limit: int) -> str:
    """Text for `plain_text` objects (no escaping there): single spaces, never empty, cut to `limit`."""
    flat = " ".join(raw.split())
    return truncate(flat or "-", limit)


def code(raw: str, limit: int = 200) -> str:
    """Inline code: backticks inside would end the span early, so they are replaced."""
    inner = mrkdwn_text(raw.replace("`", "ˋ").replace("\n", " "), max(1, limit - 2))
    return f"`{inner or ' '}`"


def one_line(raw: str) -> str:
    """Collapse newlines and runs of spaces (for list items and fallbacks)."""
    return " ".join(raw.split())


# --- numbers and words ---------------------------------------------------------------------


def format_count(n: float | None) -> str:
    """`1234567` → `1,234,567`; `None` → `0`."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "0"
    return f"{int(n):,}"


def plural(n: int | None, word: str, many: str | None = None) -> str:
    """`plural(1, "message")` → `1 message`; `plural(3, "channel")` → `3 channels`."""
    count = n or 0
    return f"{format_count(count)} {word if count == 1 else (many or word + 's')}"


# --- people and channels ---------------------------------------------------------------------


def user_mention(user_id: str | None) -> str:
    """`<@U123>` for a real user id (Slack renders the name); anything else as escaped text."""
    if not user_id:
        return "someone"
    if is_user_id(user_id):
        return f"<@{user_id}>"
    return user_text(user_id, 40)


def user_plain(user_id: str | None) -> str:
    """A user for plain-text fallbacks: Slack does not render mentions in notifications' text."""
    if user_id and is_user_id(user_id):
        return f"<@{user_id}>"
    return user_text(user_id or "someone", 40)


def channel_label(channel_id: str | None, name: str | None, limit: int = 80) -> str:
    """`#name` when the name is known, else `<#C123>` (Slack renders it), for mrkdwn. The name
    may come from the user (`<#C123|label>` as typed): it is echoed through `user_text`."""
    if name:
        return "#" + user_text(name.lstrip("#"), limit)
    if channel_id and is_conversation_id(channel_id):
        return f"<#{channel_id}>"
    return user_text(channel_id or "unknown channel", limit)


def channel_plain(channel_id: str | None, name: str | None, limit: int = 80) -> str:
    """A channel in a fallback `text`: escaped exactly as `channel_label` escapes it."""
    return channel_label(channel_id, name, limit)


def join_limited(
    items: Sequence[str], *, max_chars: int, max_items: int | None = None, sep: str = ", "
) -> str:
    """Join `items` while the result stays within `max_chars`, then `and N more`.

    The items are already rendered (escaped). The suffix is counted in the budget, so the result
    never exceeds `max_chars` (unless even the first item plus its suffix cannot fit, in which
    case only `N channels`-style counting is left to the caller: this returns `and N more`)."""
    total = len(items)
    limit = total if max_items is None else max(0, min(total, max_items))
    out: list[str] = []
    used = 0
    for i, item in enumerate(items[:limit]):
        rest_after = total - (i + 1)
        suffix = f" and {format_count(rest_after)} more" if rest_after else ""
        addition = (sep if out else "") + item
        if used + len(addition) + len(suffix) > max_chars:
            break
        out.append(item)
        used += len(addition)
    hidden = total - len(out)
    text = sep.join(out)
    if hidden:
        more = f"and {format_count(hidden)} more"
        text = f"{text} {more}" if text else more
    return text[:max_chars] if len(text) > max_chars else text


def pack_lines(lines: Iterable[str], *, max_chars: int, sep: str = "\n") -> list[str]:
    """Group lines into chunks of at most `max_chars` (a line longer than that is cut)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        line = raw if len(raw) <= max_chars else truncate(raw, max_chars)
        extra = len(line) + (len(sep) if current else 0)
        if current and size + extra > max_chars:
            chunks.append(sep.join(current))
            current, size = [], 0
            extra = len(line)
        current.append(line)
        size += extra
    if current:
        chunks.append(sep.join(current))
    return chunks


def clip_mrkdwn(text: str, limit: int) -> str:
    """Cut already-rendered mrkdwn to `limit` without leaving half a `<link>`, an `&entity;` or an
    open code block: the safety net under texts whose parts were sized to fit anyway."""
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    if text[: max(0, room)].count("```") % 2:
        room -= 3  # space to close the code block
    cut = text[: max(0, room)]
    newline = cut.rfind("\n")
    if newline > room * 0.8:
        cut = cut[:newline]
    opened, closed = cut.rfind("<"), cut.rfind(">")
    if opened > closed:
        cut = cut[:opened]
    amp = cut.rfind("&")
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    cut = cut.rstrip() + ELLIPSIS
    if cut.count("```") % 2:
        cut += "```"
    return cut[:limit]
