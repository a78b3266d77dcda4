"""Log lines: one per event, secrets and token-shaped strings redacted."""

from __future__ import annotations

import logging

from app.logs import REDACTED, RedactingFormatter


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_logs_redact_known_secrets_and_token_shapes() -> None:
    fmt = RedactingFormatter(["s3cr3t-signing-value"])
    line = fmt.format(record("token %s secret %s other xapp-1-A-2-zz", "xoxb-123-abc", "s3cr3t-signing-value"))
    assert "xoxb-123-abc" not in line and "s3cr3t-signing-value" not in line
    assert "xapp-1-A-2-zz" not in line and line.count(REDACTED) == 3


def test_logs_tracebacks_stay_on_one_line() -> None:
    try:
        raise ValueError("boom with xoxb-999-leak\nsecond line")
    except ValueError as exc:
        line = RedactingFormatter([]).format(record("failed", exc=exc))
    assert "\n" not in line and "Traceback" in line and "xoxb-999-leak" not in line
