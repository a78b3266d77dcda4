"""slack_sdk's store interfaces over our database, for Bolt's OAuth flow and `authorize`.

`InstallationStore` and `OAuthStateStore` translate between slack_sdk's `Installation`/`Bot` and
`db.installations` / `db.oauth_states`, one transaction per call. They live in `app/` because
`db/` never imports Slack code.

What differs from slack_sdk's own SQL stores, on purpose:
- tokens are Fernet-encrypted before they reach SQL (`db.token_crypto`);
- one row per workspace or org holds its current bot install; user tokens are never stored (the
  app asks for no user scope), so a lookup by another user than the installer finds nothing and
  Bolt falls back to the bot token, as it does with slack_sdk's stores;
- deleting (Bolt's `tokens_revoked` / `app_uninstalled` listeners) clears the tokens and marks
  the install `revoked` instead of dropping the row.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from logging import Logger
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import (
    Installation as SlackInstallation,
)
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.installations import find_installation, revoke_installation, save_installation
from db.oauth_states import consume_state, issue_state
from db.records import Installation
from db.token_crypto import TokenCipher

_LOG = logging.getLogger("backfill.oauth")

# `status_reason` of an install whose tokens Bolt's built-in listeners deleted.
REVOKED_BY_EVENT = "tokens_revoked"
UNINSTALLED = "app_uninstalled"


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def to_record(installation: SlackInstallation) -> Installation:
    """Our record of a slack_sdk `Installation` (its user token, if any, is dropped)."""
    return Installation(
        enterprise_id=installation.enterprise_id,
        team_id=installation.team_id,
        installer_user_id=installation.user_id,
        installed_at=_when(installation.installed_at) or datetime.now(UTC),
        is_enterprise_install=bool(installation.is_enterprise_install),
        enterprise_name=installation.enterprise_name,
        enterprise_url=installation.enterprise_url,
        team_name=installation.team_name,
        app_id=installation.app_id,
        bot_id=installation.bot_id,
        bot_user_id=installation.bot_user_id,
        bot_scopes=tuple(installation.bot_scopes or ()),
        token_type=installation.token_type,
        bot_token=installation.bot_token,
        bot_refresh_token=installation.bot_refresh_token,
        bot_token_expires_at=_when(installation.bot_token_expires_at),
    )


def to_slack_installation(record: Installation) -> SlackInstallation:
    return SlackInstallation(
        app_id=record.app_id,
        enterprise_id=record.enterprise_id,
        enterprise_name=record.enterprise_name,
        enterprise_url=record.enterprise_url,
        team_id=record.team_id,
        team_name=record.team_name,
        bot_token=record.bot_token,
        bot_id=record.bot_id,
        bot_user_id=record.bot_user_id,
        bot_scopes=list(record.bot_scopes),
        bot_refresh_token=record.bot_refresh_token,
        bot_token_expires_at=record.bot_token_expires_at,
        user_id=record.installer_user_id,
        is_enterprise_install=record.is_enterprise_install,
        token_type=record.token_type,
        installed_at=record.installed_at,
    )


class InstallationStore(AsyncInstallationStore):
    """slack_sdk's `AsyncInstallationStore` over `db.installations`, tokens encrypted with
    `cipher`. Pass it to Bolt's `AsyncOAuthSettings(installation_store=...)`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        *,
        logger: Logger = _LOG,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._logger = logger

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_save(self, installation: SlackInstallation) -> None:
        async with self._sessions.begin() as session:
            await save_installation(session, self._cipher, to_record(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        """Bolt saves a `Bot` after refreshing a token found by `async_find_bot`: the install's
        other fields (its installer) stay as stored."""
        async with self._sessions.begin() as session:
            known = await find_installation(
                session,
                self._cipher,
                enterprise_id=bot.enterprise_id,
                team_id=bot.team_id,
                is_enterprise_install=bot.is_enterprise_install,
                with_token=False,
            )
            team_id = None if bot.is_enterprise_install else bot.team_id
            same = known is not None and (known.enterprise_id, known.team_id) == (
                bot.enterprise_id,
                team_id,
            )
            record = Installation(
                enterprise_id=bot.enterprise_id,
                team_id=team_id,
                installer_user_id=known.installer_user_id if known and same else "",
                installed_at=_when(bot.installed_at) or datetime.now(UTC),
                is_enterprise_install=bool(bot.is_enterprise_install),
                enterprise_name=bot.enterprise_name,
                enterprise_url=known.enterprise_url if known and same else None,
                team_name=bot.team_name,
                app_id=bot.app_id,
                bot_id=bot.bot_id,
                bot_user_id=bot.bot_user_id,
                bot_scopes=tuple(bot.bot_scopes or ()),
                token_type=known.token_type if known and same else None,
                bot_token=bot.bot_token,
                bot_refresh_token=bot.bot_refresh_token,
                bot_token_expires_at=_when(bot.bot_token_expires_at),
            )
            await save_installation(session, self._cipher, record)

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> Installation | None:
        async with self._sessions() as session:
            return await find_installation(
                session,
                self._cipher,
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        record = await self._find(enterprise_id, team_id, is_enterprise_install)
        if record is None:
            return None
        return to_slack_installation(record).to_bot()

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> SlackInstallation | None:
        record = await self._find(enterprise_id, team_id, is_enterprise_install)
        if record is None or (user_id is not None and user_id != record.installer_user_id):
            return None
        return to_slack_installation(record)

    async def _revoke(self, enterprise_id: str | None, team_id: str | None, reason: str) -> None:
        async with self._sessions.begin() as session:
            await revoke_installation(
                session, enterprise_id=enterprise_id, team_id=team_id, reason=reason
            )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._revoke(enterprise_id, team_id, REVOKED_BY_EVENT)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        # A user's revoked token (`tokens_revoked` lists `oauth` user ids): we store none.
        if user_id is None:
            await self._revoke(enterprise_id, team_id, UNINSTALLED)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._revoke(enterprise_id, team_id, UNINSTALLED)


class OAuthStateStore(AsyncOAuthStateStore):
    """slack_sdk's `AsyncOAuthStateStore` over `db.oauth_states`: a state is valid for
    `expiration_seconds` and consumed at most once, across every process sharing the database.
    Pass `expiration_seconds` to Bolt's `AsyncOAuthSettings(state_expiration_seconds=...)` too,
    so the browser cookie lives as long."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        expiration_seconds: int = 600,
        logger: Logger = _LOG,
    ) -> None:
        self._sessions = sessions
        self.expiration_seconds = expiration_seconds
        self._logger = logger

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        async with self._sessions.begin() as session:
            return await issue_state(session, lifetime_s=self.expiration_seconds)

    async def async_consume(self, state: str) -> bool:
        async with self._sessions.begin() as session:
            return await consume_state(session, state)


__all__ = [
    "REVOKED_BY_EVENT",
    "UNINSTALLED",
    "InstallationStore",
    "OAuthStateStore",
    "to_record",
    "to_slack_installation",
]
