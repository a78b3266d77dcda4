"""What a checker says when it refuses a value: the message, which must be one line (settings
errors are printed as a single line at start-up). Not a test module."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def one_line_refusal(check: Callable[[str], object], value: str) -> str:
    """The ValueError message `check(value)` raises, asserted to be a single line."""
    with pytest.raises(ValueError) as info:
        check(value)
    message = str(info.value)
    assert "\n" not in message
    return message
