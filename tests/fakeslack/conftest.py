"""Fixtures for the fakeslack tests: a small workspace, a running server, a real client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, generate
from tests.fakeslack.helpers import NOW


@pytest.fixture
def workspace() -> Workspace:
    return generate(7, users=24, channels=10, messages=900, days=30, now=NOW)


@pytest.fixture
async def fake(workspace: Workspace) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(workspace, rate_limits=False) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
