"""Slack's rate limits are per app per workspace, and so is the engine's pacing: a workspace whose
run waits out a 429 (Retry-After) never holds up another workspace's run (`Gateways.per_workspace`:
a gateway, a pacer and a token per workspace). Shown by fakeslack's per-workspace call logs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from db.token_crypto import TokenCipher, generate_key
from fakeslack import FakeSlack, OAuthConfig, Workspace
from scheduler.backfill.engine import BackfillEngine, RunRequest
from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.gateways import Gateways
from scheduler.backfill.profiles import INTERNAL
from scheduler.backfill.tokens import WorkspaceToken
from tests.engine.engine_harness import Stores, open_stores
from tests.fakeslack.helpers import NOW
from tests.fakeslack.multi_helpers import three_workspaces
from tests.support.installs import bot_tokens, install
from tests.support.waiting import eventually

FAST = dataclasses.replace(INTERNAL.scaled(0.05), history_page_size=20, replies_page_size=200)
RETRY_AFTER_S = 4  # far longer than the other workspace's whole run here


@pytest.fixture
def workspaces() -> list[Workspace]:
    return three_workspaces()


@pytest.fixture
async def fake(workspaces: list[Workspace]) -> AsyncIterator[FakeSlack]:
    async with FakeSlack.serving(workspaces, rate_limits=False, oauth=OAuthConfig()) as server:
        yield server


@pytest.fixture
async def stores(database_url: str, tmp_path: Path) -> AsyncIterator[Stores]:
    async with open_stores(database_url, tmp_path / "chroma") as opened:
        yield opened


async def test_one_workspace_waiting_out_a_429_does_not_slow_another(
    fake: FakeSlack, workspaces: list[Workspace], stores: Stores
) -> None:
    cipher = TokenCipher(generate_key())
    slow, quick = workspaces[1].team_id, workspaces[2].team_id
    for team in (slow, quick):
        await install(fake, stores.sessions, cipher, team)

    def gateway(token: WorkspaceToken) -> SlackGateway:
        return SlackGateway(token, base_url=fake.base_url, profile=FAST, backoff_base=0.02)

    gateways = Gateways.per_workspace(bot_tokens(fake, stores.sessions, cipher), gateway)
    engine = BackfillEngine(gateways, stores.sessions, stores.vectors)

    # The slow workspace's first history call is answered 429 with a long Retry-After.
    fake.faults.ratelimit_burst(count=1, retry_after=RETRY_AFTER_S, method="conversations.history")
    slow_run = asyncio.create_task(engine.run(RunRequest(slow, 1, days=60, now=NOW)))
    slow_calls = fake.team(slow).calls
    await eventually(lambda: any(c.status == 429 for c in slow_calls), 30, "the 429")

    quick_result = await engine.run(RunRequest(quick, 2, days=60, now=NOW))
    slow_result = await slow_run

    assert quick_result.error is None and quick_result.messages_written > 0
    assert slow_result.error is None and slow_result.messages_written > 0
    limited = next(c for c in slow_calls if c.status == 429)
    retried = next(
        c for c in slow_calls if c.method == "conversations.history" and c.t_mono > limited.t_mono
    )
    assert retried.t_mono - limited.t_mono >= RETRY_AFTER_S * 0.99  # the slow one waited
    quick_calls = fake.team(quick).calls
    assert quick_calls and not any(c.status == 429 for c in quick_calls)
    # Every call of the quick workspace's run, history included, was made while the slow one
    # was still waiting for its Retry-After.
    assert max(c.t_mono for c in quick_calls) < retried.t_mono
    assert any(c.method == "conversations.history" for c in quick_calls)
    assert gateways.for_workspace(slow) is not gateways.for_workspace(quick)
    assert gateways.for_workspace(slow).pacer is not gateways.for_workspace(quick).pacer
