"""The `ok: false` error a method handler raises; the server turns it into an HTTP 200 JSON body."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}
