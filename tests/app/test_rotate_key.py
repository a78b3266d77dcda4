"""`python -m app rotate-key` as a process, on SQLite and PostgreSQL: installs encrypted under key
A, rotated with "B,A", then readable with "B" alone; a wrong key fails with one line and changes
nothing; outside multi-workspace mode it is a settings error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.settings import ACCEPTED
from db.installations import find_installation, revoke_installation, save_installation
from db.records import Installation
from db.token_crypto import TokenCipher, TokenDecryptError, generate_key
from tests.support.raw_dumps import dump_everything

REPO = Path(__file__).resolve().parents[2]
CLIENT_SECRET = "client-secret-of-the-rotate-test-77"
KEY_A, KEY_B, KEY_C = generate_key(), generate_key(), generate_key()
INFO_LOG = re.compile(r"^\d{4}-\d\d-\d\d \S+ INFO ")
TEAMS = ("T1", "T2", "T3")


def installation(team: str) -> Installation:
    return Installation(
        enterprise_id=None,
        team_id=team,
        installer_user_id="U0ADMIN",
        installed_at=datetime(2025, 3, 1, tzinfo=UTC),
        bot_user_id="U0BOT",
        bot_scopes=("chat:write",),
        bot_token=f"xoxe.xoxb-{team}-rotate-test-token",
        bot_refresh_token=f"xoxe-1-{team}-rotate-test-refresh",
    )


def rotate_key(tmp_path: Path, database_url: str, keys: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ACCEPTED}
    env |= {
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database_url,
        "SLACK_CLIENT_ID": "111.222",
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "TOKEN_ENCRYPTION_KEY": keys,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "rotate-key"],
        cwd=tmp_path,  # no stray .env
        env=env,
        capture_output=True,
        check=False,  # the exit code is what is tested
        text=True,
        timeout=120,
    )


async def all_readable(sessions: async_sessionmaker[AsyncSession], keys: str) -> bool:
    async with sessions() as session:
        for team in TEAMS[:2]:
            found = await find_installation(
                session, TokenCipher(keys), enterprise_id=None, team_id=team
            )
            if found != installation(team):
                return False
    return True


async def test_rotate_key_process_reencrypts_under_the_first_key(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    async with sessions.begin() as session:
        for team in TEAMS:
            await save_installation(session, TokenCipher(KEY_A), installation(team))
        # An uninstalled workspace holds no token: nothing of it to re-encrypt.
        await revoke_installation(session, enterprise_id=None, team_id="T3", reason="gone")

    done = rotate_key(tmp_path, database_url, f"{KEY_B},{KEY_A}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "backfill: re-encrypted the tokens of 2 installation(s) with the first key"
    ]
    assert await all_readable(sessions, KEY_B)
    with pytest.raises(TokenDecryptError):
        await all_readable(sessions, KEY_A)
    dump = await dump_everything(database_url)
    assert "rotate-test-token" not in dump and "rotate-test-refresh" not in dump
    assert CLIENT_SECRET not in dump and KEY_A not in dump and KEY_B not in dump

    # Running it again with B alone is harmless.
    again = rotate_key(tmp_path, database_url, KEY_B)
    assert again.returncode == 0, again.stderr
    assert await all_readable(sessions, KEY_B)


async def test_rotate_key_process_with_a_wrong_key_fails_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    async with sessions.begin() as session:
        for team in TEAMS[:2]:
            await save_installation(session, TokenCipher(KEY_A), installation(team))
    before = await dump_everything_rows(database_url)

    done = rotate_key(tmp_path, database_url, f"{KEY_C}")
    assert done.returncode == 1
    # Besides the INFO log lines of the migration (LOG_LEVEL=INFO), one line says what failed.
    lines = [line for line in done.stderr.strip().splitlines() if not INFO_LOG.match(line)]
    assert len(lines) == 1, done.stderr
    assert "TOKEN_ENCRYPTION_KEY" in lines[0] and "nothing was changed" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    for secret in (KEY_A, KEY_C, CLIENT_SECRET, "rotate-test-token"):
        assert secret not in done.stderr
    assert await dump_everything_rows(database_url) == before
    assert await all_readable(sessions, KEY_A)


async def dump_everything_rows(database_url: str) -> str:
    """The rows only (the SQLite file's bytes change with any checkpoint)."""
    dump = await dump_everything(database_url)
    rows = [
        line
        for line in dump.splitlines()
        if line.startswith(("installations: [", "public.installations: ["))
    ]
    assert len(rows) == 1
    return rows[0]


def test_rotate_key_needs_multi_workspace_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ACCEPTED}
    env |= {"PYTHONPATH": str(REPO), "TOKEN_ENCRYPTION_KEY": KEY_A}
    done = subprocess.run(
        [sys.executable, "-m", "app", "rotate-key"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SLACK_CLIENT_ID" in lines[0] and KEY_A not in done.stderr
