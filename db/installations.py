"""Queries for `installations`: each workspace's (or Enterprise Grid org's) current bot install,
its tokens encrypted before they reach SQL and decrypted only on the way out.

Lookups follow slack_sdk's installation stores, which Bolt's `authorize` expects: an org-wide
install (`is_enterprise_install`) is stored under (enterprise_id, no team) and found for any team
of its org; a request from a team of an org finds the team's own install first, then the org's.
Revocation and uninstall clear the tokens and keep the row (status `revoked`), so "installed?"
and "why not?" stay answerable without holding anything secret.

Every function takes the `AsyncSession` first and never commits: callers own transactions.
Imports SQLAlchemy, `db.models`, `db.records` and `db.token_crypto` only; never Slack code (the
slack_sdk store interface is adapted in `app/oauth_stores.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from db.messages import workspace_enterprise
from db.models import SlackInstallation, utcnow
from db.records import Installation
from db.token_crypto import TokenCipher

_TABLE = cast(Table, SlackInstallation.__table__)
_C = _TABLE.c


def install_key(enterprise_id: str | None, team_id: str | None) -> str:
    """The row key of the install of (enterprise_id, team_id); either may be absent."""
    return f"{enterprise_id or ''}:{team_id or ''}"


def _candidate_keys(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> list[str]:
    """The rows that may serve a request, best first (slack_sdk's rule, plus the org fallback)."""
    if is_enterprise_install or team_id is None:
        return [install_key(enterprise_id, None)]
    keys = [install_key(enterprise_id, team_id)]
    if enterprise_id is not None:
        keys.append(install_key(enterprise_id, None))
    return keys


def _insert_for(session: AsyncSession) -> Callable[[Any], Any]:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"upserts are written for PostgreSQL and SQLite, not {name}")


def _decrypted(cipher: TokenCipher, stored: str | None) -> str | None:
    return None if stored is None else cipher.decrypt(stored)


def _encrypted(cipher: TokenCipher, token: str | None) -> str | None:
    return None if token is None else cipher.encrypt(token)


def _from_row(row: Any, cipher: TokenCipher) -> Installation:
    return Installation(
        enterprise_id=row.enterprise_id,
        team_id=row.team_id,
        installer_user_id=row.installer_user_id,
        installed_at=row.installed_at,
        is_enterprise_install=bool(row.is_enterprise_install),
        enterprise_name=row.enterprise_name,
        enterprise_url=row.enterprise_url,
        team_name=row.team_name,
        app_id=row.app_id,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=tuple(s for s in (row.bot_scopes or "").split(",") if s),
        token_type=row.token_type,
        bot_token=_decrypted(cipher, row.bot_token_encrypted),
        bot_refresh_token=_decrypted(cipher, row.bot_refresh_token_encrypted),
        bot_token_expires_at=row.bot_token_expires_at,
        status=row.status,
        status_reason=row.status_reason,
    )


async def save_installation(
    session: AsyncSession,
    cipher: TokenCipher,
    installation: Installation,
    *,
    now: datetime | None = None,
) -> None:
    """Store `installation` as the current install of its workspace or org, replacing any
    earlier one (a reinstall, or Bolt saving refreshed tokens). The row becomes `active`."""
    team_id = None if installation.is_enterprise_install else installation.team_id
    now = now or utcnow()
    values: dict[str, Any] = {
        "enterprise_id": installation.enterprise_id,
        "enterprise_name": installation.enterprise_name,
        "enterprise_url": installation.enterprise_url,
        "team_id": team_id,
        "team_name": installation.team_name,
        "is_enterprise_install": installation.is_enterprise_install,
        "app_id": installation.app_id,
        "bot_id": installation.bot_id,
        "bot_user_id": installation.bot_user_id,
        "bot_scopes": ",".join(installation.bot_scopes),
        "installer_user_id": installation.installer_user_id,
        "token_type": installation.token_type,
        "bot_token_encrypted": _encrypted(cipher, installation.bot_token),
        "bot_refresh_token_encrypted": _encrypted(cipher, installation.bot_refresh_token),
        "bot_token_expires_at": installation.bot_token_expires_at,
        "installed_at": installation.installed_at,
        "status": "active",
        "status_reason": None,
        "updated_at": now,
    }
    key = install_key(installation.enterprise_id, team_id)
    stmt = _insert_for(session)(_TABLE).values(install_key=key, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=[_C.install_key], set_=values))


