"""Queries for `oauth_states`: the one-time `state` values of the OAuth install flow.

`/slack/install` issues a state; `/slack/oauth_redirect` consumes it, once, before it expires.
Only a SHA-256 of each state is stored. Consuming is a single conditional DELETE, so two
redirects racing with the same state cannot both succeed, on either database.

Every function takes the `AsyncSession` first and never commits: callers own transactions.
Imports SQLAlchemy and `db.models` only.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import OAuthState, utcnow

_TABLE = cast(Table, OAuthState.__table__)
_C = _TABLE.c


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


async def issue_state(
    session: AsyncSession, *, lifetime_s: float, now: datetime | None = None
) -> str:
    """A new unguessable state valid for `lifetime_s` seconds. Expired states go at the same
    time, so the table holds only the installs in progress."""
    now = now or utcnow()
    await session.execute(delete(_TABLE).where(_C.expire_at <= now))
    state = secrets.token_urlsafe(32)
    expire_at = now + timedelta(seconds=lifetime_s)
    await session.execute(insert(_TABLE).values(state_hash=_hash(state), expire_at=expire_at))
    return state


async def consume_state(session: AsyncSession, state: str, *, now: datetime | None = None) -> bool:
    """Whether `state` was issued here and has not expired nor been consumed; it is gone after."""
    now = now or utcnow()
    result = await session.execute(
        delete(_TABLE).where(_C.state_hash == _hash(state), _C.expire_at > now)
    )
    return cast(CursorResult[tuple[()]], result).rowcount == 1


__all__ = ["consume_state", "issue_state"]
