"""Who a user is to the app: Slack's own word (`users.info`) on whether they are a person of this
workspace, their admin rights and time zone, cached briefly per user. The listeners ask it who is
asking; the notifier asks it whose time zone a DM is written in (one directory for both, built in
`app.services`, told which workspace it serves by `handlers.deps.Deps`).

Admin here means all of: `is_admin`, `is_owner` or `is_primary_owner` (or, on Enterprise Grid, the
org-level `enterprise_user.is_admin`/`is_owner`), and a person of this workspace: `team_id` is ours
(or, on Grid, `enterprise_user.teams` lists ours), not deactivated, not a bot, not a guest. A
Slack Connect user of another organisation carries our `team_id` on the request but theirs in
`users.info`: a stranger here, with no rights at all. An id Slack does not know or will not show
(`user_not_found`, `user_not_visible`) is a viewer with no rights, never an error.

The cache keeps a burst of clicks from costing one `users.info` each, and is short so a demoted
admin loses rights within a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0

# A viewer's standing in this workspace, from `users.info`.
MEMBER = "member"  # a full member of this workspace
GUEST = "guest"  # a multi- or single-channel guest (`is_restricted`, `is_ultra_restricted`)
DEACTIVATED = "deactivated"  # `deleted`
BOT = "bot"  # `is_bot` (bot users, Slackbot, workflow bots)
STRANGER = "stranger"  # a user of another workspace or organisation
UNKNOWN = "unknown"  # Slack does not know the id, or will not show it to the app
# Answers of `users.info` about the id itself: the user has no rights, the request is not broken.
UNKNOWN_USER_ERRORS = frozenset(
    {"user_not_found", "user_not_visible", "users_not_found", "invalid_user_id", "user_disabled"}
)


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: str
    is_admin: bool
    tz: str | None  # the user's IANA time zone from their Slack profile
    standing: str = MEMBER

    @property
    def is_member(self) -> bool:
        """A full member of this workspace: may do what members may (manual runs when allowed)."""
        return self.standing == MEMBER

    @property
    def may_use_app(self) -> bool:
        """A person of this workspace (members and guests): anyone else is refused outright."""
        return self.standing in (MEMBER, GUEST)


def standing_of(user: dict[str, Any], team_id: str | None) -> str:
    """Where `user` (a `users.info` user object) stands in workspace `team_id`. Without a team to
    compare with, nobody belongs: a directory that does not know its workspace grants nothing."""
    if not user:
        return UNKNOWN
    if user.get("deleted"):
        return DEACTIVATED
    if user.get("is_bot") or user.get("is_workflow_bot") or user.get("id") == "USLACKBOT":
        return BOT
    if not team_id or user.get("is_stranger") or not belongs_to(user, team_id):
        return STRANGER
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return GUEST
    return MEMBER


def belongs_to(user: dict[str, Any], team_id: str) -> bool:
    """`team_id` is the user's workspace, or (Enterprise Grid) one of the org's workspaces they
    are in: `users.info` gives the home workspace in `team_id` and all of them in
    `enterprise_user.teams`."""
    if user.get("team_id") == team_id:
        return True
    grid = user.get("enterprise_user")
    teams = grid.get("teams") if isinstance(grid, dict) else None
    return isinstance(teams, list) and team_id in teams


def is_workspace_admin(user: dict[str, Any], team_id: str | None = None) -> bool:
    """Admin rights in workspace `team_id`: the role flags, and a full member of it."""
    if standing_of(user, team_id) != MEMBER:
        return False
    grid = user.get("enterprise_user")
    org_admin = isinstance(grid, dict) and bool(grid.get("is_admin") or grid.get("is_owner"))
    return bool(
        user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner") or org_admin
    )


def viewer_of(user_id: str, user: dict[str, Any], team_id: str | None) -> Viewer:
    tz = user.get("tz")
    return Viewer(
        user_id=user_id,
        is_admin=is_workspace_admin(user, team_id),
        tz=tz if isinstance(tz, str) else None,
        standing=standing_of(user, team_id),
    )


class PeopleDirectory:
    """`users.info` with a short per-user cache, judged against the workspace it serves."""

    def __init__(
        self,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        team_id: str | None = None,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Viewer]] = {}
        self.team_id = team_id

    def serve(self, team_id: str) -> None:
        """The workspace whose people this directory judges (the bot token's, `auth.test`)."""
        if team_id != self.team_id:
            self.team_id = team_id
            self._cache.clear()

    async def viewer(self, client: AsyncWebClient, user_id: str) -> Viewer:
        hit = self._cache.get(user_id)
        if hit and self._clock() - hit[0] < self._ttl:
            return hit[1]
        try:
            response = await client.users_info(user=user_id)
            user = response.get("user") or {}
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error not in UNKNOWN_USER_ERRORS:
                raise
            log.info("users.info does not know %s (%s): no rights", user_id, error)
            user = {}
        viewer = viewer_of(user_id, user if isinstance(user, dict) else {}, self.team_id)
        self._cache[user_id] = (self._clock(), viewer)
        return viewer
