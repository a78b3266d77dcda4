"""The app tests' fakeslack: one small generated workspace a module, for the app processes the
module starts against it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakeslack import FakeSlack, generate


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(generate(seed=7, users=12, channels=4, messages=200, days=10)) as server:
        yield server
