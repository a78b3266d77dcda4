"""Who a user is to the app: Slack's own word (`users.info`) on admin rights and time zone,
cached briefly per user. The listeners ask it who is asking; the notifier asks it whose time zone
a DM is written in (one directory for both, built in `app.services`).

Admins are `is_admin`, `is_owner` or `is_primary_owner`. The cache keeps a burst of clicks from
costing one `users.info` each, and is short so a demoted admin loses rights within a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

CACHE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: str
    is_admin: bool
    tz: str | None  # the user's IANA time zone from their Slack profile


def is_workspace_admin(user: dict[str, Any]) -> bool:
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


class PeopleDirectory:
    """`users.info` with a short per-user cache."""

    def __init__(self, *, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Viewer]] = {}

    async def viewer(self, client: AsyncWebClient, user_id: str) -> Viewer:
        hit = self._cache.get(user_id)
        if hit and self._clock() - hit[0] < self._ttl:
            return hit[1]
        response = await client.users_info(user=user_id)
        user = response.get("user") or {}
        viewer = Viewer(user_id=user_id, is_admin=is_workspace_admin(user), tz=user.get("tz"))
        self._cache[user_id] = (self._clock(), viewer)
        return viewer
