"""Searching the stored copy: the results of `/backfill search` (an ephemeral reply) and of App
Home's search modal, the modal itself with the parser of its submission, and Home's "Search the
history" button.

Pure: `db.records.SearchHit`s and plain data in, blocks, a `Reply` or a `modal` view dict out;
imports only `blocks.*`, `slack_sdk.models` and `db.records`. A stored message's text is Slack's
(`<#C…|name>`, `<https://…|label>`, `&amp;` `&lt;` `&gt;`): it is read into plain words first,
then every character Slack or mrkdwn would act on is escaped (`&<>`) or swapped for a look-alike
(`*_~` and the backtick), so a message can neither ping, link, format nor break the layout, and the
only bold is ours, on the matched words. Ten results of 5,000-character messages of any content
fit a message's limits: each snippet is cut around its first match to what the message's text
budget leaves it.

Paging is the caller's: `more` is an opaque string the caller encodes the next page into; it
becomes the "More results" button's `value`, so it must stay within MAX_MORE_VALUE (Slack's 2,000
characters). A longer one is not offered as a button (a line says to narrow the search instead).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConversationFilter,
    ConversationSelectElement,
    DatePickerElement,
    DividerBlock,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
    UserSelectElement,
)
from slack_sdk.models.views import View

from blocks import ids
from blocks.elements import MESSAGE_TEXT_BUDGET, button_text, context, section
from blocks.limits import is_conversation_id, is_user_id
from blocks.modals import ModalContext
from blocks.replies import Reply
from blocks.text import (
    ELLIPSIS,
    channel_label,
    escape_text,
    format_count,
    join_limited,
    plural,
    user_text,
)
from blocks.times import format_time, zone
from db.records import SearchHit

# The longest search, in characters of words (the grammar, the modal's input and the caller's
# "More" encoding all rely on it).
MAX_SEARCH_CHARS = 500
RESULTS_PER_PAGE = 10
MAX_MORE_VALUE = 2000  # a button's `value`
# A snippet: about this many characters of the message around its first match, at most
# SNIPPET_BUDGET once escaped and highlighted (less when the message's budget is short).
SNIPPET_CHARS = 300
SNIPPET_LEAD = 60  # characters kept before the first match
SNIPPET_BUDGET = 700
MIN_SNIPPET_BUDGET = 80
MAX_PERMALINK = 400  # a longer link is left out rather than crowding the result
MAX_TERMS = 20
SEARCH_TEXT_BUDGET = MESSAGE_TEXT_BUDGET - 500  # the results' own text, header and footer included

_NO_MATCH_HINT = (
    "Try other or fewer words, or fewer filters (`in:#channel`, `from:@person`, "
    "`after:YYYY-MM-DD`, `before:YYYY-MM-DD`)."
)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search as the results show it and the modal holds it: ids only (the handler resolves
    the channel names of `/backfill search`). `after` is the first day included, `before` the
    first day excluded, both in the viewer's time zone (`search_window` gives the instants)."""

    words: str
    channel_ids: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    after: date | None = None
    before: date | None = None


def search_window(query: SearchQuery, tz: str | None) -> tuple[datetime | None, datetime | None]:
    """The UTC instants `[start, end)` of the query's days in the viewer's zone `tz`."""

    def midnight(day: date | None) -> datetime | None:
        if day is None:
            return None
        return datetime.combine(day, time(0), tzinfo=zone(tz)).astimezone(UTC)

    return midnight(query.after), midnight(query.before)


# --- results ------------------------------------------------------------------------------------


def search_reply(
    hits: Sequence[SearchHit],
    query: SearchQuery,
    *,
    tz: str | None,
    page: int = 1,
    more: str | None = None,
) -> Reply:
    """`/backfill search`'s ephemeral reply (also the "More" button's replacement of it)."""
    blocks = search_results(hits, query, tz=tz, page=page, more=more)
    shown = list(hits[:RESULTS_PER_PAGE])
    words = user_text(query.words, 200)
    if shown:
        text = f"{plural(len(shown), 'result')} for “{words}”" + (
            f" (page {format_count(page)})" if page > 1 else ""
        )
    else:
        text = f"Nothing matched “{words}”."
    return Reply(text=text, blocks=[b.to_dict() for b in blocks])


