"""Process logging: one line per event on stderr, with every secret redacted.

Redaction sits on the handler, so it covers our loggers and every library's (Bolt,
slack_sdk, aiohttp, Chroma) alike.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Slack token shapes: bot, user, app-level, refresh and config tokens.
TOKEN_PATTERN = re.compile(r"\b(?:xox[abprse]|xapp|xoxe\.xox[bp])-[A-Za-z0-9-]+")
REDACTED = "[redacted]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats a record on one line and removes known secrets and anything token-shaped."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(FORMAT)
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # Tracebacks and multi-line messages stay one event, one line.
        return self.redact(line).replace("\r", "").replace("\n", " ⏎ ")


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    """Install the one stderr handler on the root logger (replacing any earlier one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
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