async def _rows(
    session: AsyncSession, keys: Sequence[str], *, with_token: bool, for_update: bool = False
) -> dict[str, Any]:
    stmt = select(_TABLE).where(_C.install_key.in_(keys))
    if with_token:
        stmt = stmt.where(_C.bot_token_encrypted.is_not(None))
    if for_update:
        stmt = stmt.with_for_update()  # PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises
    return {row.install_key: row for row in (await session.execute(stmt)).all()}


async def find_installation(
    session: AsyncSession,
    cipher: TokenCipher,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool | None = False,
    with_token: bool = True,
) -> Installation | None:
    """The install serving (enterprise_id, team_id), tokens decrypted; None when there is none.

    `with_token=False` also finds a revoked install (for saying why a workspace is refused).
    Raises `TokenDecryptError` when the stored token was encrypted with a key no longer held."""
    keys = _candidate_keys(enterprise_id, team_id, is_enterprise_install)
    rows = await _rows(session, keys, with_token=with_token)
    for key in keys:
        if key in rows:
            return _from_row(rows[key], cipher)
    return None


async def find_workspace_installation(
    session: AsyncSession, cipher: TokenCipher, team_id: str
) -> Installation | None:
    """The install serving workspace `team_id` for background work (`_serving_install_key`),
    tokens decrypted."""
    key = await _serving_install_key(session, team_id)
    if key is None:
        return None
    stmt = select(_TABLE).where(_C.install_key == key, _C.bot_token_encrypted.is_not(None))
    row = (await session.execute(stmt)).first()
    return None if row is None else _from_row(row, cipher)


async def _serving_install_key(session: AsyncSession, team_id: str) -> str | None:
    """The key of the install serving workspace `team_id` for background work, which knows the
    workspace and not always its enterprise: its own install holding a token (within a Grid
    organisation or not), else its organisation's org-wide one (`_org_install_key`)."""
    own = (
        select(_C.install_key)
        .where(_C.team_id == team_id, _C.bot_token_encrypted.is_not(None))
        .order_by(_C.updated_at.desc())
        .limit(1)
    )
    key = (await session.execute(own)).scalar_one_or_none()
    return key if key is not None else await _org_install_key(session, team_id)


async def _org_install_key(session: AsyncSession, team_id: str) -> str | None:
    """The key of the org-wide install that would serve workspace `team_id`: that of the
    Grid organisation its verified requests named, else None."""
    enterprise = await workspace_enterprise(session, team_id)
    return None if enterprise is None else install_key(enterprise, None)


