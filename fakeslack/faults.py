"""Faults on demand: 5xx, 429 bursts, slow responses, connection resets, auth failures, ok:false
errors, channels deleted mid-run, and HTTP 200 answers a client cannot trust (a malformed shape,
a truncated JSON body, a non-JSON page). Driven from Python or `POST /_fake/faults`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = (
    "http_error",
    "ratelimit",
    "delay",
    "reset",
    "api_error",
    "auth",
    "delete_channel",
    "malformed",
    "truncated",
    "non_json",
    "clear",
)

# Kinds that rewrite an HTTP 200 `ok: true` answer (see `Faults.take_body`), in the order tried.
BODY_KINDS = ("malformed", "truncated", "non_json")


@dataclass
class Fault:
    # http_error | ratelimit | delay | reset | api_error | malformed | truncated | non_json
    kind: str
    method: str | None = None  # None: any API method
    remaining: int | None = 1  # None: every matching call until cleared
    status: int = 500
    retry_after: int = 1
    seconds: float = 0.0
    error: str = "internal_error"
    channel: str | None = None  # body kinds only: None, any call; else calls with this `channel`
    drop: list[str] = field(default_factory=list)  # malformed: top-level keys removed
    replace: dict[str, Any] = field(default_factory=dict)  # malformed: top-level keys overwritten
    body: Any = None  # malformed: the whole JSON answer instead (when not None)
    content_type: str = "application/json"  # truncated / non_json: the answer's Content-Type


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[Fault] = []
        self.auth_error: str | None = None
        self.auth_from_call: int = 0
        self.deletions: dict[str, int] = {}  # channel -> history calls still served
        self._history_seen: dict[str, int] = {}

    # -- arming -------------------------------------------------------------------------------
    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self.pending.append(fault)
        return fault

    def http_error(self, status: int = 500, count: int = 1, method: str | None = None) -> Fault:
        """The next `count` matching calls answer HTTP `status` (500 or 503) with ok:false JSON."""
        return self._arm(
            Fault(
                "http_error",
                method,
                count,
                status=status,
                error="service_unavailable" if status == 503 else "internal_error",
            )
        )

    def ratelimit_burst(
        self, count: int = 1, retry_after: int = 1, method: str | None = None
    ) -> Fault:
        """The next `count` matching calls get 429 with `Retry-After: retry_after`."""
        return self._arm(Fault("ratelimit", method, count, status=429, retry_after=retry_after))

    def slow(self, seconds: float, method: str | None = None, count: int | None = None) -> Fault:
        """Delay matching responses by `seconds` (every call, or the next `count`)."""
        return self._arm(Fault("delay", method, count, seconds=seconds))

    def connection_reset(self, count: int = 1, method: str | None = None) -> Fault:
        """Close the connection without any response for the next `count` matching calls."""
        return self._arm(Fault("reset", method, count))

    def api_error(
        self, error: str = "internal_error", count: int = 1, method: str | None = None
    ) -> Fault:
        """HTTP 200 with `{"ok": false, "error": error}` for the next `count` matching calls."""
        return self._arm(Fault("api_error", method, count, status=200, error=error))

    def malformed(
        self,
        method: str | None = None,
        *,
        channel: str | None = None,
        count: int | None = 1,
        drop: list[str] | tuple[str, ...] = (),
        replace: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Fault:
        """HTTP 200 with a JSON answer of the wrong shape for the next `count` matching calls that
        would have succeeded (`count=None`: every one until cleared). The real answer minus the
        keys in `drop` and with `replace`'s keys overwritten; or `body` verbatim (any JSON value);
        with none of these, `{"ok": true}` alone (e.g. history without `messages`)."""
        if body is None and not drop and not replace:
            body = {"ok": True}
        return self._arm(
            Fault(
                "malformed",
                method,
                count,
                status=200,
                channel=channel,
                drop=list(drop),
                replace=dict(replace or {}),
                body=body,
            )
        )

    def truncated(
        self, method: str | None = None, *, channel: str | None = None, count: int | None = 1
    ) -> Fault:
        """HTTP 200, `application/json`, but only the first half of the real answer's JSON (a body
        cut short by a proxy or a dropped stream), for the next `count` calls that would succeed."""
        return self._arm(Fault("truncated", method, count, status=200, channel=channel))

    def non_json(
        self,
        method: str | None = None,
        *,
        channel: str | None = None,
        count: int | None = 1,
        content_type: str = "text/html",
    ) -> Fault:
        """HTTP 200 with an HTML error page (a captive portal's or proxy's) instead of JSON, with
        `content_type`, for the next `count` calls that would succeed."""
        return self._arm(
            Fault("non_json", method, count, status=200, channel=channel, content_type=content_type)
        )

    def auth_failure(self, error: str = "invalid_auth", from_call: int = 1) -> None:
        """Every API call numbered `from_call` or later (1-based, counted over all calls received)
        answers `error` (`invalid_auth`, `token_revoked`, `account_inactive`)."""
        with self._lock:
            self.auth_error, self.auth_from_call = error, from_call

    def delete_channel(self, channel_id: str, after_history_calls: int = 0) -> None:
        """Delete `channel_id` once `after_history_calls` calls to conversations.history on it were
        served (0: at the next API call). Then every method answers channel_not_found."""
        with self._lock:
            self.deletions[channel_id] = after_history_calls
            self._history_seen.setdefault(channel_id, 0)

    def clear(self) -> None:
        with self._lock:
            self.pending.clear()
            self.auth_error, self.auth_from_call = None, 0
            self.deletions.clear()
            self._history_seen.clear()

    def add(self, spec: dict[str, Any]) -> None:
        """Arm a fault from a JSON spec: `{"kind": ..., ...keyword arguments of the method}`."""
        spec = dict(spec)
        kind = spec.pop("kind", None)
        actions: dict[str, Callable[..., Any]] = {
            "http_error": self.http_error,
            "ratelimit": self.ratelimit_burst,
            "delay": self.slow,
            "reset": self.connection_reset,
            "api_error": self.api_error,
            "auth": self.auth_failure,
            "delete_channel": self.delete_channel,
            "malformed": self.malformed,
            "truncated": self.truncated,
            "non_json": self.non_json,
        }
        if kind == "clear":
            self.clear()
        elif kind in actions:
            actions[kind](**spec)
        else:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")

    # -- consuming ----------------------------------------------------------------------------
    def take(self, kind: str, method: str, channel: str | None = None) -> Fault | None:
        """Consume one matching fault of `kind` for a call to `method` (on `channel`), if armed."""
        with self._lock:
            for f in self.pending:
                if (
                    f.kind == kind
                    and (f.method is None or f.method == method)
                    and (f.channel is None or f.channel == channel)
                ):
                    if f.remaining is not None:
                        f.remaining -= 1
                        if f.remaining <= 0:
                            self.pending.remove(f)
                    return f
        return None

    def take_body(self, method: str, channel: str | None) -> Fault | None:
        """Consume the first armed body fault (malformed, truncated, non_json) for a call to
        `method` on `channel` whose real answer is `ok: true`."""
        for kind in BODY_KINDS:
            fault = self.take(kind, method, channel)
            if fault is not None:
                return fault
        return None

    def auth_error_for(self, call_number: int) -> str | None:
        if self.auth_error and call_number >= self.auth_from_call:
            return self.auth_error
        return None

    def channels_to_delete(self, method: str, channel_id: str | None) -> list[str]:
        """Channels whose deletion is due now; counts history calls on watched channels."""
        with self._lock:
            due = [c for c, n in self.deletions.items() if self._history_seen.get(c, 0) >= n]
            if method == "conversations.history" and channel_id in self.deletions:
                self._history_seen[channel_id] = self._history_seen.get(channel_id, 0) + 1
            for c in due:
                del self.deletions[c]
            return due

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pending": [asdict(f) for f in self.pending],
                "auth_error": self.auth_error,
                "auth_from_call": self.auth_from_call,
                "deletions": dict(self.deletions),
            }
