"""Log lines: one per event, secrets and token-shaped strings redacted."""

from __future__ import annotations

import logging

from app.logs import REDACTED, RedactingFormatter


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_logs_redact_known_secrets_and_token_shapes() -> None:
    fmt = RedactingFormatter(["s3cr3t-signing-value"])
    line = fmt.format(
        record("token %s secret %s other xapp-1-A-2-zz", "xoxb-123-abc", "s3cr3t-signing-value")
    )
    assert "xoxb-123-abc" not in line and "s3cr3t-signing-value" not in line
    assert "xapp-1-A-2-zz" not in line and line.count(REDACTED) == 3


def test_logs_tracebacks_stay_on_one_line() -> None:
    try:
        raise ValueError("boom with xoxb-999-leak\nsecond line")
    except ValueError as exc:
        line = RedactingFormatter([]).format(record("failed", exc=exc))
    assert "\n" not in line and "Traceback" in line and "xoxb-999-leak" not in line


def test_logs_json_is_one_object_per_line_with_the_runs_ids() -> None:
    import json

    from app.logs import formatter_for
    from scheduler.log_context import working_for

    fmt = formatter_for("json", ["s3cr3t-signing-value"])
    with working_for(workspace_id="T123", job_run_id=7):
        try:
            raise ValueError("boom with xoxb-999-leak\nsecond line s3cr3t-signing-value")
        except ValueError as exc:
            line = fmt.format(record("run %s failed", 7, exc=exc))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "t"
    assert entry["message"] == "run 7 failed" and entry["timestamp"]
    assert (entry["workspace_id"], entry["job_run_id"]) == ("T123", 7)
    assert "Traceback" in entry["exc_info"]
    assert "xoxb-999-leak" not in line and "s3cr3t-signing-value" not in line
    outside = json.loads(fmt.format(record("idle")))
    assert "workspace_id" not in outside and "job_run_id" not in outside


def test_logs_format_is_chosen_by_the_setting(tmp_path: object) -> None:
    from app.logs import RedactingJsonFormatter, formatter_for
    from app.settings import load_settings

    assert load_settings({}, env_file=None).log_format == "text"
    chosen = load_settings({"LOG_FORMAT": "JSON"}, env_file=None).log_format
    assert isinstance(formatter_for(chosen, []), RedactingJsonFormatter)
    assert isinstance(formatter_for("text", []), RedactingFormatter)
