"""Scenario fixtures: fakeslack (seeded workspace, time-compressed) and the app in-process on real
HTTP, one fresh database per test. `scenario` runs on SQLite and PostgreSQL; `ui` on SQLite only
(Block Kit paths whose database work the `scenario` tests already cover on both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scenarios.harness import Scenario, start_scenario


@pytest.fixture
async def scenario(database_url: str, tmp_path: Path) -> AsyncIterator[Scenario]:
    async with start_scenario(database_url, tmp_path) as s:
        yield s


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[Scenario]:
    async with start_scenario(f"sqlite+aiosqlite:///{tmp_path}/backfill.db", tmp_path) as s:
        yield s


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/backfill.db"
