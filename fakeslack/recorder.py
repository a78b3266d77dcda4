"""What reached fakeslack: every API call (method, args without the token, times, status, error),
per-method counters, and everything the app posted (messages, ephemerals, views, response_url)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

COUNTER_NAMES = ("calls", "ok", "errors", "ratelimited", "http_errors", "resets")
# Credentials a call may carry (oauth.v2.access's too): never kept in the call log.
SECRET_ARGS = frozenset({"token", "client_secret", "code", "refresh_token"})


@dataclass
class Call:
    seq: int
    method: str
    args: dict[str, Any]
    t_mono: float
    t_wall: float
    status: int | None = None  # None: connection reset, no response
    ok: bool | None = None
    error: str | None = None
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)
    counters: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(COUNTER_NAMES, 0))
    )
    posts: list[dict[str, Any]] = field(default_factory=list)  # messages, updates, ephemerals
    views: list[dict[str, Any]] = field(default_factory=list)  # views.* events
    response_posts: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, method: str, args: dict[str, Any]) -> Call:
        clean = {k: v for k, v in args.items() if k not in SECRET_ARGS}
        with self._lock:
            call = Call(len(self.calls) + 1, method, clean, time.monotonic(), time.time())
            self.calls.append(call)
            self.counters[method]["calls"] += 1
        return call

    def finish(self, call: Call, status: int | None, body: dict[str, Any] | None) -> None:
        call.status = status
        call.duration = time.monotonic() - call.t_mono
        c = self.counters[call.method]
        with self._lock:
            if status is None:
                c["resets"] += 1
                call.error = "connection_reset"
                return
            call.ok = bool(body and body.get("ok"))
            call.error = None if call.ok else (body or {}).get("error", f"http_{status}")
            if status == 429:
                c["ratelimited"] += 1
            elif status >= 500:
                c["http_errors"] += 1
            elif call.ok:
                c["ok"] += 1
            else:
                c["errors"] += 1

    def record_post(self, kind: str, **data: Any) -> dict[str, Any]:
        entry = {"kind": kind, "t_wall": time.time(), **data}
        with self._lock:
            self.posts.append(entry)
        return entry

    def record_view(self, kind: str, **data: Any) -> dict[str, Any]:
        entry = {"kind": kind, "t_wall": time.time(), **data}
        with self._lock:
            self.views.append(entry)
        return entry

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def counters_dict(self) -> dict[str, dict[str, int]]:
        return {m: dict(c) for m, c in self.counters.items()}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.counters.clear()
            self.posts.clear()
            self.views.clear()
            self.response_posts.clear()