async def install_problem(session: AsyncSession, team_id: str) -> str | None:
    """Why the install serving workspace `team_id` needs a reinstall (the Slack error that said
    so), or None: usable, or no install at all (one workspace's `SLACK_BOT_TOKEN`). The
    workspace's own install, else its organisation's org-wide one."""
    stmt = (
        select(_C.status, _C.status_reason)
        .where(_C.team_id == team_id)
        .order_by(_C.updated_at.desc())
        .limit(1)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        org_key = await _org_install_key(session, team_id)
        if org_key is not None:
            org = select(_C.status, _C.status_reason).where(_C.install_key == org_key)
            row = (await session.execute(org)).first()
    if row is None or row.status == "active":
        return None
    return str(row.status_reason or row.status)


async def list_installations(
    session: AsyncSession, cipher: TokenCipher, *, statuses: Iterable[str] = ("active",)
) -> list[Installation]:
    """Every install whose status is among `statuses` (default: the working ones), tokens
    decrypted, ordered by enterprise then team."""
    stmt = (
        select(_TABLE)
        .where(_C.status.in_(tuple(statuses)))
        .order_by(_C.enterprise_id, _C.team_id, _C.install_key)
    )
    return [_from_row(row, cipher) for row in (await session.execute(stmt)).all()]


async def _set_status(
    session: AsyncSession,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    is_enterprise_install: bool | None,
    values: dict[str, Any],
    now: datetime | None,
) -> bool:
    # Only an install holding a token serves the team, so only that one changes status.
    keys = _candidate_keys(enterprise_id, team_id, is_enterprise_install)
    rows = await _rows(session, keys, with_token=True)
    key = next((k for k in keys if k in rows), None)
    if key is None:
        return False
    await session.execute(
        update(_TABLE).where(_C.install_key == key).values(updated_at=now or utcnow(), **values)
    )
    return True


async def mark_needs_reinstall(
    session: AsyncSession,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    reason: str,
    is_enterprise_install: bool | None = False,
    now: datetime | None = None,
) -> bool:
    """Mark the install serving (enterprise_id, team_id) as needing a reinstall (Slack answered
    `invalid_auth`, `token_revoked`...), with `reason` to show. Tokens are kept: only a new
    install (or `revoke_installation`) replaces them. Whether an install holding a token was
    found."""
    return await _set_status(
        session,
        enterprise_id=enterprise_id,
        team_id=team_id,
        is_enterprise_install=is_enterprise_install,
        values={"status": "needs_reinstall", "status_reason": reason},
        now=now,
    )


async def mark_workspace_needs_reinstall(
    session: AsyncSession, team_id: str, reason: str, *, now: datetime | None = None
) -> bool:
    """`mark_needs_reinstall` for background work, which knows the workspace but not always its
    enterprise: the install serving it (`_serving_install_key`: its own holding a token, else
    its organisation's org-wide one). Whether it was marked now (not: none serves it, as in a
    process on `SLACK_BOT_TOKEN`, or it was marked already)."""
    key = await _serving_install_key(session, team_id)
    if key is None:
        return False
    stmt = (
        update(_TABLE)
        .where(_C.install_key == key, _C.bot_token_encrypted.is_not(None), _C.status == "active")
        .values(status="needs_reinstall", status_reason=reason, updated_at=now or utcnow())
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def revoke_installation(
    session: AsyncSession,
    *,
    enterprise_id: str | None,
    team_id: str | None,
    reason: str,
    is_enterprise_install: bool | None = False,
    now: datetime | None = None,
) -> bool:
    """Delete the tokens of the install serving (enterprise_id, team_id) (`app_uninstalled`,
    `tokens_revoked`) and mark it `revoked`; the row stays, without anything secret. Whether an
    install holding a token was found (False: nothing left to revoke)."""
    return await _set_status(
        session,
        enterprise_id=enterprise_id,
        team_id=team_id,
        is_enterprise_install=is_enterprise_install,
        values={
            "status": "revoked",
            "status_reason": reason,
            "bot_token_encrypted": None,
            "bot_refresh_token_encrypted": None,
            "bot_token_expires_at": None,
        },
        now=now,
    )


async def rotate_keys(session: AsyncSession, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token under the cipher's first key; how many installs hold one.

    All or nothing: a token no key of the cipher decrypts raises `TokenDecryptError` before
    anything is written, so the caller's transaction rolls back with every row as it was."""
    stmt = select(_C.install_key, _C.bot_token_encrypted, _C.bot_refresh_token_encrypted).where(
        _C.bot_token_encrypted.is_not(None) | _C.bot_refresh_token_encrypted.is_not(None)
    )
    # Locked so that a token refresh saved meanwhile by a running app is not overwritten.
    rows = (await session.execute(stmt.with_for_update())).all()
    rotated = [
        {
            "key": row.install_key,
            "bot_token_encrypted": _rotated(cipher, row.bot_token_encrypted),
            "bot_refresh_token_encrypted": _rotated(cipher, row.bot_refresh_token_encrypted),
        }
        for row in rows
    ]
    for values in rotated:
        key = values.pop("key")
        await session.execute(update(_TABLE).where(_C.install_key == key).values(**values))
    return len(rotated)


async def verify_keys(session: AsyncSession, cipher: TokenCipher) -> int:
    """Decrypt every stored token (and drop the results): how many installs hold one. Raises
    `TokenDecryptError` when one does not decrypt, so that a start with a wrong
    TOKEN_ENCRYPTION_KEY fails at once instead of at a workspace's next request."""
    stmt = select(_C.bot_token_encrypted, _C.bot_refresh_token_encrypted).where(
        _C.bot_token_encrypted.is_not(None) | _C.bot_refresh_token_encrypted.is_not(None)
    )
    rows = (await session.execute(stmt)).all()
    for row in rows:
        _decrypted(cipher, row.bot_token_encrypted)
        _decrypted(cipher, row.bot_refresh_token_encrypted)
    return len(rows)


def _rotated(cipher: TokenCipher, stored: str | None) -> str | None:
    return None if stored is None else cipher.rotate(stored)


__all__ = [
    "find_installation",
    "install_key",
    "list_installations",
    "mark_needs_reinstall",
    "revoke_installation",
    "rotate_keys",
    "save_installation",
    "verify_keys",
]
