"""Where the gateway's bot token comes from: fixed (one workspace, `SLACK_BOT_TOKEN`) or asked
for each call from the workspace's installation (many workspaces, `app.bot_tokens`), so a token
that rotates (Slack's 12-hour access tokens) is always the current one, also in a run that lasts
longer than one token.
"""

from __future__ import annotations

from typing import Protocol

from scheduler.backfill.errors import PermanentSlackError

# The error of a call for a workspace without a usable token: never installed, uninstalled, its
# tokens revoked, or marked as needing a reinstall. The run ends at once (`PermanentSlackError`).
NOT_INSTALLED = "not_installed"


class TokenSource(Protocol):
    """The bot token of one workspace."""

    async def current(self) -> str:
        """The token to call with now (refreshed first when it is about to expire). Raises
        `PermanentSlackError` when the workspace has no usable token (uninstalled, revoked)."""
        ...

    async def renew(self, rejected: str, error: str) -> str | None:
        """Slack refused `rejected` with `error` (`token_expired`, `invalid_auth`,
        `token_revoked`): a token to try instead (refreshed, or stored meanwhile by another
        process), or None when there is none (the call then fails as Slack said)."""
        ...


class BotTokens(Protocol):
    """The bot tokens of every workspace this process serves."""

    async def current(self, workspace_id: str) -> str: ...

    async def renew(self, workspace_id: str, rejected: str, error: str) -> str | None: ...

    def forget(self, workspace_id: str) -> None:
        """Drop what is held in memory for the workspace (its tokens were revoked)."""
        ...


class FixedToken:
    """One token that never changes (`SLACK_BOT_TOKEN`, tests, benchmarks)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "FixedToken(***)"  # never the token itself, in a log line or a traceback

    async def current(self) -> str:
        return self._token

    async def renew(self, rejected: str, error: str) -> str | None:
        return None


class WorkspaceToken:
    """`BotTokens` narrowed to one workspace: the `TokenSource` of that workspace's gateway."""

    def __init__(self, tokens: BotTokens, workspace_id: str) -> None:
        self._tokens = tokens
        self.workspace_id = workspace_id

    async def current(self) -> str:
        return await self._tokens.current(self.workspace_id)

    async def renew(self, rejected: str, error: str) -> str | None:
        return await self._tokens.renew(self.workspace_id, rejected, error)


class OneWorkspace:
    """`BotTokens` of a process that serves one workspace with one fixed token
    (`SLACK_BOT_TOKEN`): any other workspace has no token here."""

    def __init__(self, workspace_id: str, token: str) -> None:
        self.workspace_id = workspace_id
        self._token = token

    def __repr__(self) -> str:
        return f"OneWorkspace({self.workspace_id!r}, ***)"

    async def current(self, workspace_id: str) -> str:
        if workspace_id != self.workspace_id:
            raise PermanentSlackError(NOT_INSTALLED)
        return self._token

    async def renew(self, workspace_id: str, rejected: str, error: str) -> str | None:
        return None

    def forget(self, workspace_id: str) -> None:
        """Nothing to drop: the token is the setting's, and Slack refuses it once revoked."""
