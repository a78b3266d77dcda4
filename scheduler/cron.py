"""Schedule validation: standard 5-field cron expressions, IANA time zones, days and channel ids.

Pure (no I/O, no clock): parses what an admin typed into a `ScheduleSpec` or raises one
`ScheduleError` whose message is shown to the admin as is. Imports APScheduler,
cron-descriptor and the domain limits and patterns (`blocks.limits`: days range, channel ids and
cap, time-zone check) only; never `db` or Slack code. One piece (~400 lines): the field parser,
the interval rule, the zone and the trigger all work on the same parsed cron and raise the same
`ScheduleError`, and the tests read it as one contract.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from blocks.limits import (
    DEFAULT_DAYS,
    DEFAULT_TIMEZONE,
    MACROS,
    MAX_CHANNELS,
    MAX_DAYS,
    MIN_DAYS,
    check_days,
    check_timezone,
    is_channel_id,
    known_timezones,
)

# A backfill pages through Slack's rate-limited history API (Tier 3, or 1 call a minute for
# non-Marketplace apps); firing more often than this would starve every other run and the
# admin's own manual runs of quota. Measured on the schedule's wall clock.
MIN_INTERVAL_MINUTES = 15

CRON_HELP = (
    'Use 5 fields: minute hour day-of-month month day-of-week, e.g. "0 2 * * *" '
    "(every day at 02:00)."
)
TIMEZONE_HELP = 'Use an IANA time zone name such as "UTC", "Europe/Paris" or "America/New_York".'

# Shorthands of Vixie cron, stored in their 5-field form.

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Standard cron numbering: 0 (and 7) is Sunday. APScheduler 3's `from_crontab` numbers
# Monday as 0 instead, so the day-of-week field is always handed to it as names.
_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February as in a leap year

# Quartz and cronie extensions ("?", "L", "5W", "1#2"): APScheduler 3 reads them differently
# or not at all.
_SPECIAL = re.compile(r"^(?:.*[?#].*|[0-9]*[LlWw]|LW|lw)$")
_TOKEN = re.compile(
    r"^(?:(?P<star>\*)|(?P<first>[0-9a-z]+)(?:-(?P<last>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$"
)


class ScheduleError(ValueError):
    """A schedule that cannot be stored or changed; the message is written for the admin.
    `field` names the input at fault (`cron`, `timezone`, `days`, `channels`), or None when
    the schedule as a whole is refused (e.g. none to pause), so a form can point at it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0  # the number of names[0]

    @property
    def accepted(self) -> str:
        text = f"{self.name} must be {self.low}–{self.high}"
        if self.name == "day-of-week":
            text += " (0 or 7 is Sunday) or sun–sat"
        elif self.names:
            text += f" or {self.names[0]}–{self.names[-1]}"
        return text

    def number(self, text: str) -> int | None:
        if text.isdigit():
            value = int(text)
            return value if self.low <= value <= self.high else None
        if text in self.names:
            return self.names.index(text) + self.names_start
        return None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day-of-week", 0, 7, _CRON_WEEKDAYS, 0),
)


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A validated schedule: what `db.schedules` stores and what the trigger is built from."""

    cron_expression: str  # 5 fields, single-spaced, as the admin wrote them (macros expanded)
    timezone: str  # IANA name as given ("UTC", "Europe/Paris")
    days_to_backfill: int = DEFAULT_DAYS
    include_all_channels: bool = True
    channel_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _ParsedCron:
    expression: str
    values: tuple[frozenset[int], ...]  # per field, in standard cron numbering (Sunday = 0)
    apscheduler_expression: str


def _quoted(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    if len(text) > 60:
        text = text[:57] + "…"
    return f'"{text}"'


def _invalid(expr: str, reason: str) -> ScheduleError:
    return ScheduleError(
        f"{_quoted(expr)} is not a valid cron expression: {reason}. {CRON_HELP}", field="cron"
    )


def _expand(field: _Field, text: str, expr: str) -> frozenset[int]:
    values: set[int] = set()
    for original in text.split(","):
        token = original.lower()
        if _SPECIAL.match(original):
            raise _invalid(
                expr,
                f"{field.name} uses {_quoted(original)}; the special characters ? L W # are "
                f"not supported, {field.accepted}",
            )
        match = _TOKEN.match(token)
        if match is None:
            raise _invalid(
                expr,
                f"{field.name} {_quoted(original)} is not understood; {field.accepted}, "
                "with lists (1,3), ranges (1-5) and steps (*/15)",
            )
        high = 6 if field.name == "day-of-week" else field.high  # "*" means Sunday to Saturday
        if match["star"]:
            first, last = field.low, high
        else:
            first_n = field.number(match["first"])
            if first_n is None:
                raise _invalid(expr, f"{field.accepted}, got {_quoted(original)}")
            if match["last"] is not None:
                last_n = field.number(match["last"])
                if last_n is None:
                    raise _invalid(expr, f"{field.accepted}, got {_quoted(original)}")
                if last_n < first_n:
                    raise _invalid(
                        expr,
                        f"the {field.name} range {_quoted(original)} goes backwards; "
                        "write ranges low to high, e.g. 1-5",
                    )
            else:
                last_n = high if match["step"] else first_n  # "5/10" means 5-max/10
            first, last = first_n, last_n
        step = 1
        if match["step"] is not None:
            step = int(match["step"])
            span = (high if match["star"] else field.high) - field.low
            if not 1 <= step <= max(span, 1):
                raise _invalid(
                    expr, f"the {field.name} step in {_quoted(original)} must be 1–{span}"
                )
        values.update(range(first, last + 1, step))
    if field.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _parse_cron(cron: object) -> _ParsedCron:
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError(f"The cron expression is empty. {CRON_HELP}", field="cron")
    parts = cron.split()
    expr = " ".join(parts)
    if len(parts) == 1 and parts[0].startswith("@"):
        macro = MACROS.get(parts[0].lower())
        if macro is None:
            raise _invalid(expr, f"the shorthands are {', '.join(MACROS)}")
        expr, parts = macro, macro.split()
    if len(parts) != 5:
        if len(parts) in (6, 7):
            reason = f"it has {len(parts)} fields; seconds and years are not supported"
        else:
            reason = f"it has {len(parts)} field{'s' if len(parts) != 1 else ''}, not 5"
        raise _invalid(expr, reason)
    values = tuple(_expand(field, text, expr) for field, text in zip(_FIELDS, parts, strict=True))
    minutes, hours, days, months, weekdays = values
    if len(days) < 31 and len(weekdays) < 7:
        # Vixie cron fires when either field matches, APScheduler only when both do: refuse
        # the ambiguous form rather than pick a meaning the admin did not intend.
        raise _invalid(
            expr,
            "it restricts both day-of-month and day-of-week, which cron tools read differently; "
            'keep one of them as "*"',
        )
    if min(days) > max(_DAYS_IN_MONTH[m - 1] for m in months):
        raise _invalid(expr, "it never fires, none of its months has that day")
    gap = _shortest_gap(minutes, hours)
    if gap < MIN_INTERVAL_MINUTES:
        every = "every minute" if gap == 1 else f"every {gap} minutes"
        raise ScheduleError(
            f"{_quoted(expr)} fires as often as {every}; the shortest interval allowed is "
            f"{MIN_INTERVAL_MINUTES} minutes, because each backfill pages through Slack's "
            'rate-limited history API. Use e.g. "*/15 * * * *" (every 15 minutes) or '
            '"0 * * * *" (every hour).',
            field="cron",
        )
    weekday_field = (
        "*" if len(weekdays) == 7 else ",".join(_CRON_WEEKDAYS[d] for d in sorted(weekdays))
    )
    apscheduler_expression = " ".join([*parts[:4], weekday_field])
    return _ParsedCron(expr, values, apscheduler_expression)


def _shortest_gap(minutes: frozenset[int], hours: frozenset[int]) -> int:
    # Wall-clock minutes of the day the expression fires at. Counting the gap from the last
    # fire of a day to the first of the next day is conservative when days are restricted.
    times = sorted(h * 60 + m for h in hours for m in minutes)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    gaps.append(times[0] + 24 * 60 - times[-1])
    return min(gaps)


def _trigger(parsed: _ParsedCron, zone: ZoneInfo, expr: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(parsed.apscheduler_expression, timezone=zone)
    except ValueError as exc:  # our own parse should have caught it; APScheduler is the authority
        raise _invalid(expr, str(exc)) from None


def _zone(name: object) -> tuple[str, ZoneInfo]:
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"The time zone is empty. {TIMEZONE_HELP}", field="timezone")
    name = name.strip()
    zone = check_timezone(name)
    if zone is None:
        hint = ""
        matches = [z for z in known_timezones() if z.lower() == name.lower()]
        if matches:
            hint = f' Did you mean "{min(matches)}"?'
        raise ScheduleError(
            f"{_quoted(name)} is not a time zone I know.{hint} {TIMEZONE_HELP}", field="timezone"
        )
    return name, zone


def _days(days: object) -> int:
    value: int | None = None
    if isinstance(days, int) and not isinstance(days, bool):
        value = days
    elif isinstance(days, str) and days.strip().isascii() and days.strip().isdigit():
        value = int(days.strip())
    checked = check_days(value)
    if checked is None:
        raise ScheduleError(
            f"days must be a whole number from {MIN_DAYS} to {MAX_DAYS}, got {_quoted(days)}.",
            field="days",
        )
    return checked


def _channels(channel_ids: object) -> tuple[str, ...]:
    if channel_ids is None:
        return ()
    items: Iterable[Any]
    if isinstance(channel_ids, str):
        items = channel_ids.split(",")
    elif isinstance(channel_ids, Iterable):
        items = channel_ids
    else:
        raise ScheduleError(
            f"channels must be a list of channel ids, got {_quoted(channel_ids)}.", field="channels"
        )
    seen: dict[str, None] = {}
    for item in items:
        if not isinstance(item, str):
            raise ScheduleError(
                f"channels must be channel ids, got {_quoted(item)}.", field="channels"
            )
        cid = item.strip()
        if not cid:
            continue
        if not is_channel_id(cid):
            raise ScheduleError(
                f"{_quoted(cid)} is not a Slack channel id; channel ids look like C0123ABCD "
                "(public) or G0123ABCD (private). Leave channels empty for all channels.",
                field="channels",
            )
        seen.setdefault(cid)
        if len(seen) > MAX_CHANNELS:
            raise ScheduleError(
                f"A schedule may name at most {MAX_CHANNELS} channels; leave channels empty "
                "for all channels.",
                field="channels",
            )
    return tuple(seen)


def validate_schedule(
    cron: object,
    timezone: object = DEFAULT_TIMEZONE,
    days: object = DEFAULT_DAYS,
    channel_ids: object = None,
) -> ScheduleSpec:
    """Check what an admin typed and return the `ScheduleSpec` to store.

    Raises `ScheduleError` (and nothing else, whatever the input) naming what is wrong and
    what is accepted. An empty or missing channel list means every channel.
    """
    parsed = _parse_cron(cron)
    tz_name, zone = _zone(timezone)
    _trigger(parsed, zone, parsed.expression)
    days_value = _days(days)
    channels = _channels(channel_ids)
    return ScheduleSpec(
        cron_expression=parsed.expression,
        timezone=tz_name,
        days_to_backfill=days_value,
        include_all_channels=not channels,
        channel_ids=channels,
    )


def build_trigger(spec: ScheduleSpec) -> CronTrigger:
    """The APScheduler trigger of a spec (raises `ScheduleError` if the spec is invalid)."""
    parsed = _parse_cron(spec.cron_expression)
    _, zone = _zone(spec.timezone)
    return _trigger(parsed, zone, parsed.expression)


def next_fire_time(spec: ScheduleSpec, after: datetime) -> datetime | None:
    """The first fire time strictly after `after` (aware), as aware UTC; None if it never fires.

    Follows APScheduler's DST rules: a wall time skipped in spring fires at the same UTC
    offset as before the change (02:30 CET → 01:30 UTC), and one repeated in autumn fires twice.
    """
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError("after must be timezone-aware")
    # In UTC: wall-clock arithmetic on a repeated local time would lose its `fold`.
    start = after.astimezone(UTC) + timedelta(microseconds=1)
    fire = build_trigger(spec).get_next_fire_time(None, start)
    return None if fire is None else fire.astimezone(UTC)


__all__ = [
    "CRON_HELP",
    "MIN_INTERVAL_MINUTES",
    "ScheduleError",
    "ScheduleSpec",
    "build_trigger",
    "next_fire_time",
    "validate_schedule",
]