def search_results(
    hits: Sequence[SearchHit],
    query: SearchQuery,
    *,
    tz: str | None,
    page: int = 1,
    more: str | None = None,
    more_action: str = ids.SEARCH_MORE,
) -> list[Block]:
    """What was searched, then up to RESULTS_PER_PAGE hits (best first, as given), then "More
    results" when `more` is given. `page` (1-based) numbers the results; `more_action` is
    `ids.SEARCH_MORE` in a message, `ids.SEARCH_MODAL_MORE` in the modal."""
    page = max(1, page)
    shown = list(hits[:RESULTS_PER_PAGE])
    what = _what_was_searched(query)
    page_note = f" · page {format_count(page)}" if page > 1 else ""
    if not shown:
        head = "No more results for" if page > 1 else "Nothing matched"
        return [section(f":mag: {head} {what}."), context(_NO_MATCH_HINT)]
    blocks: list[Block] = [section(f":mag: *Results for* {what}{page_note}")]
    footer = (
        f"Times in {user_text(tz or 'UTC', 64)} · from the stored copy of the channels you can read"
    )
    budget = SEARCH_TEXT_BUDGET - len(what) - len(footer) - 200
    terms = _terms(query.words)
    first = (page - 1) * RESULTS_PER_PAGE + 1
    for i, hit in enumerate(shown):
        share = budget // (len(shown) - i)
        rendered = _hit_text(hit, terms, number=first + i, tz=tz, budget=share)
        budget -= len(rendered)
        blocks.append(section(rendered))
    blocks.append(context(footer))
    if more:
        if len(more) <= MAX_MORE_VALUE:
            block_id = (
                ids.SEARCH_MODAL_MORE_BLOCK
                if more_action == ids.SEARCH_MODAL_MORE
                else ids.SEARCH_MORE_BLOCK
            )
            blocks.append(
                ActionsBlock(
                    block_id=block_id,
                    elements=[
                        ButtonElement(
                            text=button_text("More results"), action_id=more_action, value=more
                        )
                    ],
                )
            )
        else:
            blocks.append(context("More messages matched: narrow the search to see them."))
    return blocks


def _what_was_searched(query: SearchQuery) -> str:
    """`“deploy failed” in #eng · from @alice · on or after …`, escaped (mrkdwn)."""
    words = " ".join(query.words.split())
    parts = [f"“{user_text(words, 300) or ' '}”"]
    channels = [channel_label(c, None) for c in query.channel_ids]
    if channels:
        parts.append("in " + join_limited(channels, max_chars=300, max_items=20))
    people = [f"<@{u}>" if is_user_id(u) else user_text(u, 40) for u in query.user_ids]
    if people:
        parts.append("from " + join_limited(people, max_chars=300, max_items=20))
    if query.after is not None:
        parts.append(f"on or after {query.after.isoformat()}")
    if query.before is not None:
        parts.append(f"before {query.before.isoformat()}")
    return " · ".join(parts)


def _hit_text(
    hit: SearchHit, terms: Sequence[str], *, number: int, tz: str | None, budget: int
) -> str:
    message = hit.message
    channel = (
        f"<#{message.channel_id}>"
        if is_conversation_id(message.channel_id)
        else channel_label(None, message.channel_name or message.channel_id or "unknown channel")
    )
    author = (
        f"<@{message.user_id}>"
        if is_user_id(message.user_id)
        else user_text(message.user_name or message.user_id or "someone", 80)
    )
    posted = _posted_at(message.ts)
    when = format_time(posted, tz, with_year=True) if posted is not None else "unknown date"
    meta = [f"*{format_count(number)}.* {channel}", author, when]
    if message.thread_ts and message.thread_ts != message.ts:
        meta.append("in a thread")
    link = _link(hit.permalink)
    if link:
        meta.append(link)
    head = " · ".join(meta)
    room = max(MIN_SNIPPET_BUDGET, min(SNIPPET_BUDGET, budget - len(head) - 3))
    return f"{head}\n>{snippet(message.text, terms, budget=room)}"


