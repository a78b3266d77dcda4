"""The engine's Slack errors and the table that sorts Slack's error codes into them (retry, wait,
skip the channel, or stop the run). Imports nothing of ours.
"""

from __future__ import annotations

from enum import Enum

# `SlackGatewayError.error` of a malformed answer (see `MalformedSlackAnswer`).
MALFORMED = "malformed_response"


class SlackGatewayError(Exception):
    """Base of every error the gateway raises; `error` is Slack's code (or a short reason)."""

    def __init__(self, error: str, *, method: str = "") -> None:
        self.error = error
        self.method = method
        super().__init__(f"{method}: {error}" if method else error)


class PermanentSlackError(SlackGatewayError):
    """The token cannot do this at all (revoked, missing scope, …): stop the run, tell the admin."""


class ChannelUnavailable(SlackGatewayError):
    """This one channel (or thread) cannot be read: skip it, report it, carry on."""


class SlackUnavailable(SlackGatewayError):
    """Slack kept failing (5xx, timeouts, resets, endless 429s) after every retry: a transient
    failure of the run, worth retrying later."""


class MalformedSlackAnswer(SlackUnavailable):
    """Slack answered HTTP 200 with something the engine cannot read (a field missing or of the
    wrong type, JSON cut short, not JSON at all) on every attempt. `error` is `malformed_response`;
    `detail` says what was wrong with the last answer. Transient: a later run may get good ones."""

    def __init__(self, detail: str, *, method: str = "", attempts: int = 0) -> None:
        super().__init__(MALFORMED, method=method)
        self.detail = detail
        self.attempts = attempts

    def describe(self) -> str:
        """The failure in words, for the run's report."""
        return (
            f"Slack's answer to {self.method or 'a call'} was malformed ({self.detail}) "
            f"{self.attempts} times in a row"
        )


class RunCancelled(Exception):
    """The run's cancel event was set while the gateway waited (pacing, Retry-After, backoff) or
    called Slack: the call is abandoned and the engine ends the run as cancelled. Deliberately not
    a `SlackGatewayError`: nothing that skips channels or fails runs may catch it."""


class SlackRequestError(SlackGatewayError):
    """Any other `ok: false` (e.g. `invalid_cursor`, `user_not_found`): a bug or a per-call
    problem the caller decides about. Not retried."""


class Outcome(Enum):
    RATE_LIMITED = "rate_limited"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CHANNEL = "channel"
    OTHER = "other"


RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_ERRORS = frozenset(
    {
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        # Workspace mid-migration to Enterprise Grid: "retry later".
        "team_added_to_org",
        "org_login_required",
    }
)
PERMANENT_ERRORS = frozenset(
    {
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "not_authed",
        "team_access_not_granted",
        "no_permission",
    }
)
CHANNEL_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "method_not_supported_for_channel_type",
        "thread_not_found",
    }
)


def classify(status: int | None, error: str | None) -> Outcome:
    """Sort a failed response by HTTP status and Slack error code. Slack answers ordinary errors
    with HTTP 200 and `ok: false`; only rate limits use 429, and outages show up as 5xx."""
    if status == 429 or error in RATE_LIMIT_ERRORS:
        return Outcome.RATE_LIMITED
    if error in PERMANENT_ERRORS:
        return Outcome.PERMANENT
    if error in CHANNEL_ERRORS:
        return Outcome.CHANNEL
    if error in TRANSIENT_ERRORS or (status is not None and status >= 500):
        return Outcome.TRANSIENT
    return Outcome.OTHER
