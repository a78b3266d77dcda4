"""`InstalledWorkspaces`: the workspaces a multi-workspace process serves (`handlers.deps.
ServedWorkspaces`). Bolt's `authorize` has already let the request through (the workspace
installed the app and its install holds a token: `app.oauth_stores`), so a workspace gets its
listeners' deps on its first request, and its row in `workspaces` (schedules, runs and messages
name it) with the name its install gave.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.services import WorkspaceDeps
from blocks.replies import Reply, not_installed_reply
from db.installations import find_workspace_installation
from db.messages import ensure_workspace
from db.token_crypto import TokenCipher
from handlers.deps import Deps


class InstalledWorkspaces:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        workspaces: WorkspaceDeps,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._workspaces = workspaces
        self._lock = asyncio.Lock()

    async def deps_for(self, team_id: str, enterprise_id: str | None = None) -> Deps | None:
        deps = self._workspaces.made(team_id)
        if deps is not None:
            return deps
        async with self._lock:
            if self._workspaces.made(team_id) is None:
                async with self._sessions.begin() as session:
                    found = await find_workspace_installation(session, self._cipher, team_id)
                    # An org-wide install names no workspace: its id stands in for the name.
                    name = found.team_name if found is not None and found.team_name else team_id
                    # Its organisation: a scheduled run finds an org-wide install through it.
                    await ensure_workspace(session, team_id, name, enterprise_id=enterprise_id)
            return self._workspaces.for_workspace(team_id)

    def refusal(self) -> Reply:
        return not_installed_reply()