def _posted_at(ts: str) -> datetime | None:
    try:
        seconds = float(ts)
        if not math.isfinite(seconds):
            return None
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


_PERMALINK = re.compile(r"https://[^\s<>|]+")


def _link(permalink: str | None) -> str | None:
    """`<https://…|Open in Slack>` for a plausible https link, else None."""
    if not isinstance(permalink, str) or len(permalink) > MAX_PERMALINK:
        return None
    if not _PERMALINK.fullmatch(permalink):
        return None
    return f"<{escape_text(permalink)}|Open in Slack>"


# --- snippets -----------------------------------------------------------------------------------

_MARKUP = re.compile(r"<([^<>]*)>")
# In a snippet every mrkdwn formatting character is swapped for a look-alike (one character for
# one, so positions found in the plain text hold): the only formatting is our bold.
_INERT = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_EDGE_PUNCTUATION = "\"'“”„‘’«»()[]{}<>,.;:!?"


def readable(text: str) -> str:
    """Slack message text as people read it, on one line: `<#C1|eng>` → `#eng`, `<@U1|bob>` →
    `@bob`, `<!here>` → `@here`, `<https://x|label>` → `label`, `&lt;` → `<`."""

    def plain(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith(("#", "@")):
            return target[0] + (label.lstrip("#@") or target[1:])
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    flat = _MARKUP.sub(plain, text if isinstance(text, str) else "")
    flat = flat.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(flat.split())


def _terms(words: str) -> list[str]:
    """The words to highlight: without quotes and edge punctuation, lower-cased, unique, longest
    first; one-character words only when there is nothing longer."""
    seen: dict[str, None] = {}
    for word in words.split():
        term = word.strip(_EDGE_PUNCTUATION).lower()
        if term:
            seen.setdefault(term, None)
    terms = [t for t in seen if len(t) >= 2] or list(seen)
    return sorted(terms, key=len, reverse=True)[:MAX_TERMS]


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """Matches a term where a word starts (for terms that start with a letter or digit of ASCII)
    and runs on to the end of that word, so the whole word is bold (`deploy` → `deployment`)."""
    parts = []
    for term in terms:
        ascii_start = term[0].isascii() and term[0].isalnum()
        ascii_end = term[-1].isascii() and term[-1].isalnum()
        parts.append(
            ("(?<![0-9A-Za-z])" if ascii_start else "")
            + re.escape(term)
            + ("[0-9A-Za-z]*" if ascii_end else "")
        )
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def snippet(text: str, terms: Sequence[str], *, budget: int = SNIPPET_BUDGET) -> str:
    """mrkdwn: the message around the first match of `terms` (or its start), cut with `…`, the
    matches in bold, at most `budget` characters once rendered. Never empty."""
    plain = readable(text)
    if not plain:
        return " (no text)"
    pattern = _pattern(terms)
    spans: list[tuple[int, int]] = []
    if pattern is not None:
        for found in pattern.finditer(plain):
            if found.end() == found.start():
                continue
            if spans and found.start() <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], found.end()))
            else:
                spans.append((found.start(), found.end()))
    start = 0
    if spans and spans[0][0] > SNIPPET_LEAD:
        start = spans[0][0] - SNIPPET_LEAD
        space = plain.find(" ", start, spans[0][0])
        if 0 <= space < start + 20:
            start = space + 1
    end = min(len(plain), start + SNIPPET_CHARS)
    if end - start < SNIPPET_CHARS:
        start = max(0, end - SNIPPET_CHARS)
    if end < len(plain):
        space = plain.rfind(" ", max(start, end - 20), end)
        if space > start and (not spans or space > spans[0][1]):
            end = space  # end on a word's end
    if spans:  # the text before the match takes a third of the budget at most, once escaped
        while start < spans[0][0] and len(escape_text(plain[start : spans[0][0]])) > budget // 3:
            start += max(1, (len(escape_text(plain[start : spans[0][0]])) - budget // 3) // 5)
        start = min(start, spans[0][0])
    shown = plain.translate(_INERT)
    rendered = _render(shown, spans, start, end)
    while len(rendered) > budget and end > start + 1:
        # an escaped character takes 5 at most (`&amp;`): cut no more than the excess needs
        end = max(start + 1, end - max(1, (len(rendered) - budget) // 5))
        rendered = _render(shown, spans, start, end)
    return rendered


def _render(shown: str, spans: Sequence[tuple[int, int]], start: int, end: int) -> str:
    out = [ELLIPSIS if start > 0 else ""]
    pos = start
    for s, e in spans:
        s, e = max(s, start), min(e, end)
        if s >= e:
            continue
        piece = shown[s:e]
        if not piece.strip():
            continue
        out.append(escape_text(shown[pos:s]))
        out.append(f"*{escape_text(piece)}*")
        pos = e
    out.append(escape_text(shown[pos:end]))
    if end < len(shown):
        out.append(ELLIPSIS)
    return " " + "".join(out)


# --- the App Home button and the modal ----------------------------------------------------------


def search_button() -> ButtonElement:
    """App Home's "Search the history": opens `search_modal()` (`ids.HOME_SEARCH_OPEN`)."""
    return ButtonElement(text=button_text("Search the history"), action_id=ids.HOME_SEARCH_OPEN)


def search_modal(
    query: SearchQuery | None = None,
    *,
    hits: Sequence[SearchHit] | None = None,
    tz: str | None = None,
    page: int = 1,
    more: str | None = None,
    context: ModalContext | None = None,
) -> dict[str, Any]:
    """The search form (words, channel, author, on-or-after day, before day), filled from
    `query`; with `hits` (an empty list included) the results below it, the "More results" button
    sending `ids.SEARCH_MODAL_MORE`. A search with several channels or people (from the command)
    shows the first of each: the form picks one of each."""
    q = query or SearchQuery(words="")
    channel = next((c for c in q.channel_ids if is_conversation_id(c)), None)
    author = next((u for u in q.user_ids if is_user_id(u)), None)
    words = " ".join(q.words.split())[:MAX_SEARCH_CHARS]
    blocks: list[Block] = [
        InputBlock(
            block_id=ids.SEARCH_WORDS_BLOCK,
            label=PlainTextObject(text="Words"),
            hint=PlainTextObject(
                text="Exact words (an error code, a name) and what a message is about both count."
            ),
            element=PlainTextInputElement(
                action_id=ids.SEARCH_WORDS_ACTION,
                placeholder=PlainTextObject(text="deploy failed, ERR:12, …"),
                initial_value=words or None,
                min_length=1,
                max_length=MAX_SEARCH_CHARS,
            ),
        ),
        InputBlock(
            block_id=ids.SEARCH_CHANNEL_BLOCK,
            label=PlainTextObject(text="In channel"),
            optional=True,
            element=ConversationSelectElement(
                action_id=ids.SEARCH_CHANNEL_ACTION,
                placeholder=PlainTextObject(text="Any channel"),
                initial_conversation=channel,
                filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
            ),
        ),
        InputBlock(
            block_id=ids.SEARCH_AUTHOR_BLOCK,
            label=PlainTextObject(text="From"),
            optional=True,
            element=UserSelectElement(
                action_id=ids.SEARCH_AUTHOR_ACTION,
                placeholder=PlainTextObject(text="Anyone"),
                initial_user=author,
            ),
        ),
        _date_input(ids.SEARCH_AFTER_BLOCK, ids.SEARCH_AFTER_ACTION, "On or after", q.after),
        _date_input(
            ids.SEARCH_BEFORE_BLOCK,
            ids.SEARCH_BEFORE_ACTION,
            "Before",
            q.before,
            hint="Messages up to the end of the day before this one.",
        ),
    ]
    if hits is not None:
        blocks.append(DividerBlock())
        blocks += search_results(
            hits, q, tz=tz, page=page, more=more, more_action=ids.SEARCH_MODAL_MORE
        )
    return View(
        type="modal",
        callback_id=ids.SEARCH_MODAL,
        title=PlainTextObject(text="Search the history"),
        submit=PlainTextObject(text="Search"),
        close=PlainTextObject(text="Close"),
        private_metadata=(context or ModalContext()).to_metadata(),
        blocks=blocks,
    ).to_dict()


def _date_input(
    block_id: str, action_id: str, label: str, day: date | None, *, hint: str | None = None
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=PlainTextObject(text=label),
        hint=PlainTextObject(text=hint) if hint else None,
        optional=True,
        element=DatePickerElement(
            action_id=action_id,
            placeholder=PlainTextObject(text="Any day"),
            initial_date=day.isoformat() if day is not None else None,
        ),
    )


_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def parse_search_submission(values: object) -> SearchQuery | dict[str, str]:
    """The modal's `view["state"]["values"]` as a query, or `{block_id: message}` for
    `ack(response_action="errors", errors=…)`. Never raises, whatever the payload holds."""
    errors: dict[str, str] = {}
    state = values if isinstance(values, Mapping) else {}

    def field(block_id: str, action_id: str, key: str) -> str | None:
        block = state.get(block_id)
        element = block.get(action_id) if isinstance(block, Mapping) else None
        value = element.get(key) if isinstance(element, Mapping) else None
        return value if isinstance(value, str) else None

    words = " ".join(
        (field(ids.SEARCH_WORDS_BLOCK, ids.SEARCH_WORDS_ACTION, "value") or "").split()
    )
    if not words:
        errors[ids.SEARCH_WORDS_BLOCK] = "Give some words to search for."
    elif len(words) > MAX_SEARCH_CHARS:
        errors[ids.SEARCH_WORDS_BLOCK] = (
            f"At most {MAX_SEARCH_CHARS} characters ({len(words)} given): use fewer words."
        )
    channel = field(ids.SEARCH_CHANNEL_BLOCK, ids.SEARCH_CHANNEL_ACTION, "selected_conversation")
    author = field(ids.SEARCH_AUTHOR_BLOCK, ids.SEARCH_AUTHOR_ACTION, "selected_user")
    days: dict[str, date | None] = {}
    for block_id, action_id in (
        (ids.SEARCH_AFTER_BLOCK, ids.SEARCH_AFTER_ACTION),
        (ids.SEARCH_BEFORE_BLOCK, ids.SEARCH_BEFORE_ACTION),
    ):
        raw = field(block_id, action_id, "selected_date")
        days[block_id] = _iso_day(raw) if raw else None
        if raw and days[block_id] is None:
            errors[block_id] = "Pick a day from the calendar."
    after, before = days[ids.SEARCH_AFTER_BLOCK], days[ids.SEARCH_BEFORE_BLOCK]
    if after is not None and before is not None and after >= before:
        errors[ids.SEARCH_BEFORE_BLOCK] = "Pick a later day than “On or after”, or leave one empty."
    if errors:
        return errors
    return SearchQuery(
        words=words,
        channel_ids=(channel,) if channel and is_conversation_id(channel) else (),
        user_ids=(author,) if author and is_user_id(author) else (),
        after=after,
        before=before,
    )


def _iso_day(raw: str) -> date | None:
    found = _ISO_DAY.fullmatch(raw)
    if not found:
        return None
    try:
        return date(*(int(part) for part in found.groups()))
    except ValueError:
        return None
