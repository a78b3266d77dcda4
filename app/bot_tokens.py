"""The bot tokens of every installed workspace (multi-workspace mode): `InstalledBotTokens`, the
`scheduler.backfill.tokens.BotTokens` the gateways, DMs and Home updates of background work use.

Tokens are read from the installations table (decrypted on use, `db.installations`) and kept in
memory only while valid. With Slack's token rotation an access token lives 12 hours: it is
refreshed (slack_sdk's `AsyncTokenRotator`, `oauth.v2.access` with the refresh token) once it
expires within `refresh_before_minutes` (Bolt's own rule for requests, so both agree), and at
once when Slack answers `token_expired` anyway. A refresh token works once: one caller per
workspace refreshes at a time in this process, and a refresh lost to another process (its
refresh token already spent) takes the tokens that process saved.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.oauth_stores import InstallationStore, to_slack_installation
from db.installations import find_workspace_installation
from db.records import Installation
from db.token_crypto import TokenCipher
from scheduler.backfill.errors import PermanentSlackError, SlackUnavailable
from scheduler.backfill.gateway import TOKEN_EXPIRED
from scheduler.backfill.tokens import NOT_INSTALLED

log = logging.getLogger(__name__)

# Bolt's default (`AsyncOAuthSettings.token_rotation_expiration_minutes`).
REFRESH_BEFORE_MINUTES = 120
# A token held in memory is read again from the table this often: another process may have
# stored a new one meanwhile (a reinstall, a refresh) or deleted it (an uninstall).
HOLD_SECONDS = 300.0


@dataclass(frozen=True)
class _Held:
    token: str
    expires_at: float | None  # epoch seconds; None: the token does not expire
    read_at: float  # when it was read from the table (epoch seconds)

    def __repr__(self) -> str:
        return f"_Held(***, expires_at={self.expires_at})"


class InstalledBotTokens:
    """`BotTokens` from the installations table (see the module docstring)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: TokenCipher,
        rotator: AsyncTokenRotator,
        *,
        refresh_before_minutes: int = REFRESH_BEFORE_MINUTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._store = InstallationStore(sessions, cipher)
        self._rotator = rotator
        self._before_s = refresh_before_minutes * 60
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"InstalledBotTokens({len(self._held)} workspaces held)"

    def _lock(self, workspace_id: str) -> asyncio.Lock:
        return self._locks.setdefault(workspace_id, asyncio.Lock())

    def _expiring(self, held: _Held) -> bool:
        return held.expires_at is not None and held.expires_at <= self._clock() + self._before_s

    def _stale(self, held: _Held) -> bool:
        return self._expiring(held) or held.read_at + HOLD_SECONDS <= self._clock()

    async def current(self, workspace_id: str) -> str:
        async with self._lock(workspace_id):
            held = self._held.get(workspace_id)
            if held is None or self._stale(held):
                held = await self._fresh(workspace_id, rejected=None, expired=False)
            return held.token

    async def renew(self, workspace_id: str, rejected: str, error: str) -> str | None:
        """Slack refused `rejected` with `error`: the stored token when another process saved
        a new one (a reinstall, a refresh); for `token_expired`, a refreshed one."""
        async with self._lock(workspace_id):
            held = self._held.get(workspace_id)
            if held is not None and held.token != rejected:
                return held.token  # renewed meanwhile by another call of this workspace
            held = await self._fresh(
                workspace_id, rejected=rejected, expired=error == TOKEN_EXPIRED
            )
            return held.token if held.token != rejected else None

    def forget(self, workspace_id: str) -> None:
        """Drop what is held for the workspace (uninstalled, revoked, reinstalled)."""
        self._held.pop(workspace_id, None)

    async def _load(self, workspace_id: str) -> Installation:
        async with self._sessions() as session:
            record = await find_workspace_installation(session, self._cipher, workspace_id)
        if record is None or record.status != "active" or not record.bot_token:
            self._held.pop(workspace_id, None)
            raise PermanentSlackError(NOT_INSTALLED)
        return record

    async def _fresh(self, workspace_id: str, *, rejected: str | None, expired: bool) -> _Held:
        """The stored token, refreshed first when it expires soon or Slack said it `expired`."""
        record = await self._load(workspace_id)
        held = _held_of(record, self._clock())
        if rejected is not None and held.token != rejected:
            pass  # another process stored a new one already: it is the one to use
        elif record.bot_refresh_token is not None and (expired or self._expiring(held)):
            held = await self._refresh(workspace_id, record, held, force=expired)
        self._held[workspace_id] = held
        return held

    async def _refresh(
        self, workspace_id: str, record: Installation, held: _Held, *, force: bool
    ) -> _Held:
        bot = to_slack_installation(record).to_bot()
        minutes = self._before_s // 60
        if force and held.expires_at is not None:
            # The rotator refreshes only a token it sees expiring: Slack's word that it expired
            # counts, whatever the stored expiry says.
            minutes = max(minutes, math.ceil((held.expires_at - self._clock()) / 60) + 1)
        try:
            rotated = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=int(minutes)
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Slack could not be reached: a token that still works is used meanwhile.
            if not force and held.expires_at is not None and held.expires_at > self._clock():
                log.info("workspace %s: token refresh postponed (%s)", workspace_id, exc)
                return held
            raise SlackUnavailable(type(exc).__name__, method="oauth.v2.access") from None
        except SlackTokenRotationError as exc:
            again = await self._load(workspace_id)
            if again.bot_token != record.bot_token:
                return _held_of(again, self._clock())  # another process refreshed it first
            error = exc.api_error.response.get("error") if exc.api_error is not None else None
            log.warning("workspace %s: Slack refused the token refresh (%s)", workspace_id, error)
            raise PermanentSlackError(str(error or "invalid_refresh_token")) from None
        if rotated is None or not rotated.bot_token:
            return held
        await self._store.async_save_bot(rotated)
        expires = rotated.bot_token_expires_at
        log.info("workspace %s: bot token refreshed", workspace_id)
        return _Held(
            rotated.bot_token, float(expires) if expires is not None else None, self._clock()
        )


def _held_of(record: Installation, now: float) -> _Held:
    assert record.bot_token is not None
    expires = record.bot_token_expires_at
    return _Held(record.bot_token, expires.timestamp() if expires is not None else None, now)
