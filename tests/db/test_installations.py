"""`db.installations` on SQLite and PostgreSQL: one current install per workspace or org, tokens
encrypted before SQL (raw dumps hold none), Enterprise Grid lookups, revocation, key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.installations import (
    find_installation,
    install_problem,
    list_installations,
    mark_needs_reinstall,
    mark_workspace_needs_reinstall,
    revoke_installation,
    rotate_keys,
    save_installation,
    verify_keys,
)
from db.messages import ensure_workspace
from db.models import SlackInstallation
from db.records import Installation
from db.token_crypto import TokenCipher, TokenDecryptError, generate_key
from tests.support.raw_dumps import dump_everything

Sessions = async_sessionmaker[AsyncSession]
KEY_A, KEY_B = generate_key(), generate_key()
INSTALLED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2025, 3, 2, 0, 0, tzinfo=UTC)


def bot_token(team: str) -> str:
    return f"xoxe.xoxb-1-{team}-plain-bot-token"


def refresh_token(team: str) -> str:
    return f"xoxe-1-{team}-plain-refresh-token"


def install(
    team_id: str | None, enterprise_id: str | None = None, *, org: bool = False, **kw: object
) -> Installation:
    name = team_id or enterprise_id or "x"
    values: dict[str, object] = {
        "enterprise_id": enterprise_id,
        "team_id": team_id,
        "installer_user_id": "U0INSTALLER",
        "installed_at": INSTALLED,
        "is_enterprise_install": org,
        "team_name": f"Team {name}",
        "app_id": "A0APP",
        "bot_id": "B0BOT",
        "bot_user_id": "U0BOT",
        "bot_scopes": ("channels:history", "chat:write"),
        "token_type": "bot",
        "bot_token": bot_token(name),
        "bot_refresh_token": refresh_token(name),
        "bot_token_expires_at": EXPIRES,
    }
    values |= kw
    return Installation(**values)  # type: ignore[arg-type]


async def save(sessions: Sessions, cipher: TokenCipher, *installs: Installation) -> None:
    async with sessions.begin() as session:
        for one in installs:
            await save_installation(session, cipher, one)


async def find(
    sessions: Sessions,
    cipher: TokenCipher,
    enterprise_id: str | None,
    team_id: str | None,
    *,
    org: bool = False,
    with_token: bool = True,
) -> Installation | None:
    async with sessions() as session:
        return await find_installation(
            session,
            cipher,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=org,
            with_token=with_token,
        )


async def row_count(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(SlackInstallation))
            ).scalar_one()
        )


async def test_installations_round_trip_keeps_every_field(sessions: Sessions) -> None:
    cipher = TokenCipher(KEY_A)
    saved = install("T1")
    await save(sessions, cipher, saved)
    found = await find(sessions, cipher, None, "T1")
    assert found == saved  # tokens, refresh token and expiry included
    assert found is not None and found.bot_token_expires_at == EXPIRES
    assert bot_token("T1") not in repr(found) and refresh_token("T1") not in repr(found)
    assert await find(sessions, cipher, None, "T2") is None


async def test_installations_reinstall_and_refresh_rewrite_the_one_row(sessions: Sessions) -> None:
    cipher = TokenCipher(KEY_A)
    await save(sessions, cipher, install("T1"))
    refreshed = install(
        "T1",
        bot_token="xoxe.xoxb-1-T1-second-token",
        bot_refresh_token="xoxe-1-T1-second-refresh",
        bot_token_expires_at=EXPIRES + timedelta(hours=12),
        bot_scopes=("chat:write",),
    )
    await save(sessions, cipher, refreshed)
    assert await row_count(sessions) == 1
    assert await find(sessions, cipher, None, "T1") == refreshed


async def test_installations_enterprise_org_install_serves_every_team_of_the_org(
    sessions: Sessions,
) -> None:
    cipher = TokenCipher(KEY_A)
    # Slack's oauth.v2.access for an org-wide install: no team, is_enterprise_install.
    org = install(None, "E1", org=True)
    await save(sessions, cipher, org)
    for team, is_org in (("T7", True), ("T7", False), ("T8", False), (None, True), (None, False)):
        found = await find(sessions, cipher, "E1", team, org=is_org)
        assert found == org, (team, is_org)
    assert await find(sessions, cipher, "E2", "T7") is None  # another org
    assert await find(sessions, cipher, None, "T7") is None  # not a Grid team

    # A workspace-level install inside the same org is that team's own, and wins for it.
    own = install("T8", "E1", bot_token="xoxe.xoxb-1-T8-own-token")
    await save(sessions, cipher, own)
    assert await find(sessions, cipher, "E1", "T8") == own
    assert await find(sessions, cipher, "E1", "T8", org=True) == org  # Bolt says org: the org's
    assert await find(sessions, cipher, "E1", "T7") == org
    assert await row_count(sessions) == 2


async def test_installations_org_install_saved_with_a_team_is_still_the_orgs(
    sessions: Sessions,
) -> None:
    cipher = TokenCipher(KEY_A)
    await save(sessions, cipher, install("T9", "E1", org=True))
    found = await find(sessions, cipher, "E1", "T3")
    assert found is not None and found.team_id is None and found.is_enterprise_install


async def test_installations_revoke_deletes_the_tokens_and_keeps_the_row(
    sessions: Sessions, database_url: str
) -> None:
    cipher = TokenCipher(KEY_A)
    await save(sessions, cipher, install("T1"), install("T2"), install(None, "E1", org=True))
    async with sessions.begin() as session:
        assert await revoke_installation(
            session, enterprise_id=None, team_id="T1", reason="app_uninstalled"
        )
        # A team of the org: the org install is the one serving it, so the one revoked.
        assert await revoke_installation(
            session, enterprise_id="E1", team_id="T5", reason="tokens_revoked"
        )
        assert not await revoke_installation(
            session, enterprise_id=None, team_id="T1", reason="again"
        )
    assert await find(sessions, cipher, None, "T1") is None
    assert await find(sessions, cipher, "E1", "T5") is None
    gone = await find(sessions, cipher, None, "T1", with_token=False)
    assert gone is not None and gone.status == "revoked" and gone.status_reason == "app_uninstalled"
    assert (gone.bot_token, gone.bot_refresh_token, gone.bot_token_expires_at) == (None, None, None)
    assert await find(sessions, cipher, None, "T2") == install("T2")  # the others unaffected

    dump = await dump_everything(database_url)
    for team in ("T1", "E1"):
        assert bot_token(team) not in dump and refresh_token(team) not in dump
    async with sessions() as session:
        listed = await list_installations(session, cipher)
        every = await list_installations(
            session, cipher, statuses=("active", "needs_reinstall", "revoked")
        )
    assert [i.team_id for i in listed] == ["T2"]
    assert {(i.enterprise_id, i.team_id, i.status) for i in every} == {
        (None, "T1", "revoked"),
        (None, "T2", "active"),
        ("E1", None, "revoked"),
    }


async def test_installations_needs_reinstall_is_a_status_with_a_reason(sessions: Sessions) -> None:
    cipher = TokenCipher(KEY_A)
    await save(sessions, cipher, install("T1"))
    async with sessions.begin() as session:
        assert await mark_needs_reinstall(
            session, enterprise_id=None, team_id="T1", reason="invalid_auth"
        )
        assert not await mark_needs_reinstall(
            session, enterprise_id=None, team_id="T404", reason="invalid_auth"
        )
    found = await find(sessions, cipher, None, "T1")
    assert found is not None and (found.status, found.status_reason) == (
        "needs_reinstall",
        "invalid_auth",
    )
    async with sessions() as session:
        assert await list_installations(session, cipher) == []
        assert len(await list_installations(session, cipher, statuses=("needs_reinstall",))) == 1
    await save(sessions, cipher, install("T1"))  # the admin reinstalls
    found = await find(sessions, cipher, None, "T1")
    assert found is not None and (found.status, found.status_reason) == ("active", None)


async def test_installations_a_refused_org_install_is_marked_for_its_workspaces(
    sessions: Sessions,
) -> None:
    """A run of a Grid workspace served by its organisation's org-wide install (background work
    knows the workspace only) marks that install, and App Home of every workspace it serves
    says so; a workspace with an install of its own is marked on its own."""
    cipher = TokenCipher(KEY_A)
    await save(sessions, cipher, install(None, "E1", org=True), install("T8", "E1"))
    async with sessions.begin() as session:
        for team in ("T7", "T9", "T8"):
            await ensure_workspace(session, team, f"Team {team}", enterprise_id="E1")
        await ensure_workspace(session, "T404", "Team T404")
    async with sessions.begin() as session:
        assert await mark_workspace_needs_reinstall(session, "T7", "token_revoked")
        assert not await mark_workspace_needs_reinstall(session, "T9", "token_revoked")  # marked
        assert not await mark_workspace_needs_reinstall(session, "T404", "invalid_auth")
    async with sessions() as session:
        assert await install_problem(session, "T7") == "token_revoked"
        assert await install_problem(session, "T9") == "token_revoked"  # the same org install
        assert await install_problem(session, "T8") is None  # its own install is fine
        assert await install_problem(session, "T404") is None
    org = await find(sessions, cipher, "E1", "T7")
    assert org is not None and org.is_enterprise_install and org.status == "needs_reinstall"
    async with sessions.begin() as session:
        assert await mark_workspace_needs_reinstall(session, "T8", "invalid_auth")
        assert not await mark_workspace_needs_reinstall(session, "T8", "invalid_auth")
    async with sessions() as session:
        assert await install_problem(session, "T8") == "invalid_auth"


async def test_installations_raw_dump_holds_no_token(sessions: Sessions, database_url: str) -> None:
    cipher = TokenCipher(KEY_A)
    installs = [install("T1"), install("T2", "E2"), install(None, "E1", org=True)]
    await save(sessions, cipher, *installs)
    dump = await dump_everything(database_url)
    assert "Team T1" in dump and "U0INSTALLER" in dump  # the dump is not vacuous
    for one in installs:
        assert one.bot_token is not None and one.bot_refresh_token is not None
        assert one.bot_token not in dump and one.bot_refresh_token not in dump
    assert "plain-bot-token" not in dump and "plain-refresh-token" not in dump
    assert KEY_A not in dump


async def test_installations_key_rotation_b_then_a_then_only_b(
    sessions: Sessions, database_url: str
) -> None:
    await save(sessions, TokenCipher(KEY_A), install("T1"), install(None, "E1", org=True))
    await save(sessions, TokenCipher(KEY_A), install("T2", bot_refresh_token=None))
    async with sessions.begin() as session:
        await revoke_installation(session, enterprise_id=None, team_id="T2", reason="gone")
    async with sessions.begin() as session:
        assert await rotate_keys(session, TokenCipher(f"{KEY_B},{KEY_A}")) == 2

    only_b = TokenCipher(KEY_B)
    assert await find(sessions, only_b, None, "T1") == install("T1")
    assert await find(sessions, only_b, "E1", "T4") == install(None, "E1", org=True)
    with pytest.raises(TokenDecryptError):
        await find(sessions, TokenCipher(KEY_A), None, "T1")
    dump = await dump_everything(database_url)
    assert bot_token("T1") not in dump and refresh_token("E1") not in dump


async def test_installations_rotation_with_a_wrong_key_changes_nothing(
    sessions: Sessions,
) -> None:
    await save(sessions, TokenCipher(KEY_A), install("T1"), install("T2"))
    with pytest.raises(TokenDecryptError) as err:
        async with sessions.begin() as session:
            await rotate_keys(session, TokenCipher(generate_key()))
    assert "TOKEN_ENCRYPTION_KEY" in str(err.value)
    assert await find(sessions, TokenCipher(KEY_A), None, "T2") == install("T2")

    # A key list that reads some tokens but not all changes nothing either.
    await save(sessions, TokenCipher(KEY_B), install("T3"))
    with pytest.raises(TokenDecryptError):
        async with sessions.begin() as session:
            await rotate_keys(session, TokenCipher(KEY_A))
    assert await find(sessions, TokenCipher(KEY_A), None, "T1") == install("T1")
    assert await find(sessions, TokenCipher(KEY_B), None, "T3") == install("T3")


async def test_installations_verify_keys_fails_on_a_key_that_reads_nothing(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        assert await verify_keys(session, TokenCipher(KEY_A)) == 0  # nothing stored yet
    await save(sessions, TokenCipher(KEY_A), install("T1"), install("T2"))
    async with sessions() as session:
        assert await verify_keys(session, TokenCipher(KEY_A)) == 2
        assert await verify_keys(session, TokenCipher(f"{KEY_B},{KEY_A}")) == 2
        with pytest.raises(TokenDecryptError) as err:
            await verify_keys(session, TokenCipher(KEY_B))
    assert "TOKEN_ENCRYPTION_KEY" in str(err.value) and "\n" not in str(err.value)
