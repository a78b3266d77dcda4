"""A request error on the run's setup calls (`users.list`, `conversations.list`) that retrying
would not fix ends the run with a result error (`error_kind='permanent'`), never an exception out
of `BackfillEngine.run`, and without retrying the refused call."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakeslack import FakeSlack
from scheduler.backfill.engine import RunRequest
from tests.engine.engine_harness import (
    make_engine,
    make_gateway,
    open_stores,
    small_workspace,
    stored_rows,
)


@pytest.mark.parametrize("method", ["users.list", "conversations.list"])
async def test_engine_setup_request_error_is_a_result(
    method: str, database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    async with (
        FakeSlack(ws, rate_limits=False) as fake,
        open_stores(database_url, tmp_path / "chroma") as stores,
    ):
        fake.faults.api_error("invalid_cursor", count=1, method=method)
        result = await make_engine(make_gateway(fake), stores).run(
            RunRequest(ws.team_id, job_run_id=1, days=7, now=ws.now)
        )
        assert result.error == "invalid_cursor"
        assert result.error_kind == "permanent"
        assert not result.cancelled and not result.ok
        assert len(fake.calls_of(method)) == 1, "a refused request was sent again"
        assert fake.calls_of("conversations.history") == []
        assert await stored_rows(stores, ws.team_id) == {}
        assert fake.faults.snapshot()["pending"] == []
