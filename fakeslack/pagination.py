"""Opaque, tamper-evident cursors: base64 of `kind:anchor` plus a short HMAC over the walk's scope.

A cursor edited by hand, or replayed on another channel or thread, fails -> invalid_cursor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


class InvalidCursor(Exception):
    pass


class Cursors:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _sig(self, kind: str, anchor: str, scope: str) -> str:
        mac = hmac.new(self.secret, f"{kind}|{anchor}|{scope}".encode(), hashlib.sha256)
        return mac.hexdigest()[:12]

    def encode(self, kind: str, anchor: str, scope: str) -> str:
        raw = f"{kind}:{anchor}:{self._sig(kind, anchor, scope)}"
        return base64.b64encode(raw.encode()).decode()

    def decode(self, cursor: str, kind: str, scope: str) -> str:
        try:
            raw = base64.b64decode(cursor.encode(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidCursor(cursor) from exc
        parts = raw.split(":")
        if len(parts) != 3 or parts[0] != kind:
            raise InvalidCursor(cursor)
        _, anchor, sig = parts
        if not hmac.compare_digest(sig, self._sig(kind, anchor, scope)):
            raise InvalidCursor(cursor)
        return anchor
