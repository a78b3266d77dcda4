"""Log lines that anyone on the internet can cause (refused requests) at a bounded rate: at most
one line per kind per interval, the next one saying how many of that kind were left out.

Without it, 200 unsigned requests wrote 393 KB of tracebacks; now they write one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_INTERVAL_S = 60.0


@dataclass
class ThrottledLog:
    """`emit(kind, …)` logs a warning when `kind` was last logged `interval` seconds ago or never."""

    logger: logging.Logger
    interval: float = DEFAULT_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _left_out: dict[str, int] = field(default_factory=dict)

    def emit(self, kind: str, message: str, *args: object) -> bool:
        """Log `message % args` (one line, no traceback) unless throttled; True if logged."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            message = f"{message} (and {left_out} more like it since the last such line)"
        self.logger.warning(message, *args)
        return True
