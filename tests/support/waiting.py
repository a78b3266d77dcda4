"""Waiting on something asynchronous in a test: poll a condition (plain or awaitable) until it
holds or a deadline passes, and fail with what was waited for. Not a test module."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any], timeout: float = 15.0, what: str = "condition", *, every: float = 0.05
) -> Any:
    """The first true result of `check()` (awaited when it returns a coroutine), polled every
    `every` seconds; an AssertionError naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
