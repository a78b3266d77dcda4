"""Times for people: durations (`3 min 5 s`), dates in a viewer's time zone (`Tue 3 Mar, 02:00
CET`, English names whatever the process locale), relative times (`in 3 h`, `5 min ago`).

Pure: imports the standard library only. Naive datetimes are UTC (the store keeps UTC); an unknown
time zone shows as UTC; nothing here raises on odd input (NaN, overflow, negative spans).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTH_NAMES = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


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
