"""The domain's limits and patterns, in one place: the days range, the cron length, the channel
cap, Slack's id and token shapes and the time-zone check that the grammar, the modals' parsers,
the schedule validation, the renderers and the log redaction all use, so one rule has one home and
every message states the same numbers.

Pure: constants, compiled patterns and small checks that never raise. Imports the standard
library only (nothing of ours), so every layer may import it; the engine (`scheduler/backfill`)
does not need it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

# --- days of history a run stores ----------------------------------------------------------------

MIN_DAYS = 1
MAX_DAYS = 365
DEFAULT_DAYS = 7


def check_days(days: object) -> int | None:
    """`days` when it is a whole number (an `int`, not a `bool`) from MIN_DAYS to MAX_DAYS, else
    None. Each caller parses its own input form first (typed text, a form field, a stored row)."""
    if isinstance(days, bool) or not isinstance(days, int):
        return None
    return days if MIN_DAYS <= days <= MAX_DAYS else None


def clamp_days(days: object) -> int:
    """`days` brought into the range (for a form's initial value); DEFAULT_DAYS when not an int."""
    if not isinstance(days, int):
        return DEFAULT_DAYS
    return max(MIN_DAYS, min(MAX_DAYS, days))


# --- channels ------------------------------------------------------------------------------------

# How many channels one command, form or schedule may name. Each named channel is checked against
# Slack's channel list before anything is stored or started, and a run walks them one by one:
# past this, "all channels" (the default) is the right choice anyway.
MAX_CHANNELS = 100

# Three shapes, from the loosest to the strictest, each where its source calls for it:
# - any conversation id Slack itself hands us (public C…, private G…, direct message D…): the
#   forms' conversation pickers and the `<#C…>` renderings;
CONVERSATION_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
# - a channel a schedule may store (public or private, never a direct message);
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,20}")
# - a channel id typed in the command text: at least 7 characters with a digit, so that a word in
#   capitals is read as a channel name, not as an id.
TYPED_CHANNEL_ID = re.compile(r"(?=[A-Z0-9]*[0-9])[CG][A-Z0-9]{6,20}")


def is_conversation_id(value: object) -> bool:
    return isinstance(value, str) and CONVERSATION_ID.fullmatch(value) is not None


def is_channel_id(value: object) -> bool:
    return isinstance(value, str) and CHANNEL_ID.fullmatch(value) is not None


def is_typed_channel_id(value: object) -> bool:
    return isinstance(value, str) and TYPED_CHANNEL_ID.fullmatch(value) is not None


# --- people --------------------------------------------------------------------------------------

# Users U…, Enterprise Grid users W…; anything else is shown as text, never as a mention.
USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")


def is_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID.fullmatch(value) is not None


# --- cron expressions and time zones -------------------------------------------------------------

MAX_CRON_CHARS = 200
# The cron shorthands accepted; stored expanded, as 5 fields.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_TIMEZONE = "UTC"
MAX_TZ_CHARS = 64
# What a time-zone name may look like before it is looked up (`Europe/Paris`, `Etc/GMT+3`).
TIMEZONE_NAME = re.compile(rf"[A-Za-z0-9_+\-/]{{1,{MAX_TZ_CHARS}}}")
# Zone files that are not IANA zone names.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def looks_like_timezone(value: object) -> bool:
    """The shape of a zone name only (the grammar and the forms); `check_timezone` decides."""
    return isinstance(value, str) and TIMEZONE_NAME.fullmatch(value) is not None


@lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """The IANA zone names this system knows (empty when it ships no zone list)."""
    return frozenset(available_timezones()) - _NOT_ZONES


def check_timezone(name: str) -> ZoneInfo | None:
    """The zone `name` (exact IANA spelling, already stripped), or None when it is not one. With no
    zone list on the system, any name the zone database loads is taken."""
    known = known_timezones()
    if name == "UTC" or name in known or (not known and name not in _NOT_ZONES):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            return None
    return None


# --- secrets -------------------------------------------------------------------------------------

# Slack token shapes: bot, user, app-level, refresh and config tokens.
SLACK_TOKEN = re.compile(r"\b(?:xox[abprse]|xapp|xoxe\.xox[bp])-[A-Za-z0-9-]+")
REDACTED = "[redacted]"


def redact_tokens(text: str) -> str:
    """`text` with every token-shaped string replaced by REDACTED (logs, DMs, error messages)."""
    return SLACK_TOKEN.sub(REDACTED, text)
