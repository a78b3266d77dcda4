"""Secrets as `<NAME>_FILE` (Docker and Kubernetes secrets): read from the file, never both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import FILE_SETTINGS, SettingsError, load_settings
from db.token_crypto import generate_key

REPO = Path(__file__).resolve().parents[2]
BOT = "xoxb-1111-2222-sEcReTbOtToKeN"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"


def secret_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n")  # as `echo value > file` writes it
    return str(path)


def test_settings_every_secret_is_accepted_from_a_file(tmp_path: Path) -> None:
    values = {
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_SIGNING_SECRET": SIGNING,
        "SLACK_APP_TOKEN": "xapp-1-A111-222-abc",
        "DATABASE_URL": "postgresql+asyncpg://app:pa55word@db:5432/backfill",
        "SLACK_CLIENT_SECRET": "client-secret-from-a-file",
        "TOKEN_ENCRYPTION_KEY": f"{generate_key()},{generate_key()}",
    }
    assert set(values) == set(FILE_SETTINGS)
    environ = {f"{k}_FILE": secret_file(tmp_path, k.lower(), v) for k, v in values.items()}
    s = load_settings(environ | {"SLACK_CLIENT_ID": "111.222"}, env_file=None)
    assert (s.slack_bot_token, s.slack_signing_secret, s.slack_app_token, s.database_url) == (
        values["SLACK_BOT_TOKEN"],
        values["SLACK_SIGNING_SECRET"],
        values["SLACK_APP_TOKEN"],
        values["DATABASE_URL"],
    )
    assert (s.slack_client_secret, s.token_encryption_key) == (
        values["SLACK_CLIENT_SECRET"],
        values["TOKEN_ENCRYPTION_KEY"],
    )
    assert s.multi_workspace


def test_settings_a_file_in_dotenv_counts_and_the_environment_still_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        f"SLACK_BOT_TOKEN_FILE={secret_file(tmp_path, 'bot', BOT)}\n"
        f"SLACK_SIGNING_SECRET={SIGNING}\n"
    )
    s = load_settings({}, env_file=env_file)
    assert s.slack_bot_token == BOT
    other = "xoxb-9999-8888-fromTheEnvironment"
    s = load_settings({"SLACK_BOT_TOKEN": other}, env_file=env_file)
    assert s.slack_bot_token == other


def test_settings_value_and_file_both_set_is_one_line(tmp_path: Path) -> None:
    environ = {"SLACK_BOT_TOKEN": BOT, "SLACK_BOT_TOKEN_FILE": secret_file(tmp_path, "bot", BOT)}
    with pytest.raises(SettingsError) as raised:
        load_settings(environ, env_file=None)
    message = str(raised.value)
    assert "SLACK_BOT_TOKEN_FILE" in message and "both set" in message
    assert "\n" not in message and BOT not in message


def test_settings_unreadable_file_names_the_setting_not_the_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"SLACK_SIGNING_SECRET_FILE": str(tmp_path / "missing")}, env_file=None)
    message = str(raised.value)
    assert message.startswith("Setting SLACK_SIGNING_SECRET_FILE names a file that cannot be read")
    assert "\n" not in message


def test_settings_a_secret_from_a_file_is_still_validated_without_echo(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "bot", "not-a-bot-token-but-secret")
    with pytest.raises(SettingsError) as raised:
        load_settings({"SLACK_BOT_TOKEN_FILE": path}, env_file=None)
    assert "SLACK_BOT_TOKEN" in str(raised.value)
    assert "not-a-bot-token-but-secret" not in str(raised.value)


def test_settings_both_set_stops_the_process_with_exit_2(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_BOT_TOKEN_FILE": secret_file(tmp_path, "bot", BOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,  # the exit code is what is tested
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SLACK_BOT_TOKEN_FILE" in lines[0] and BOT not in done.stderr
