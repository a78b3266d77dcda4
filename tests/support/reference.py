"""Where the tests find Slack's published specs (`shared/reference/`), and what happens without them.

They live beside the repository, not in it: `SLACK_REFERENCE_DIR` names the folder (default
`<repo>/../shared/reference`, where CI lays a copy of shared/). A person who clones only this
repository has no copy: the tests that check against the specs skip with one line saying what is
missing. In CI (`CI=true`) a missing reference is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO.parent / "shared" / "reference"


def reference_dir() -> Path:
    configured = os.environ.get("SLACK_REFERENCE_DIR", "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_DIR


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_reference(*parts: str) -> Path:
    """The path `<reference dir>/<parts…>`; skips the test (fails it in CI) when it is absent."""
    path = reference_dir().joinpath(*parts)
    if path.exists():
        return path
    reason = (
        f"Slack reference {path} not found: these tests check against Slack's published specs, "
        "kept beside the repository in shared/reference (set SLACK_REFERENCE_DIR to use another copy)"
    )
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)
    raise AssertionError("unreachable")  # pytest.skip raises
