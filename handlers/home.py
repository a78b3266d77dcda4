"""App Home: publish the Home tab when a user opens it, after every change, and (throttled)
while a run makes progress, for the people who looked at it recently. Only people of this
workspace get one: an inactive account is neither published to nor refreshed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from handlers.background import after_ack
from handlers.data import progress_info, run_info, schedule_info
from handlers.deps import Deps, deps_of
from scheduler.people import UNKNOWN_USER_ERRORS

log = logging.getLogger(__name__)


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(handle_home_opened)


async def handle_home_opened(event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    # The Messages tab fires the same event; only the Home tab has a view to publish.
    if event.get("tab") != "home":
        return
    user_id = event.get("user")
    if not isinstance(user_id, str) or not user_id:  # nobody to publish for
        log.info("app_home_opened without a user: ignored")
        return
    deps = deps_of(context)
    after_ack(deps.home.publish(client, deps, user_id))


class HomePublisher:
    """Builds and publishes one user's Home tab; remembers recent viewers for live refreshes.

    `views.publish` is Tier 4 (100/min): refreshes during a run are spaced `interval` seconds
    apart and limited to people who opened the tab in the last `viewer_ttl` seconds."""

    def __init__(
        self,
        *,
        interval: float = 10.0,
        viewer_ttl: float = 1800.0,
        max_viewers: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.viewer_ttl = viewer_ttl
        self.max_viewers = max_viewers
        self._clock = clock
        self._viewers: dict[str, float] = {}
        self._last_refresh = float("-inf")
        self._pending: asyncio.Task[None] | None = None

    async def publish(self, client: AsyncWebClient, deps: Deps, user_id: str) -> None:
        viewer = await deps.people.viewer(client, user_id)
        if not viewer.may_use_app:
            # A deactivated account, a bot, a stranger or an id Slack does not know: no Home tab,
            # and never in the list of viewers the live refreshes go to.
            self._viewers.pop(user_id, None)
            log.info("no Home tab for %s: %s", user_id, viewer.standing)
            return
        self._viewers[user_id] = self._clock()
        team = deps.team_id
        schedule = await deps.schedules.get(team)
        running = await deps.runs.current(team)
        progress = deps.runs.progress(team) if running is not None else None
        recent = await deps.runs.history(team, 10)
        totals = await deps.runs.totals(team)
        view = home_view(
            schedule_info(schedule),
            run_info(running),
            progress_info(progress, running),
            [info for info in (run_info(r) for r in recent) if info is not None],
            totals,
            is_admin=viewer.is_admin,
            members_can_run=deps.members_can_run,
            viewer_tz=viewer.tz,
            now=deps.clock(),
            viewer_id=user_id,
        )
        await client.views_publish(user_id=user_id, view=view)

    def recent_viewers(self) -> list[str]:
        cutoff = self._clock() - self.viewer_ttl
        for user_id in [u for u, seen in self._viewers.items() if seen < cutoff]:
            del self._viewers[user_id]
        newest = sorted(self._viewers, key=self._viewers.__getitem__, reverse=True)
        return newest[: self.max_viewers]

    def refresh_soon(self, client: AsyncWebClient, deps: Deps) -> None:
        """Refresh recent viewers now, or once the interval since the last refresh has passed."""
        if self._pending is not None and not self._pending.done():
            return
        delay = max(0.0, self._last_refresh + self.interval - self._clock())
        self._pending = asyncio.get_running_loop().create_task(
            self._refresh_after(delay, client, deps)
        )

    async def _refresh_after(self, delay: float, client: AsyncWebClient, deps: Deps) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._last_refresh = self._clock()
        for user_id in self.recent_viewers():
            try:
                await self.publish(client, deps, user_id)
            except SlackApiError as exc:
                error = exc.response.get("error") if exc.response is not None else None
                log.warning("home refresh for %s refused: %s", user_id, error)
                if error in UNKNOWN_USER_ERRORS:  # gone for good: stop refreshing their tab
                    self._viewers.pop(user_id, None)

    async def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)
