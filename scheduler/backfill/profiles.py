"""Rate profiles: how many calls per minute each Slack method the engine uses may make, and the
page sizes to ask for, for an internal app (Tier 3 history) or a non-Marketplace one (1/min, 15).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Slack's published tiers (per app, per workspace, per method). They are floors ("N+ per
# minute"), so pacing at exactly N is safe. auth.test is "special" (hundreds per minute).
_TIER_RATES: dict[str, int] = {
    "conversations.list": 20,  # Tier 2
    "conversations.history": 50,  # Tier 3
    "conversations.replies": 50,  # Tier 3
    "conversations.info": 50,  # Tier 3
    "conversations.join": 50,  # Tier 3
    "users.list": 20,  # Tier 2
    "users.info": 100,  # Tier 4
    "auth.test": 100,  # special; we never need more
}

# A method missing from the table is paced like Tier 2: slow but never wrong.
DEFAULT_CALLS_PER_MINUTE = 20


@dataclass(frozen=True)
class RateProfile:
    """Calls per "minute" per method and page sizes. `seconds_per_minute` is 60 for Slack; a
    time-compressed emulator uses less (see `scaled`)."""

    name: str
    calls_per_minute: Mapping[str, int] = field(hash=False)
    history_page_size: int
    replies_page_size: int
    max_page_size: int
    seconds_per_minute: float = 60.0

    def __post_init__(self) -> None:
        # Frozen means frozen: nobody may tweak a shared profile's table in place.
        object.__setattr__(self, "calls_per_minute", MappingProxyType(dict(self.calls_per_minute)))
        if any(rate <= 0 for rate in self.calls_per_minute.values()):
            raise ValueError("calls per minute must be positive")
        if self.seconds_per_minute <= 0:
            raise ValueError("seconds_per_minute must be positive")
        for size in (self.history_page_size, self.replies_page_size):
            if not 1 <= size <= self.max_page_size:
                raise ValueError(f"page size {size} outside 1..{self.max_page_size}")

    def rate(self, method: str) -> int:
        """Calls allowed per "minute" for `method`."""
        return self.calls_per_minute.get(method, DEFAULT_CALLS_PER_MINUTE)

    def interval(self, method: str) -> float:
        """Seconds between evenly spaced calls of `method` at exactly its rate."""
        return self.seconds_per_minute / self.rate(method)

    def scaled(self, seconds_per_minute: float) -> RateProfile:
        """The same profile where one "minute" lasts `seconds_per_minute` real seconds."""
        return dataclasses.replace(self, seconds_per_minute=seconds_per_minute)


INTERNAL = RateProfile(
    name="internal",
    calls_per_minute=_TIER_RATES,
    history_page_size=200,
    replies_page_size=200,
    max_page_size=999,  # `limit` must be under 1000
)

# Commercially distributed apps outside the Marketplace (since May 2025): history and replies
# at 1 call per minute, and `limit` capped (max and default) at 15.
NON_MARKETPLACE = RateProfile(
    name="non_marketplace",
    calls_per_minute={**_TIER_RATES, "conversations.history": 1, "conversations.replies": 1},
    history_page_size=15,
    replies_page_size=15,
    max_page_size=15,
)

PROFILES: Mapping[str, RateProfile] = MappingProxyType(
    {INTERNAL.name: INTERNAL, NON_MARKETPLACE.name: NON_MARKETPLACE}
)


def profile_for(name: str) -> RateProfile:
    """The profile for a `SLACK_RATE_PROFILE` value: "internal" or "non_marketplace"."""
    key = name.strip().lower().replace("-", "_")
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(
            f"unknown rate profile {name!r}; expected one of: {', '.join(PROFILES)}"
        ) from None
