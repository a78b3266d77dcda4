"""Progress for people: the text bar (`█████░░░ 25%`) and the ETA line (`about 5 min (around
14:35 UTC)`) that the Home tab, `/backfill status` and the progress DM share.

Pure: imports the standard library and `blocks.times` only; odd input degrades, never raises.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from blocks.times import as_aware, format_duration, zone

BAR_FULL = "█"
BAR_EMPTY = "░"


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
