"""Settings: defaults, precedence of the environment over `.env`, and one-line errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import EXIT_SETTINGS, main, secrets_of
from app.settings import ACCEPTED, SettingsError, load_settings
from db.token_crypto import generate_key

REPO = Path(__file__).resolve().parents[2]
BOT = "xoxb-1111-2222-sEcReTbOtToKeN"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "c1i3nt-s3cr3t-never-shown-42"
KEY = generate_key()
OAUTH = {"SLACK_CLIENT_ID": CLIENT_ID, "SLACK_CLIENT_SECRET": CLIENT_SECRET}


def test_settings_defaults_match_the_contract(tmp_path: Path) -> None:
    s = load_settings({}, env_file=tmp_path / "none.env")
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.port == 3000
    assert s.database_url == "sqlite+aiosqlite:///./data/backfill.db"
    assert s.chroma_path == "./data/chroma" and s.chroma_url is None
    assert s.embedding == "default"
    assert s.members_can_run is True and s.auto_join is True and s.include_bots is False
    assert s.slack_rate_profile == "internal"
    assert (s.min_text_chars, s.thread_lookback_days) == (8, 14)
    assert (s.run_concurrency, s.run_retries) == (2, 2)
    assert s.log_level == "INFO"
    assert set(ACCEPTED) >= {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "PORT",
        "DATABASE_URL",
        "CHROMA_PATH",
        "EMBEDDING",
        "MEMBERS_CAN_RUN",
        "SLACK_RATE_PROFILE",
        "AUTO_JOIN",
        "INCLUDE_BOTS",
        "MIN_TEXT_CHARS",
        "THREAD_LOOKBACK_DAYS",
        "RUN_CONCURRENCY",
        "RUN_RETRIES",
        "LOG_LEVEL",
    }


def test_settings_environment_wins_over_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("PORT=4000\nEMBEDDING=hashing\nMIN_TEXT_CHARS=3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "5000")
    s = load_settings()
    assert s.port == 5000  # real environment
    assert s.embedding == "hashing" and s.min_text_chars == 3  # from .env


def test_settings_socket_mode_needs_no_signing_secret(tmp_path: Path) -> None:
    s = load_settings(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": "xapp-1-A1-123-abc"},
        env_file=tmp_path / "none.env",
    )
    assert s.socket_mode
    s.require_for_run()


def test_settings_blank_app_token_means_http_mode(tmp_path: Path) -> None:
    s = load_settings(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": " ", "SLACK_SIGNING_SECRET": SIGNING},
        env_file=tmp_path / "none.env",
    )
    assert not s.socket_mode
    s.require_for_run()


def test_settings_api_url_gets_trailing_slash(tmp_path: Path) -> None:
    s = load_settings({"SLACK_API_URL": "http://127.0.0.1:9/api"}, env_file=tmp_path / "n.env")
    assert s.slack_api_url == "http://127.0.0.1:9/api/"


# (environment, command, setting named in the error, text that must never be shown)
BAD_SETTINGS = [
    ({}, "run", "SLACK_BOT_TOKEN", None),
    ({"SLACK_BOT_TOKEN": BOT}, "run", "SLACK_SIGNING_SECRET", BOT),
    (
        {"SLACK_BOT_TOKEN": "xoxp-user-token-not-a-bot-9999"},
        "run",
        "SLACK_BOT_TOKEN",
        "xoxp-user-token-not-a-bot-9999",
    ),
    (
        {"SLACK_APP_TOKEN": "not-an-app-token-123456"},
        "migrate",
        "SLACK_APP_TOKEN",
        "not-an-app-token-123456",
    ),
    (
        {"DATABASE_URL": "postgresql://admin:hunter2pass@db:5432/x"},
        "migrate",
        "DATABASE_URL",
        "hunter2pass",
    ),
    ({"DATABASE_URL": "mysql://u@h/db"}, "migrate", "DATABASE_URL", None),
    ({"DATABASE_URL": "not a url"}, "migrate", "DATABASE_URL", None),
    ({"CHROMA_URL": "ftp://chroma:8000"}, "migrate", "CHROMA_URL", None),
    ({"CHROMA_URL": "localhost8000"}, "migrate", "CHROMA_URL", None),
    ({"PORT": "abc"}, "migrate", "PORT", None),
    ({"PORT": "70000"}, "migrate", "PORT", None),
    ({"PORT": "0"}, "migrate", "PORT", None),
    ({"EMBEDDING": "openai"}, "migrate", "EMBEDDING", None),
    ({"SLACK_RATE_PROFILE": "fast"}, "migrate", "SLACK_RATE_PROFILE", None),
    ({"AUTO_JOIN": "perhaps"}, "migrate", "AUTO_JOIN", None),
    ({"MIN_TEXT_CHARS": "-1"}, "migrate", "MIN_TEXT_CHARS", None),
    ({"RUN_CONCURRENCY": "0"}, "migrate", "RUN_CONCURRENCY", None),
    ({"LOG_LEVEL": "chatty"}, "migrate", "LOG_LEVEL", None),
    ({"SLACK_API_URL": "slack.com/api"}, "migrate", "SLACK_API_URL", None),
    # Multi-workspace mode: both client settings, and then a Fernet key.
    ({"SLACK_CLIENT_ID": CLIENT_ID}, "migrate", "SLACK_CLIENT_SECRET", None),
    ({"SLACK_CLIENT_SECRET": CLIENT_SECRET}, "run", "SLACK_CLIENT_ID", CLIENT_SECRET),
    (OAUTH, "migrate", "TOKEN_ENCRYPTION_KEY", CLIENT_SECRET),
    (
        OAUTH | {"TOKEN_ENCRYPTION_KEY": "not-a-fernet-key-1234"},
        "run",
        "TOKEN_ENCRYPTION_KEY",
        "not-a-fernet-key-1234",
    ),
    (
        OAUTH | {"TOKEN_ENCRYPTION_KEY": f"{KEY},second-bad-key-5678"},
        "migrate",
        "TOKEN_ENCRYPTION_KEY",
        "second-bad-key-5678",
    ),
    (OAUTH | {"TOKEN_ENCRYPTION_KEY": KEY}, "run", "SLACK_SIGNING_SECRET", KEY),
    ({"TOKEN_ENCRYPTION_KEY": KEY}, "rotate-key", "SLACK_CLIENT_ID", KEY),
]


@pytest.mark.parametrize(("env", "command", "setting", "hidden"), BAD_SETTINGS)
def test_settings_error_is_one_line_and_exit_2(
    env: dict[str, str],
    command: str,
    setting: str,
    hidden: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([command]) == EXIT_SETTINGS
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert setting in lines[0] and "accepted" in lines[0]
    assert "Traceback" not in err
    if hidden:
        assert hidden not in err


def test_settings_error_names_the_bad_value_when_it_is_not_secret(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"PORT": "abc"}, env_file=tmp_path / "n.env")
    assert "'abc'" in str(err.value) and "1 to 65535" in str(err.value)


def test_settings_error_from_a_real_process_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://me:pw-in-dotenv@h/db\n")
    env = {k: v for k, v in os.environ.items() if k not in ACCEPTED}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        check=False,  # the exit code is what is tested
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "DATABASE_URL" in proc.stderr
    assert "pw-in-dotenv" not in proc.stderr and "Traceback" not in proc.stderr


def test_settings_unreachable_chroma_server_is_one_line_and_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.servers import free_port

    monkeypatch.chdir(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-never-shown",
        "SLACK_SIGNING_SECRET": "s3cret",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/b.db",
        "CHROMA_URL": url,
        "LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["run"]) == 1
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert url in lines[0] and "CHROMA_URL" in lines[0] and "Traceback" not in err
    assert "xoxb-never-shown" not in err and "s3cret" not in err


def test_settings_client_id_and_secret_select_multi_workspace_mode(tmp_path: Path) -> None:
    single = load_settings({"SLACK_BOT_TOKEN": BOT}, env_file=tmp_path / "none.env")
    assert not single.multi_workspace
    two_keys = f"{generate_key()},{KEY}"
    s = load_settings(
        OAUTH | {"TOKEN_ENCRYPTION_KEY": two_keys, "SLACK_SIGNING_SECRET": SIGNING},
        env_file=tmp_path / "none.env",
    )
    assert s.multi_workspace and s.slack_bot_token is None
    s.require_for_run()  # no SLACK_BOT_TOKEN needed
    assert CLIENT_SECRET not in repr(s) and KEY not in repr(s)
    # Every secret is redacted from the logs, each key of the list on its own too.
    assert {CLIENT_SECRET, two_keys, KEY, SIGNING} <= set(secrets_of(s))


def test_settings_blank_client_settings_mean_single_workspace(tmp_path: Path) -> None:
    s = load_settings(
        {"SLACK_CLIENT_ID": " ", "SLACK_CLIENT_SECRET": "", "TOKEN_ENCRYPTION_KEY": ""},
        env_file=tmp_path / "none.env",
    )
    assert not s.multi_workspace and s.token_encryption_key is None
