"""Helpers shared by the builders: escaping (the one place for it: `escape_text`, `mrkdwn_text`,
`user_text`, used for fallback `text` and blocks alike), truncation that never cuts an entity or
a link, counts, durations, times in a viewer's time zone, text progress bars, "and N more" lists,
the one-line renderings of a run and a schedule, and block constructors that clip to Slack's
limits.

Pure: imports the standard library, `slack_sdk.models` and `blocks.models` only. Every function
accepts odd input (negative numbers, NaN, naive datetimes, unknown time zones) and degrades to
something readable instead of raising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from blocks.models import RunInfo, ScheduleInfo, SkippedChannel

ELLIPSIS = "…"
# Slack's limits (docs.slack.dev block reference; slack_sdk's *_max_length constants agree).
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
# `msg_blocks_too_long` has an undocumented ceiling around 13,000 characters of block text
# (bolt-js #2509): messages keep their total text under this budget.
MESSAGE_TEXT_BUDGET = 11000
MAX_FALLBACK_TEXT = 3000
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip
BAR_FULL = "█"
BAR_EMPTY = "░"
# Slack ids: users U/W…, channels C/G/D…; anything else is shown as text, never as a mention.
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")


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
_ESCAPED_MENTION = re.compile(r"&lt;(@[UW][A-Z0-9]{2,30}|#[CGD][A-Z0-9]{2,30})&gt;")


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


def format_duration(seconds: float | None) -> str:
    """A short human duration: `45 s`, `3 min 5 s`, `2 h 5 min`, `3 d 4 h`."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    total = max(0, round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def progress_bar(done: int | None, total: int | None, width: int = 20) -> str:
    """`█████░░░░░░░░░░░░░░░ 25%` — a bar that survives every font Slack uses."""
    width = max(1, width)
    d, t = max(0, done or 0), max(0, total or 0)
    if t == 0:
        return BAR_EMPTY * width + " 0%"
    ratio = min(1.0, d / t)
    filled = int(ratio * width)
    percent = int(ratio * 100)
    return BAR_FULL * filled + BAR_EMPTY * (width - filled) + f" {percent}%"


# --- times -----------------------------------------------------------------------------------


def zone(name: str | None) -> tzinfo:
    """The IANA zone `name`, or UTC when it is empty or unknown (a display must never fail)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - ValueError, ZoneInfoNotFoundError, OSError: all mean "unknown"
        return UTC


def as_aware(dt: datetime) -> datetime:
    """Naive datetimes are UTC (the store keeps UTC)."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def format_time(dt: datetime | None, tz_name: str | None, *, with_year: bool = False) -> str:
    """`Tue 3 Mar, 02:00 CET` in the zone `tz_name` (English names whatever the process locale)."""
    if dt is None:
        return "never"
    try:
        local = as_aware(dt).astimezone(zone(tz_name))
    except (OverflowError, ValueError):
        local = as_aware(dt)
    year = f" {local.year}" if with_year else ""
    abbreviation = local.tzname() or "UTC"
    return (
        f"{DAY_NAMES[local.weekday()]} {local.day} {MONTH_NAMES[local.month - 1]}{year}, "
        f"{local.hour:02d}:{local.minute:02d} {abbreviation}"
    )


def relative(dt: datetime | None, now: datetime) -> str:
    """`in 3 h 10 min`, `5 min ago`, `now`."""
    if dt is None:
        return "never"
    try:
        delta = (as_aware(dt) - as_aware(now)).total_seconds()
    except (OverflowError, ValueError):
        return "unknown"
    if abs(delta) < 30:
        return "now"
    return f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(-delta)} ago"


def duration_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    try:
        return (as_aware(end) - as_aware(start)).total_seconds()
    except (OverflowError, ValueError):
        return None


def eta_text(eta_seconds: float | None, now: datetime, tz_name: str | None = None) -> str:
    """`about 5 min (around 14:35 UTC)`, or `estimating…` before the first channel is done."""
    if eta_seconds is None or not math.isfinite(eta_seconds) or eta_seconds < 0:
        return "estimating…"
    try:
        at = as_aware(now) + timedelta(seconds=eta_seconds)
        local = at.astimezone(zone(tz_name))
        around = f" (around {local.hour:02d}:{local.minute:02d} {local.tzname() or 'UTC'})"
    except (OverflowError, ValueError):
        around = ""
    return f"about {format_duration(eta_seconds)}{around}"


