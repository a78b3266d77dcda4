"""The Home publisher: renders and publishes one user's App Home view (`views.publish`) when they
open the tab and after every change, and (throttled) while a run makes progress, for the people
who looked at it recently. Only people of this workspace get one: an inactive account is neither
published to nor refreshed. Owns the list of recent viewers and the refresh throttle; reads the
schedule and runs through their services. Imports `blocks`, the scheduler's services and
`slack_sdk`; never Bolt or `handlers`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from db.session import database_trouble
from scheduler.people import UNKNOWN_USER_ERRORS, PeopleDirectory
from scheduler.search import may_search

if TYPE_CHECKING:
    from scheduler.mirror import MirrorService
    from scheduler.runs import RunService
    from scheduler.schedules import ScheduleService

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class HomePublisher:
    """Builds and publishes one user's Home tab; remembers recent viewers for live refreshes.

    `views.publish` is Tier 4 (100/min): refreshes during a run are spaced `interval` seconds
    apart and limited to people who opened the tab in the last `viewer_ttl` seconds. `now` is
    the time shown in the view, `clock` the monotonic time of the throttle."""

    team_id: str
    schedules: ScheduleService
    runs: RunService
    people: PeopleDirectory
    _: KW_ONLY
    members_can_run: bool = True
    mirror: MirrorService | None = None  # the live mirror, whose state the tab shows
    search_allowed: str | None = None  # SEARCH_ALLOWED (None: no search offered)
    # Why the workspace's install needs a reinstall, if it does (None: always usable).
    install_problem: Callable[[str], Awaitable[str | None]] | None = None
    now: Callable[[], datetime] = utcnow
    interval: float = 10.0
    viewer_ttl: float = 1800.0
    max_viewers: int = 50
    clock: Callable[[], float] = time.monotonic
    _viewers: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _last_refresh: float = field(default=float("-inf"), init=False, repr=False)
    _pending: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    async def publish(self, client: AsyncWebClient, user_id: str) -> None:
        viewer = await self.people.viewer(client, user_id)
        if not viewer.may_use_app:
            # A deactivated account, a bot, a stranger or an id Slack does not know: no Home tab,
            # and never in the list of viewers the live refreshes go to.
            self._viewers.pop(user_id, None)
            log.info("no Home tab for %s: %s", user_id, viewer.standing)
            return
        self._viewers[user_id] = self.clock()
        team = self.team_id
        schedule = await self.schedules.get(team)
        running = await self.runs.current(team)
        progress = self.runs.progress(team) if running is not None else None
        recent = await self.runs.history(team, 10)
        totals = await self.runs.totals(team)
        mirror = await self.mirror.status(team) if self.mirror is not None else None
        problem = await self.install_problem(team) if self.install_problem is not None else None
        view = home_view(
            schedule,
            running,
            progress,
            recent,
            totals,
            is_admin=viewer.is_admin,
            members_can_run=self.members_can_run,
            viewer_tz=viewer.tz,
            now=self.now(),
            viewer_id=user_id,
            mirror=mirror,
            can_search=self.search_allowed is not None and may_search(viewer, self.search_allowed),
            reinstall=problem,
        )
        await client.views_publish(user_id=user_id, view=view)

    def recent_viewers(self) -> list[str]:
        cutoff = self.clock() - self.viewer_ttl
        for user_id in [u for u, seen in self._viewers.items() if seen < cutoff]:
            del self._viewers[user_id]
        newest = sorted(self._viewers, key=self._viewers.__getitem__, reverse=True)
        return newest[: self.max_viewers]

    def refresh_soon(self, client: AsyncWebClient) -> None:
        """Refresh recent viewers now, or once the interval since the last refresh has passed."""
        if self._pending is not None and not self._pending.done():
            return
        delay = max(0.0, self._last_refresh + self.interval - self.clock())
        self._pending = asyncio.get_running_loop().create_task(self._refresh_after(delay, client))

    async def _refresh_after(self, delay: float, client: AsyncWebClient) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._last_refresh = self.clock()
        for user_id in self.recent_viewers():
            try:
                await self.publish(client, user_id)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                log.warning("home refresh for %s refused: %s", user_id, error)
                if error in UNKNOWN_USER_ERRORS:  # gone for good: stop refreshing their tab
                    self._viewers.pop(user_id, None)
            except Exception as exc:
                if not database_trouble(exc):
                    log.exception("home refresh for %s failed", user_id)
                    continue
                # Every viewer's tab reads the same database: skip this round, one line, no
                # traceback; the next progress event or tab opening tries again.
                log.warning(
                    "home refresh skipped: the database did not answer (%s)", type(exc).__name__
                )
                return

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)
