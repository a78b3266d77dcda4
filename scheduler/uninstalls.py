"""What happens when a workspace removes the app (`app_uninstalled`) or revokes its bot token
(`tokens_revoked`): its tokens are deleted (the install's row stays, marked `revoked`), its
schedule pauses, saying why, and its running run stops at its next Slack call, which has no token
any more (`not_installed`, or Slack's `token_revoked` in a process still holding it), with that
reason in its status and DM. Its stored data stays until an admin of a later install removes it
(`/backfill purge`).
"""

from __future__ import annotations

import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import runs as runs_repo
from db.installations import revoke_installation
from scheduler.backfill.tokens import BotTokens
from scheduler.cron import ScheduleError
from scheduler.schedules import ScheduleService

log = logging.getLogger(__name__)

PAUSED_BY_UNINSTALL = (
    "The app was uninstalled from this workspace (or its token revoked): the schedule is paused. "
    "Reinstall the app, then resume it."
)


class Uninstalls:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        schedules: ScheduleService,
        tokens: BotTokens,
    ) -> None:
        self._sessions = sessions
        self._schedules = schedules
        self._tokens = tokens

    async def removed(self, team_id: str, enterprise_id: str | None, reason: str) -> None:
        """The app's bot token in `team_id` is gone (`reason`: the event's type)."""
        async with self._sessions.begin() as session:
            revoked = await revoke_installation(
                session, enterprise_id=enterprise_id, team_id=team_id, reason=reason
            )
        self._tokens.forget(team_id)
        with contextlib.suppress(ScheduleError):  # no schedule, or paused already
            await self._schedules.pause(team_id)
        async with self._sessions.begin() as session:  # a no-op without a schedule
            await runs_repo.set_paused_reason(session, team_id, PAUSED_BY_UNINSTALL)
        log.warning(
            "workspace %s: %s; tokens %s, schedule paused",
            team_id,
            reason,
            "deleted" if revoked else "already gone",
        )
