"""How a run ends, in words: its status, the error as the admin reads it, what the app did about
it (retry when, or why not) and whether the schedule pauses. One pure decision, from the engine's
`RunResult` and the run; the service stores and tells it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from db.records import Run
from scheduler.backfill.errors import MALFORMED
from scheduler.backfill.progress import RunResult

# What the admin reads when Slack refuses the token itself; retrying cannot help.
PERMANENT_REASONS = {
    "invalid_auth": "Slack no longer accepts the app's token (invalid_auth). Reinstall the app.",
    "not_authed": "Slack received no token from the app (not_authed). Check its configuration.",
    "token_revoked": "The app's token was revoked (token_revoked). Reinstall the app.",
    "token_expired": "The app's token expired (token_expired). Reinstall the app.",
    "not_installed": (
        "The app is not installed on this workspace any more, or must be reinstalled "
        "(not_installed). Reinstall it from the install page."
    ),
    "account_inactive": (
        "The app's bot user is deactivated (account_inactive). Reinstall or reactivate the app."
    ),
    "missing_scope": (
        "The app lacks a permission it needs (missing_scope). Reinstall it with the scopes "
        "listed in manifest.yml."
    ),
    "team_access_not_granted": (
        "The app has no access to this workspace (team_access_not_granted). Reinstall it."
    ),
    "no_permission": "Slack refused the app permission to read history (no_permission).",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # success | failed | cancelled
    error_message: str | None
    action: str  # what the app did about a failure ("" otherwise)
    retry_at: datetime | None  # an automatic retry is due then
    pause_reason: str | None  # the schedule pauses, and says why


def decide_outcome(
    run: Run,
    result: RunResult,
    *,
    cancel_requested: bool,
    retries: int,
    backoff: Sequence[float],
    now: datetime,
) -> Outcome:
    """Permanent failures (Slack refusing the token or a scope) are never retried and pause a
    schedule; transient ones retry a scheduled run `retries` times with `backoff`; a manual run
    is never retried automatically (its failure DM has Retry now)."""
    retry_at: datetime | None = None
    action = ""
    pause_reason: str | None = None
    if result.error is None and (result.cancelled or cancel_requested):
        status, error_message = "cancelled", None
    elif result.error is None:
        status, error_message = "success", None
    else:
        status = "failed"
        if result.error_kind == "permanent":
            error_message = PERMANENT_REASONS.get(
                result.error, f"Slack refused the app's request ({result.error})."
            )
            if run.job_type == "scheduled":
                pause_reason = error_message
                action = (
                    "Not retried: this needs a fix first. The schedule is paused; "
                    "resume it with /backfill resume once fixed."
                )
            else:
                action = "Not retried: this needs a fix first."
        else:
            if result.error_kind == "database":
                error_message = (
                    f"The database stopped answering during the run ({result.error}), and it "
                    "could not go on."
                )
            elif result.error_kind == "internal":
                error_message = (
                    f"The app hit an internal error ({result.error}); the details are in its log."
                )
            elif result.error == MALFORMED:
                error_message = (
                    f"Slack's answers were malformed on every attempt ({result.error}): a field "
                    "missing or of the wrong type, or a body cut short. The channels concerned "
                    "are listed as skipped; what was stored is kept. This is usually temporary."
                )
            else:
                error_message = (
                    f"Slack kept failing after several attempts ({result.error}). "
                    "This is usually temporary."
                )
            if run.job_type == "scheduled" and run.attempt < retries:
                delay = backoff[min(run.attempt, len(backoff) - 1)]
                retry_at = now + timedelta(seconds=delay)
                action = (
                    f"Retrying automatically in {_in_words(delay)} "
                    f"(retry {run.attempt + 1} of {retries}), from where it stopped."
                )
            elif run.job_type == "scheduled":
                action = (
                    f"No more automatic retries ({retries} made); "
                    "the next scheduled run tries again."
                )
            else:
                action = "Not retried automatically."
    return Outcome(status, error_message, action, retry_at, pause_reason)


def _in_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["PERMANENT_REASONS", "Outcome", "decide_outcome"]
