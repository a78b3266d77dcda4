"""Settings: every variable of the contract, read once from the environment and `.env`.

Real environment variables win over `.env`. Every secret setting may instead be given as
`<NAME>_FILE`, a path to a file holding the value (how Docker and Kubernetes mount secrets). Any
problem becomes a `SettingsError` whose message is one line naming the setting and what is
accepted, never echoing a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.logs import LOG_FORMATS
from db.session import check_database_url
from db.token_crypto import TokenKeyError, parse_keys
from db.vectors import check_chroma_url

EMBEDDINGS = ("default", "hashing")
RATE_PROFILES = ("internal", "non_marketplace")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Values of these settings never appear in a message, even a malformed one.
SECRET_SETTINGS = frozenset(
    {
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_SECRET",
        "TOKEN_ENCRYPTION_KEY",
    }
)
# URLs may carry credentials (postgresql://user:password@host/db): never echoed either.
UNECHOED_SETTINGS = SECRET_SETTINGS | {"DATABASE_URL", "CHROMA_URL", "SLACK_API_URL"}
# Settings that may come from a file named by `<NAME>_FILE` (design.md: every secret, and the
# database URL for its password).
FILE_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "DATABASE_URL",
    "SLACK_CLIENT_SECRET",
    "TOKEN_ENCRYPTION_KEY",
)

# What is accepted, per setting, for the one-line error.
ACCEPTED: dict[str, str] = {
    "SLACK_BOT_TOKEN": "a bot token starting with xoxb-",
    "SLACK_SIGNING_SECRET": "the app's signing secret (Basic Information page)",
    "SLACK_APP_TOKEN": "an app-level token starting with xapp- (Socket Mode), or unset for HTTP mode",
    "SLACK_API_URL": "an http(s) URL such as https://slack.com/api/",
    "PORT": "an integer from 1 to 65535",
    "DATABASE_URL": (
        "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:port/dbname"
    ),
    "CHROMA_PATH": "a directory path for the embedded Chroma store",
    "CHROMA_URL": "http://host:port or https://host:port of a Chroma server, or unset",
    "EMBEDDING": "one of: " + ", ".join(EMBEDDINGS),
    "MEMBERS_CAN_RUN": "true or false",
    "SLACK_RATE_PROFILE": "one of: " + ", ".join(RATE_PROFILES),
    "AUTO_JOIN": "true or false",
    "INCLUDE_BOTS": "true or false",
    "MIN_TEXT_CHARS": "an integer from 0 to 1000",
    "THREAD_LOOKBACK_DAYS": "an integer from 0 to 365",
    "PRUNE_DELETED": "true or false",
    "RUN_CONCURRENCY": "an integer from 1 to 32",
    "RUN_RETRIES": "an integer from 0 to 10",
    "LOG_LEVEL": "one of: " + ", ".join(LOG_LEVELS),
    "LOG_FORMAT": "one of: " + ", ".join(LOG_FORMATS),
    "LIVE_SYNC": "true or false",
    "SEARCH_ALLOWED": "members (everyone in the workspace) or admins",
    "SHUTDOWN_TIMEOUT": "an integer from 1 to 600 (seconds)",
    "SLACK_CLIENT_ID": "the app's client id (Basic Information page), or unset for one workspace",
    "SLACK_CLIENT_SECRET": "the app's client secret (Basic Information page), with SLACK_CLIENT_ID",
    "TOKEN_ENCRYPTION_KEY": (
        "one or more Fernet keys, comma-separated, the first encrypting (make one with: python -c"
        " 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
    ),
}
ACCEPTED |= {
    f"{name}_FILE": f"the path of a readable file holding {name} (and {name} itself unset)"
    for name in FILE_SETTINGS
}


class SettingsError(Exception):
    """A missing or malformed setting; `str(error)` is the one line to show."""

    def __init__(self, setting: str, problem: str, value: object = None) -> None:
        shown = ""
        if value is not None and setting not in UNECHOED_SETTINGS:
            shown = f" (got {str(value)[:80]!r})"
        super().__init__(
            f"Setting {setting} {problem}{shown}; accepted: {ACCEPTED.get(setting, 'see README')}."
        )
        self.setting = setting


class Settings(BaseSettings):
    """The process's configuration. Field names are the environment names, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    slack_bot_token: str | None = Field(default=None, repr=False)
    slack_signing_secret: str | None = Field(default=None, repr=False)
    slack_app_token: str | None = Field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    port: int = Field(default=3000, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///./data/backfill.db"
    chroma_path: str = "./data/chroma"
    chroma_url: str | None = None
    embedding: Literal["default", "hashing"] = "default"
    members_can_run: bool = True
    slack_rate_profile: Literal["internal", "non_marketplace"] = "internal"
    auto_join: bool = True
    include_bots: bool = False
    min_text_chars: int = Field(default=8, ge=0, le=1000)
    thread_lookback_days: int = Field(default=14, ge=0, le=365)
    # A run removes the stored messages of what it re-read that Slack no longer returns.
    prune_deleted: bool = True
    run_concurrency: int = Field(default=2, ge=1, le=32)
    run_retries: int = Field(default=2, ge=0, le=10)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Apply Slack's message events (new, edited, deleted, thread replies) as they happen.
    live_sync: bool = True
    # Who may use `/backfill search`: everyone in the workspace, or admins only.
    search_allowed: Literal["members", "admins"] = "members"
    # Seconds from SIGTERM to exit; runs in progress are released for another process to resume.
    shutdown_timeout: int = Field(default=20, ge=1, le=600)
    # Multi-workspace mode (both client settings): OAuth installs, tokens stored encrypted.
    slack_client_id: str | None = None
    slack_client_secret: str | None = Field(default=None, repr=False)
    token_encryption_key: str | None = Field(default=None, repr=False)

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "chroma_url",
        "slack_client_id",
        "slack_client_secret",
        "token_encryption_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        # `SLACK_APP_TOKEN=` in a .env means "not set", not "an empty token".
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator(
        "log_level",
        "log_format",
        "embedding",
        "slack_rate_profile",
        "search_allowed",
        mode="before",
    )
    @classmethod
    def _normalise_case(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if value.upper() in LOG_LEVELS else value.lower()

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("xoxb-"):
            raise ValueError("is not a bot token")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("xapp-"):
            raise ValueError("is not an app-level token")
        return value

    @field_validator("token_encryption_key")
    @classmethod
    def _fernet_keys(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_keys(value)
            except TokenKeyError as exc:
                raise ValueError(str(exc)) from None  # says which key, never the key
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            check_database_url(value)
        except ValueError:
            # The URL may hold a password: say what is wrong without echoing it.
            raise ValueError("is not a supported database URL") from None
        return value

    @field_validator("chroma_url")
    @classmethod
    def _chroma_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_chroma_url(value)
            except ValueError:
                raise ValueError("is not a Chroma server URL") from None
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("is not an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def multi_workspace(self) -> bool:
        """Both client settings: every workspace installs through OAuth, no SLACK_BOT_TOKEN."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    def check_modes(self) -> None:
        """The client settings come as a pair, and multi-workspace mode needs the key."""
        pair = {
            "SLACK_CLIENT_ID": self.slack_client_id,
            "SLACK_CLIENT_SECRET": self.slack_client_secret,
        }
        for name, value in pair.items():
            if value is None and any(pair.values()):
                other = next(n for n in pair if n != name)
                raise SettingsError(name, f"is required when {other} is set (multi-workspace mode)")
        if self.multi_workspace and self.token_encryption_key is None:
            raise SettingsError(
                "TOKEN_ENCRYPTION_KEY",
                "is required in multi-workspace mode (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set)",
            )

    def require_for_run(self) -> None:
        """`run` needs a bot token (one workspace) or OAuth (many), and a signing secret unless
        it uses Socket Mode."""
        if self.slack_bot_token is None and not self.multi_workspace:
            raise SettingsError("SLACK_BOT_TOKEN", "is required to run the app")
        if not self.socket_mode and self.slack_signing_secret is None:
            raise SettingsError(
                "SLACK_SIGNING_SECRET", "is required in HTTP mode (SLACK_APP_TOKEN is not set)"
            )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Real environment first, then .env; no secrets directory.
        return init_settings, env_settings, dotenv_settings


class _MappingSettings(Settings):
    """Settings read from an explicit mapping (tests) instead of `os.environ`, plus `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings


_PROBLEMS = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "greater_than_equal": "is out of range",
    "less_than_equal": "is out of range",
    "bool_parsing": "is not true or false",
    "literal_error": "is not an accepted value",
    "string_type": "is malformed",
}


def _first_error(exc: ValidationError, given: Mapping[str, Any]) -> SettingsError:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "settings"
    name = field.upper()
    raw = error.get("input")
    problem = _PROBLEMS.get(error["type"], "is malformed")
    if error["type"] == "value_error":
        # Our own validators' messages; pydantic prefixes them with "Value error, ".
        problem = str(error.get("msg", "")).removeprefix("Value error, ") or problem
    value = raw if isinstance(raw, (str, int, float)) else given.get(name)
    return SettingsError(name, problem, value)


def _from_files(sources: list[Mapping[str, str | None]]) -> dict[str, str]:
    """Values of `FILE_SETTINGS` given as `<NAME>_FILE`, read from their files.

    `sources` in precedence order (the real environment, then `.env`): the first source that
    names a setting, directly or through a file, decides it; both in one source is an error."""
    values: dict[str, str] = {}
    for name in FILE_SETTINGS:
        file_name = f"{name}_FILE"
        for source in sources:
            direct, path = source.get(name), source.get(file_name)
            if path and direct:
                raise SettingsError(file_name, f"and {name} are both set; set only one")
            if direct:
                break
            if path:
                values[name.lower()] = _read_secret_file(file_name, path)
                break
    return values


def _read_secret_file(setting: str, path: str) -> str:
    try:
        # One value per file; the newline an editor or `echo` adds is not part of it.
        return Path(path).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "is not UTF-8 text"
        raise SettingsError(
            setting, f"names a file that cannot be read ({reason.lower()})", path
        ) from None


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read the settings once. `environ` replaces `os.environ` (for tests)."""
    dotenv: Mapping[str, str | None] = (
        dotenv_values(env_file) if env_file is not None and Path(env_file).is_file() else {}
    )
    from_files: dict[str, Any] = _from_files([os.environ if environ is None else environ, dotenv])
    try:
        if environ is None:
            settings = Settings(_env_file=env_file, **from_files)  # type: ignore[call-arg]
        else:
            known = {name.lower() for name in ACCEPTED}
            values: dict[str, Any] = {
                k.lower(): v for k, v in environ.items() if k.lower() in known
            }
            values |= from_files
            settings = _MappingSettings(_env_file=env_file, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _first_error(exc, environ or {}) from None
    settings.check_modes()
    return settings