# --- people and channels ---------------------------------------------------------------------


def user_mention(user_id: str | None) -> str:
    """`<@U123>` for a real user id (Slack renders the name); anything else as escaped text."""
    if not user_id:
        return "someone"
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return user_text(user_id, 40)


def user_plain(user_id: str | None) -> str:
    """A user for plain-text fallbacks: Slack does not render mentions in notifications' text."""
    if user_id and _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return user_text(user_id or "someone", 40)


def channel_label(channel_id: str | None, name: str | None, limit: int = 80) -> str:
    """`#name` when the name is known, else `<#C123>` (Slack renders it), for mrkdwn. The name
    may come from the user (`<#C123|label>` as typed): it is echoed through `user_text`."""
    if name:
        return "#" + user_text(name.lstrip("#"), limit)
    if channel_id and _CHANNEL_ID.fullmatch(channel_id):
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


# --- block constructors that clip ------------------------------------------------------------


def section(text: str, *, block_id: str | None = None, accessory: object = None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=clip_mrkdwn(text or " ", MAX_SECTION_TEXT)),
        block_id=block_id,
        accessory=accessory,  # type: ignore[arg-type]
    )


def fields_section(fields: Sequence[str], *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        fields=[
            MarkdownTextObject(text=clip_mrkdwn(f or " ", MAX_FIELD_TEXT))
            for f in list(fields)[:MAX_FIELDS]
        ],
        block_id=block_id,
    )


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    items = [t for t in texts if t][:MAX_CONTEXT_ELEMENTS] or [" "]
    return ContextBlock(
        elements=[MarkdownTextObject(text=clip_mrkdwn(t, MAX_SECTION_TEXT)) for t in items],
        block_id=block_id,
    )


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=plain_text(text, MAX_HEADER_TEXT), emoji=True))


def button_text(text: str) -> PlainTextObject:
    return PlainTextObject(text=plain_text(text, MAX_BUTTON_TEXT), emoji=True)


# --- shared renderings of runs and schedules ---------------------------------------------------

STATUS_EMOJI = {
    "running": ":hourglass_flowing_sand:",
    "success": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
}
STATUS_WORD = {
    "running": "running",
    "success": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}


def status_emoji(status: str) -> str:
    return STATUS_EMOJI.get(status, ":grey_question:")


def run_trigger(run: RunInfo) -> str:
    """`manual, by <@U1>` or `scheduled`."""
    if run.job_type == "manual" or run.triggered_by:
        return f"manual, by {user_mention(run.triggered_by)}"
    return "scheduled"


def run_duration(run: RunInfo, now: datetime | None) -> float | None:
    """How long the run took, or has been running (None when unknown)."""
    end = run.completed_at
    if end is None and run.status == "running":
        end = now
    return duration_between(run.started_at, end)


def run_line(
    run: RunInfo, *, tz_name: str | None, now: datetime | None, error_limit: int = 300
) -> str:
    """Two or three mrkdwn lines for one run (home, `/backfill status`)."""
    status = STATUS_WORD.get(run.status, mrkdwn_text(run.status, 20))
    head = (
        f"{status_emoji(run.status)} *Run #{run.job_run_id}* {status} · {run_trigger(run)} · "
        f"started {format_time(run.started_at, tz_name)}"
    )
    facts = [plural(run.messages_collected, "message"), plural(run.channels_processed, "channel")]
    took = run_duration(run, now)
    if took is not None:
        facts.append(
            ("running for " if run.status == "running" else "took ") + format_duration(took)
        )
    if run.channels_skipped:
        facts.append(f"{format_count(len(run.channels_skipped))} skipped")
    lines = [head, " · ".join(facts)]
    if run.error_message and error_limit > 0:
        lines.append("> " + mrkdwn_text(one_line(run.error_message), error_limit))
    return "\n".join(lines)


