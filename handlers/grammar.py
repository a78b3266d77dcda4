"""The `/backfill` grammar: `parse_command(text)` turns the slash command's text into a `Command`
or a `ParseError` that says what was wrong and shows the accepted form. It never raises.

Pure: no I/O, no Slack client, no database. It imports only the usage lines from `blocks.help`, so
the help text and the errors show the same forms, and the domain limits and patterns from
`blocks.limits` (days range, cron length, channel ids and cap, time-zone shape). It is one piece
(~500 lines) because the lexer, the per-sub-command rules and their refusals share one token type
and one refusal path (`_Refused`): split, every error would cross a module boundary. What it
accepts (beyond design.md's grammar):

* sub-commands and option keys in any case (`SCHEDULE`, `Days=3`); spaces around `=` and after
  commas (`days = 3`, `channels=#a, #b`); non-breaking spaces; zero-width characters are dropped.
* the cron between straight or smart quotes (`"…"`, `“…”`, `„…“`, `'…'`, `‘…’`), anywhere among the
  options, or as `cron="…"`. An unquoted cron is refused with a hint to quote it.
* channels as Slack escapes them with `should_escape: true` (`<#C123|name>`, `<#C123>`, `<#C123|>`),
  channel ids (`C0123ABCD`, `G…`), or names (`#eng`, `eng`), lower-cased, to be resolved by the
  handler (`channel_names`). `channels=all` (or `*`) means every channel, the default.
* aliases `day=`, `channel=`, `timezone=`/`time_zone=`.
The cron syntax and the time zone are only extracted here; `scheduler.validate_schedule` judges
them.

`search` has a grammar of its own (`_parse_search`): its words are free text, so they are split on
spaces only (an apostrophe in `don't` is no quote), and only the four filters `in:`, `from:`,
`after:`, `before:` are read out of them; any other `word:` (`ERR:12`, `https://…`) is a word.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date

from blocks.help import USAGE_BY_COMMAND
from blocks.limits import (
    DEFAULT_DAYS,
    MAX_CHANNELS,
    MAX_CRON_CHARS,
    MAX_DAYS,
    MIN_DAYS,
    USER_ID,
    check_days,
    is_typed_channel_id,
    is_user_id,
    looks_like_timezone,
)
from blocks.search import MAX_SEARCH_CHARS

DEFAULT_HISTORY = 10
MIN_HISTORY, MAX_HISTORY = 1, 100

SUBCOMMANDS = (
    "help", "schedule", "run", "status", "list", "pause", "resume", "delete", "cancel", "history",
    "search", "purge",
)  # fmt: skip


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None  # a sub-command, for `/backfill help schedule`


@dataclass(frozen=True, slots=True)
class OpenScheduleModal:
    pass


@dataclass(frozen=True, slots=True)
class SaveSchedule:
    """Create or replace the schedule. No channels at all means every channel.

    `channel_names` (without `#`, lower-cased) still need resolving to ids by the handler;
    `tz` is None when not given (the handler uses the admin's own Slack time zone, else UTC)."""

    cron: str
    days: int = DEFAULT_DAYS
    channel_ids: tuple[str, ...] = ()
    channel_names: tuple[str, ...] = ()
    tz: str | None = None

    @property
    def all_channels(self) -> bool:
        return not self.channel_ids and not self.channel_names


@dataclass(frozen=True, slots=True)
class OpenRunModal:
    pass


@dataclass(frozen=True, slots=True)
class StartRun:
    days: int = DEFAULT_DAYS
    channel_ids: tuple[str, ...] = ()
    channel_names: tuple[str, ...] = ()
    # (id, name) for the ids Slack sent as `<#C…|name>`: for showing only, never for deciding,
    # so two commands naming the same channels are equal.
    channel_labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def all_channels(self) -> bool:
        return not self.channel_ids and not self.channel_names


@dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclass(frozen=True, slots=True)
class ListSchedule:
    pass


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Resume:
    pass


@dataclass(frozen=True, slots=True)
class Delete:
    pass


@dataclass(frozen=True, slots=True)
class Cancel:
    pass


@dataclass(frozen=True, slots=True)
class History:
    n: int = DEFAULT_HISTORY


@dataclass(frozen=True, slots=True)
class Search:
    """`/backfill search <words> [in:#channel] [from:@user] [after:YYYY-MM-DD] [before:YYYY-MM-DD]`.

    `words`: the non-filter words in the order typed, single-spaced, with Slack's `&amp;` `&lt;`
    `&gt;` undone (what the person typed), never empty, at most `MAX_SEARCH_CHARS`; quotes are
    kept as typed. Filters may come anywhere and `in:`/`from:` may repeat (a message matches when
    it is in any of the channels and by any of the people). `channel_names` (without `#`,
    lower-cased) still need resolving to ids by the handler, as for `/backfill run`. `after` is
    the first day included, `before` the first day excluded (`after:2026-03-01
    before:2026-04-01` is March), days in the viewer's own time zone; `after < before` when both
    are given."""

    words: str
    channel_ids: tuple[str, ...] = ()
    channel_names: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()
    after: date | None = None
    before: date | None = None
    # (id, name) for the ids Slack sent as `<#C…|name>`: for showing only, never for deciding.
    channel_labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Purge:
    """`/backfill purge`: remove this workspace's stored copy (admins only, after a confirmation
    the handler asks for; the parser only recognises the sub-command)."""


@dataclass(frozen=True, slots=True)
class ParseError:
    """What was wrong (one or two sentences, may hold `code` spans) and the accepted form."""

    message: str
    usage_line: str
    subcommand: str | None = None  # None when the sub-command itself was not recognised


Command = (
    Help | OpenScheduleModal | SaveSchedule | OpenRunModal | StartRun | Status | ListSchedule
    | Pause | Resume | Delete | Cancel | History | Search | Purge
)  # fmt: skip


# --- lexing -------------------------------------------------------------------------------------

_CLOSERS = {
    '"': '"“”', "“": '"”“', "”": '"”“', "„": '"“”', "'": "'‘’", "‘": "'’‘", "’": "'’‘",
}  # fmt: skip
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_KEY = re.compile(r"([A-Za-z_]+)\s*=")
_DIGITS = re.compile(r"[0-9]+")
_MENTION = re.compile(r"<#([A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL_NAME = re.compile(r"[\w\-.]{1,80}")
_CRONISH = re.compile(r"[0-9*@?/,\-LW#]+|@\w+")

KEY_ALIASES = {
    "days": "days", "day": "days", "channels": "channels", "channel": "channels", "tz": "tz",
    "timezone": "tz", "time_zone": "tz", "cron": "cron",
}  # fmt: skip
OPTIONS = {"schedule": ("cron", "days", "channels", "tz"), "run": ("days", "channels")}


class _Refused(Exception):
    """Internal: carries the message of a ParseError out of nested helpers."""


@dataclass(slots=True)
class _Token:
    value: str
    quoted: bool  # the whole token was one quoted string
    bare_start: bool  # first character came from outside quotes
    bare_end: bool  # last character came from outside quotes
    raw: str


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        parts: list[str] = []
        saw_bare = saw_quote = False
        bare_start: bool | None = None
        bare_end = False
        while i < n and not text[i].isspace():
            c = text[i]
            if c in _CLOSERS:
                close = next((j for j in range(i + 1, n) if text[j] in _CLOSERS[c]), -1)
                if close < 0:
                    snippet = _shown(text[i : i + 30])
                    raise _Refused(
                        f"The quote that opens {snippet} is never closed: "
                        'put the cron expression between two double quotes, like "0 2 * * *".'
                    )
                parts.append(text[i + 1 : close])
                saw_quote = True
                bare_start = False if bare_start is None else bare_start
                bare_end = False
                i = close + 1
            else:
                parts.append(c)
                saw_bare = True
                bare_start = True if bare_start is None else bare_start
                bare_end = True
                i += 1
        tokens.append(
            _Token(
                value="".join(parts),
                quoted=saw_quote and not saw_bare,
                bare_start=bool(bare_start),
                bare_end=bare_end,
                raw=text[start:i],
            )
        )
    return _merge(tokens)


def _merge(tokens: list[_Token]) -> list[_Token]:
    """Join `days = 3`, `days= 3`, `days =3` and `#a, #b` into single tokens."""
    out: list[_Token] = []
    for tok in tokens:
        if out:
            prev = out[-1]
            joins = (
                (
                    prev.bare_end
                    and prev.value.endswith(",")
                    and _KEY.match(prev.value)
                    and not (tok.bare_start and _KEY.match(tok.value))
                )
                or (tok.bare_start and tok.value.startswith((",", "=")))
                or (
                    prev.bare_end
                    and prev.value.endswith("=")
                    and _KEY.fullmatch(prev.value)
                    and not (tok.bare_start and _KEY.match(tok.value))
                )
            )
            if joins:
                out[-1] = _Token(
                    value=prev.value + tok.value,
                    quoted=False,
                    bare_start=prev.bare_start,
                    bare_end=tok.bare_end,
                    raw=prev.raw + " " + tok.raw,
                )
                continue
        out.append(tok)
    return out


def _shown(text: str, limit: int = 40) -> str:
    """User input echoed in a message: one line, no backticks, cut, inside a code span."""
    flat = " ".join(text.replace("`", "'").split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`" if flat else "``"


# --- parsing -----------------------------------------------------------------------------------


def parse_command(text: str | None) -> Command | ParseError:
    """Parse the text after `/backfill`. Never raises: anything unexpected becomes a ParseError."""
    try:
        return _parse(text if isinstance(text, str) else "")
    except Exception:  # noqa: BLE001 - the contract: a bad command is an error reply, never a crash
        return ParseError(
            "That command could not be read. `/backfill help` lists the commands.",
            USAGE_BY_COMMAND["help"],
        )


def _parse(text: str) -> Command | ParseError:
    text = text.translate(_INVISIBLE).strip()
    if not text:
        return Help()
    match = re.match(r"[^\s\"“”„'‘’]*", text)
    word = match.group(0) if match else ""
    rest = text[len(word) :]
    sub = word.lower()
    if not word:
        return ParseError(
            "Start with a sub-command, for example "
            '`/backfill schedule "0 2 * * *"` or `/backfill run days=3`.',
            USAGE_BY_COMMAND["help"],
        )
    if sub not in SUBCOMMANDS:
        close = difflib.get_close_matches(sub, SUBCOMMANDS, n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else " `/backfill help` lists the commands."
        return ParseError(
            f"{_shown(word)} is not a /backfill command.{hint}", USAGE_BY_COMMAND["help"]
        )
    usage = USAGE_BY_COMMAND[sub]
    try:
        if sub == "search":
            return _parse_search(rest)
        tokens = _lex(rest)
        return _parse_sub(sub, tokens)
    except _Refused as refusal:
        return ParseError(str(refusal), usage, sub)


def _parse_sub(sub: str, tokens: list[_Token]) -> Command:
    if sub == "help":
        if not tokens:
            return Help()
        topic = tokens[0].value.lower()
        if len(tokens) == 1 and topic in SUBCOMMANDS:
            return Help(topic)
        raise _Refused(
            f"`/backfill help` takes no arguments or one sub-command; got {_shown(_raw(tokens))}."
        )
    if sub in ("schedule", "run"):
        if not tokens:
            return OpenScheduleModal() if sub == "schedule" else OpenRunModal()
        return _parse_options(sub, tokens)
    if sub == "history":
        if not tokens:
            return History()
        if len(tokens) > 1:
            raise _Refused(
                f"`/backfill history` takes one number at most; got {_shown(_raw(tokens))}."
            )
        value = tokens[0].value.strip()
        n = _whole_number(value)
        if n is None or not MIN_HISTORY <= n <= MAX_HISTORY:
            raise _Refused(
                f"The number of runs must be a whole number from {MIN_HISTORY} to {MAX_HISTORY}; "
                f"got {_shown(value)}."
            )
        return History(n)
    if tokens:
        raise _Refused(f"`/backfill {sub}` takes no arguments; got {_shown(_raw(tokens))}.")
    simple: dict[str, Command] = {
        "status": Status(), "list": ListSchedule(), "pause": Pause(), "resume": Resume(),
        "delete": Delete(), "cancel": Cancel(), "purge": Purge(),
    }  # fmt: skip
    return simple[sub]


def _raw(tokens: list[_Token]) -> str:
    return " ".join(t.raw for t in tokens)


def _parse_options(sub: str, tokens: list[_Token]) -> Command:
    allowed = OPTIONS[sub]
    seen: dict[str, str] = {}  # canonical key -> the key as typed
    values: dict[str, str] = {}
    positional: list[_Token] = []
    for tok in tokens:
        key_match = _KEY.match(tok.value) if tok.bare_start and not tok.quoted else None
        if key_match is None:
            positional.append(tok)
            continue
        typed = key_match.group(1)
        key = KEY_ALIASES.get(typed.lower())
        value = tok.value[key_match.end() :].strip()
        if key is None or key not in allowed:
            raise _Refused(
                f"{_shown(typed)} is not an option of `/backfill {sub}`. "
                f"Options: {_options_list(sub)}."
            )
        if key in seen:
            both = "" if seen[key] == typed else f" (as `{seen[key]}` and `{typed}`)"
            raise _Refused(f"`{key}` is given twice{both}; give it once.")
        seen[key] = typed
        values[key] = value

    cron: str | None = None
    if sub == "schedule":
        quoted = [t for t in positional if t.quoted]
        others = [t for t in positional if not t.quoted]
        if "cron" in values:
            quoted.insert(0, _Token(values["cron"], True, False, False, values["cron"]))
        if len(quoted) > 1:
            raise _Refused("Give one cron expression in quotes, not several.")
        if not quoted:
            cronish = [t.value for t in others if _CRONISH.fullmatch(t.value)]
            if cronish:
                raise _Refused(
                    "Put the cron expression in double quotes, like "
                    f'`/backfill schedule "{_cut(" ".join(cronish), 40)}"`.'
                )
            if others:
                raise _Refused(
                    f"Unexpected {_shown(_raw(others))}: the schedule starts with a cron expression in quotes."
                )
            raise _Refused(
                'The schedule needs a cron expression in quotes, like `"0 2 * * *"` (every day at 02:00).'
            )
        if others:
            raise _Refused(f"Unexpected {_shown(_raw(others))}. Options: {_options_list(sub)}.")
        cron = " ".join(quoted[0].value.split())
        if not cron:
            raise _Refused('The cron expression is empty: give five fields, like `"0 2 * * *"`.')
        if len(cron) > MAX_CRON_CHARS:
            raise _Refused(
                f"The cron expression is too long ({len(cron)} characters; at most {MAX_CRON_CHARS})."
            )
    elif positional:
        extra = positional[0].value
        hint = f" Did you mean `days={extra}`?" if _DIGITS.fullmatch(extra) else ""
        raise _Refused(
            f"Unexpected {_shown(_raw(positional))}.{hint} Options: {_options_list(sub)}."
        )

    days = DEFAULT_DAYS
    if "days" in values:
        checked = check_days(_whole_number(values["days"]))
        if checked is None:
            shown = _shown(values["days"]) if values["days"] else "nothing"
            raise _Refused(
                f"`days` must be a whole number of days from {MIN_DAYS} to {MAX_DAYS}; got {shown}."
            )
        days = checked

    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    if "channels" in values:
        ids, names = _channels(values["channels"])

    if sub == "run":
        labels = _labels(values["channels"]) if ids else ()
        return StartRun(days=days, channel_ids=ids, channel_names=names, channel_labels=labels)

    tz: str | None = None
    if "tz" in values:
        tz = values["tz"]
        if not looks_like_timezone(tz):
            shown = _shown(tz) if tz else "nothing"
            raise _Refused(
                f"`tz` must be a time zone name like `Europe/Paris` or `UTC`; got {shown}."
            )
    assert cron is not None
    return SaveSchedule(cron=cron, days=days, channel_ids=ids, channel_names=names, tz=tz)


def _options_list(sub: str) -> str:
    forms = {"days": "days=N", "channels": "channels=#a,#b", "tz": "tz=Area/City"}
    return ", ".join(f"`{forms[k]}`" for k in OPTIONS[sub] if k in forms)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _whole_number(value: str) -> int | None:
    """ASCII digits only (int() would take `+3`, `٣` or `1_0`); long strings are out of range."""
    value = value.strip()
    if not _DIGITS.fullmatch(value):
        return None
    stripped = value.lstrip("0") or "0"
    return int(stripped) if len(stripped) <= 6 else 10**7


def _labels(value: str) -> tuple[tuple[str, str], ...]:
    """`(id, name)` of each `<#C…|name>` in a `channels` value that `_channels` accepted."""
    found: dict[str, str] = {}
    for item in value.split(","):
        mention = _MENTION.fullmatch(item.strip())
        if mention and mention.group(2) and mention.group(1) not in found:
            found[mention.group(1)] = mention.group(2)
    return tuple(found.items())


def _channels(value: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    items = [item.strip() for item in value.split(",")]
    items = [item for item in items if item]
    if not items:
        raise _Refused("`channels` needs at least one channel, like `channels=#general,#eng`.")
    if len(items) == 1 and items[0].lower() in ("all", "*"):
        return (), ()
    if len(items) > MAX_CHANNELS:
        raise _Refused(
            f"Too many channels ({len(items)}); at most {MAX_CHANNELS}, or leave `channels` out for all."
        )
    ids: list[str] = []
    names: list[str] = []
    for item in items:
        mention = _MENTION.fullmatch(item)
        if mention:
            channel_id = mention.group(1)
            if channel_id not in ids:
                ids.append(channel_id)
            continue
        if is_typed_channel_id(item):
            if item not in ids:
                ids.append(item)
            continue
        if item.lower() in ("all", "*"):
            raise _Refused(
                "`channels=all` cannot be mixed with named channels; leave `channels` out for all."
            )
        name = item.removeprefix("#")
        name = name.lower()
        if not _CHANNEL_NAME.fullmatch(name):
            raise _Refused(
                f"{_shown(item)} is not a channel. Use `#name`, a channel mention or a channel ID, "
                "separated by commas."
            )
        if name not in names:
            names.append(name)
    return tuple(ids), tuple(names)


# --- search -------------------------------------------------------------------------------------

# A filter is `key:value` at the start of a space-separated piece; `in: #eng` (a space after the
# colon) takes the next piece as its value. Keys in any case.
_FILTER = re.compile(r"(in|from|after|before):(.*)", re.IGNORECASE | re.DOTALL)
# A piece of the search text: runs of non-spaces, where Slack's `<…>` markup (which may hold a
# label with spaces) stays whole.
_SEARCH_PIECE = re.compile(r"(?:<[^<>\n]*>|[^\s<]|<)+")
_USER_MENTION = re.compile(rf"<@({USER_ID.pattern})(?:\|[^>]*)?>")
_DAY = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
# Mentions among the words, shown to people and matched as Slack shows them: `@name`, `#name`.
_LABELLED_MENTION = re.compile(r"<([@#])[A-Z0-9]+\|([^>]+)>")
MAX_SEARCH_PEOPLE = MAX_CHANNELS
SEARCH_FILTERS = "`in:#channel`, `from:@person`, `after:YYYY-MM-DD`, `before:YYYY-MM-DD`"


def _parse_search(rest: str) -> Search:
    pieces = _SEARCH_PIECE.findall(rest)
    words: list[str] = []
    channel_items: list[str] = []
    people: list[str] = []
    days: dict[str, date] = {}
    filtered = False
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        i += 1
        found = _FILTER.fullmatch(piece)
        if found is None:
            words.append(piece)
            continue
        filtered = True
        key, value = found.group(1).lower(), found.group(2)
        if not value and i < len(pieces) and not _FILTER.fullmatch(pieces[i]):
            value = pieces[i]  # `in: #eng`
            i += 1
        if key == "in":
            items = [item.strip() for item in value.split(",") if item.strip()]
            if not items:
                raise _Refused(
                    "`in:` needs a channel, like `in:#general` (type `#` and pick it, so Slack "
                    "fills in the right one)."
                )
            channel_items += items
        elif key == "from":
            items = [item.strip() for item in value.split(",") if item.strip()]
            if not items:
                raise _Refused(
                    "`from:` needs a person, like `from:@alice` (type `@` and pick them, so Slack "
                    "fills in who they are)."
                )
            people += [_search_person(item) for item in items]
        else:
            if key in days:
                raise _Refused(f"`{key}:` is given twice; give it once.")
            days[key] = _search_day(key, value)

    ids, names, labels = _search_channels(channel_items)
    user_ids = tuple(dict.fromkeys(people))
    if len(user_ids) > MAX_SEARCH_PEOPLE:
        raise _Refused(
            f"Too many people in `from:` ({len(user_ids)}); at most {MAX_SEARCH_PEOPLE}."
        )
    after, before = days.get("after"), days.get("before")
    if after is not None and before is not None and after >= before:
        raise _Refused(
            f"No day is both on or after {after.isoformat()} (`after:`) and before "
            f"{before.isoformat()} (`before:`): `after:` must be an earlier day than `before:`."
        )
    text = _search_words(words)
    if not text:
        example = "deploy failed in:#eng" if filtered else "deploy failed"
        only = ", not only filters" if filtered else ""
        raise _Refused(
            f"Give some words to search for{only}, like `/backfill search {example}`. "
            f"Filters: {SEARCH_FILTERS}."
        )
    if len(text) > MAX_SEARCH_CHARS:
        raise _Refused(
            f"The search is too long ({len(text)} characters; at most {MAX_SEARCH_CHARS}): "
            "use fewer words."
        )
    return Search(
        words=text,
        channel_ids=ids,
        channel_names=names,
        user_ids=user_ids,
        after=after,
        before=before,
        channel_labels=labels,
    )


def _search_words(words: list[str]) -> str:
    """The words as the person typed them: labelled mentions as Slack shows them (`@name`,
    `#name`), Slack's escaping of `&`, `<`, `>` undone, single spaces."""
    text = " ".join(words)
    text = _LABELLED_MENTION.sub(lambda m: m.group(1) + m.group(2), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _search_channels(
    items: list[str],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    ids: list[str] = []
    names: list[str] = []
    labels: dict[str, str] = {}
    for item in items:
        mention = _MENTION.fullmatch(item)
        if mention:
            channel_id = mention.group(1)
            if channel_id not in ids:
                ids.append(channel_id)
            if mention.group(2) and channel_id not in labels:
                labels[channel_id] = mention.group(2)
            continue
        if is_typed_channel_id(item):
            if item not in ids:
                ids.append(item)
            continue
        name = item.removeprefix("#").lower()
        if name in ("all", "*"):
            raise _Refused(
                "Every channel is searched by default: leave `in:` out to search them all."
            )
        if not _CHANNEL_NAME.fullmatch(name):
            raise _Refused(
                f"{_shown(item)} is not a channel: `in:` takes a channel, like `in:#general` "
                "(type `#` and pick it, so Slack fills in the right one)."
            )
        if name not in names:
            names.append(name)
    if len(ids) + len(names) > MAX_CHANNELS:
        raise _Refused(
            f"Too many channels in `in:` ({len(ids) + len(names)}); at most {MAX_CHANNELS}, "
            "or leave `in:` out for all."
        )
    return tuple(ids), tuple(names), tuple(labels.items())


def _search_person(item: str) -> str:
    mention = _USER_MENTION.fullmatch(item)
    if mention:
        return mention.group(1)
    if is_user_id(item) and len(item) >= 7 and any(c.isdigit() for c in item):
        return item  # a user id typed as is (a word in capitals is not one)
    raise _Refused(
        f"{_shown(item)} is not a person Slack knows: `from:` takes a mention, like `from:@alice` "
        "(type `@` and pick them from the list, so Slack fills in who they are)."
    )


def _search_day(key: str, value: str) -> date:
    found = _DAY.fullmatch(value.strip())
    day: date | None = None
    if found:
        try:
            day = date(*(int(part) for part in found.groups()))
        except ValueError:
            day = None
    if day is None:
        shown = _shown(value) if value else "nothing"
        raise _Refused(
            f"`{key}:` needs a real day as YYYY-MM-DD, like `{key}:2026-03-01`; got {shown}."
        )
    return day
