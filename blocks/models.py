"""Plain frozen data only the builders use: a channel with its display name, the schedule modal's
presets. The entities themselves (a run, a schedule, a run's progress) are
`db.records`' types, rendered as the store returns them. Imports nothing of ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class ChannelRef(NamedTuple):
    """A channel as shown to people: its id, and its name without `#` when known."""

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class CronPreset:
    """A choice of the schedule modal's preset menu; picking it fills the cron input."""

    label: str
    cron: str


DEFAULT_PRESETS: tuple[CronPreset, ...] = (
    CronPreset("Every hour", "0 * * * *"),
    CronPreset("Every day at 02:00", "0 2 * * *"),
    CronPreset("Weekdays at 06:00", "0 6 * * 1-5"),
    CronPreset("Every Sunday at 03:00", "0 3 * * 0"),
    CronPreset("First day of the month at 04:00", "0 4 1 * *"),
)