def run_compact_line(
    run: RunInfo, *, tz_name: str | None, now: datetime | None, error_limit: int = 80
) -> str:
    """One mrkdwn line per run (`/backfill history`, up to 100 lines)."""
    took = run_duration(run, now)
    parts = [
        f"{status_emoji(run.status)} *#{run.job_run_id}*",
        format_time(run.started_at, tz_name),
        "manual" if run.job_type == "manual" else "scheduled",
        f"{format_count(run.messages_collected)} msgs",
        f"{format_count(run.channels_processed)} ch",
    ]
    if took is not None:
        parts.append(format_duration(took))
    if run.error_message and error_limit > 0:
        parts.append(
            "_" + mrkdwn_text(one_line(run.error_message).replace("_", " "), error_limit) + "_"
        )
    return " · ".join(parts)


def run_plain_line(run: RunInfo, *, tz_name: str | None, now: datetime | None) -> str:
    """One plain-text line per run (notification fallbacks)."""
    took = run_duration(run, now)
    text = (
        f"Run #{run.job_run_id} {STATUS_WORD.get(run.status, run.status)}: "
        f"{plural(run.messages_collected, 'message')}, {plural(run.channels_processed, 'channel')}"
    )
    if took is not None:
        text += f", {format_duration(took)}"
    text += f", started {format_time(run.started_at, tz_name)}"
    return truncate(one_line(text), 300)


def channels_summary(schedule: ScheduleInfo, *, max_chars: int = 600, max_items: int = 20) -> str:
    """`all channels`, or `#a, #b and 12 more` (mrkdwn)."""
    if schedule.include_all_channels or not schedule.channels:
        return "all channels"
    labels = [channel_label(c.id, c.name, 80) for c in schedule.channels]
    return join_limited(labels, max_chars=max_chars, max_items=max_items)


def cron_words(schedule: ScheduleInfo, limit: int = 300) -> str:
    """The cron in words (bold) with the expression itself in code: `*At 02:00 AM* (`0 2 * * *`)`."""
    words = one_line(schedule.description or "")
    words = words[:1].upper() + words[1:] if words else ""
    expr = code(schedule.cron, 120)
    return f"*{mrkdwn_text(words.replace('*', '∗'), limit)}* ({expr})" if words else expr


def skipped_groups(
    skipped: Sequence[SkippedChannel | tuple[str, str | None, str]],
    *,
    max_groups: int = 8,
    per_group_chars: int = 300,
) -> list[str]:
    """Skipped channels grouped by reason, biggest group first: `• archived (200): #a, #b and 198 more`."""
    groups: dict[str, list[str]] = {}
    for entry in skipped:
        try:
            channel_id, name, reason = entry[0], entry[1], entry[2]
        except (IndexError, TypeError):
            continue
        key = one_line(str(reason or "unknown reason"))[:120] or "unknown reason"
        groups.setdefault(key, []).append(channel_label(str(channel_id or ""), name or None, 80))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    lines = [
        f"• {mrkdwn_text(reason, 120)} ({format_count(len(labels))}): "
        + join_limited(labels, max_chars=per_group_chars, max_items=25)
        for reason, labels in ordered[:max_groups]
    ]
    rest = ordered[max_groups:]
    if rest:
        hidden = sum(len(labels) for _, labels in rest)
        lines.append(
            f"• and {plural(hidden, 'channel')} skipped for {plural(len(rest), 'other reason')}"
        )
    return lines


def cancel_run_button(action_id: str, job_run_id: int) -> ButtonElement:
    """The danger button that cancels run `job_run_id`, with its confirmation dialog."""
    return ButtonElement(
        text=button_text("Cancel run"),
        action_id=action_id,
        value=str(job_run_id),
        style="danger",
        confirm=ConfirmObject(
            title=PlainTextObject(text=f"Cancel run #{job_run_id}?"),
            text=PlainTextObject(
                text="The run stops after the current page. What it stored is kept."
            ),
            confirm=PlainTextObject(text="Cancel run"),
            deny=PlainTextObject(text="Keep running"),
            style="danger",
        ),
    )
