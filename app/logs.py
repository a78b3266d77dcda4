"""Process logging: one line per event on stderr, as text or as JSON, with every secret redacted.

Redaction sits on the handler's formatter, so it covers our loggers and every library's (Bolt,
slack_sdk, aiohttp, Chroma) alike. `LOG_FORMAT=json` uses python-json-logger's formatter: one
object per line with `timestamp`, `level`, `logger`, `message`, and the `workspace_id` and
`job_run_id` of the run a line was written for (`scheduler.log_context`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from blocks.limits import REDACTED, redact_tokens
from scheduler.log_context import current_ids

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


class Redactor:
    """Removes known secrets and anything token-shaped from a finished log line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return redact_tokens(text)


class RedactingFormatter(logging.Formatter):
    """Formats a record on one line and removes known secrets and anything token-shaped."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(FORMAT)
        self.redact = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # Tracebacks and multi-line messages stay one event, one line.
        return self.redact(line).replace("\r", "").replace("\n", " ⏎ ")


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message (and the traceback as
    `exc_info`), the run's ids where they apply; secrets redacted in every field."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
        self.redact = Redactor(secrets)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        for key, value in current_ids().items():
            log_data.setdefault(key, value)

    def format(self, record: logging.LogRecord) -> str:
        # The serialiser escapes newlines inside strings: the object is always one line.
        return self.redact(super().format(record))


def formatter_for(log_format: str, secrets: Iterable[str]) -> logging.Formatter:
    if log_format == "json":
        return RedactingJsonFormatter(secrets)
    return RedactingFormatter(secrets)


def configure_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Install the one stderr handler on the root logger (replacing any earlier one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format, secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # One access line per Slack request is noise unless debugging.
    logging.getLogger("aiohttp.access").setLevel("DEBUG" if level == "DEBUG" else "WARNING")
    # Alembic announces each of its plugins at INFO on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel("WARNING")
    logging.captureWarnings(True)
