"""A malformed Slack answer never passes for an empty success (issue 10, finding 3), on SQLite and
PostgreSQL, against fakeslack over HTTP with the real slack_sdk: answers without `messages`, of
the wrong type, cut short or not JSON at all are retried and everything is stored; when one
channel's answers stay malformed, that channel is reported failed in words, the others are
stored, and the run fails (transient, so it is retried) instead of ending `success`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import fakeslack
from scheduler.backfill.errors import MALFORMED
from tests.engine.engine_harness import (
    DAYS,
    make_gateway,
    run_engine,
    slack_and_stores,
    small_workspace,
    stored_rows,
)
from tests.scheduler.slack_node import first_member, slack_node

HISTORY = "conversations.history"
REPLIES = "conversations.replies"


def busiest(truth: fakeslack.GroundTruth) -> str:
    """The in-scope channel with the most messages to store."""
    counts = {c: 0 for c in truth.channels_in_scope}
    for channel, _ in truth.must_store:
        counts[channel] = counts.get(channel, 0) + 1
    return max(counts, key=lambda c: counts[c])


def threaded(truth: fakeslack.GroundTruth) -> str:
    """The in-scope channel with the most threads to walk."""
    counts: dict[str, int] = {}
    for channel, _ in truth.threads_with_replies:
        counts[channel] = counts.get(channel, 0) + 1
    return max(counts, key=lambda c: counts[c])


def victim_and_others(
    ws: fakeslack.Workspace, pick: Callable[[fakeslack.GroundTruth], str]
) -> tuple[fakeslack.GroundTruth, str, fakeslack.GroundTruth]:
    """The ground truth, the channel `pick` chooses from it, and the ground truth of every other
    channel in scope."""
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    victim = pick(truth)
    others = fakeslack.ground_truth(
        ws, DAYS, now=ws.now, channel_ids=[c for c in truth.channels_in_scope if c != victim]
    )
    return truth, victim, others


async def test_engine_transient_malformed_answers_store_everything(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    truth = fakeslack.ground_truth(ws, DAYS, now=ws.now)
    victim, replies_victim = busiest(truth), threaded(truth)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        faults = fake.faults
        faults.malformed(HISTORY, channel=victim, count=2)  # {"ok": true}: the answer
        faults.malformed(HISTORY, channel=victim, count=1, replace={"has_more": "true"})
        faults.truncated(HISTORY, channel=victim, count=1)
        faults.malformed(REPLIES, channel=replies_victim, count=1, drop=["messages"])
        faults.non_json(REPLIES, count=1)
        faults.malformed("users.list", count=1, replace={"members": None})
        faults.truncated("conversations.list", count=1)
        gateway = make_gateway(fake)
        result = await run_engine(fake, stores, ws, gateway)
        assert result.error is None and result.ok
        assert fake.faults.snapshot()["pending"] == [], "some fault was never hit"
        assert gateway.stats().malformed == 8
        stored = set(await stored_rows(stores, ws.team_id))
        assert {k for k in stored if k[0] == victim} == {
            k for k in truth.must_store if k[0] == victim
        }
        assert stored == truth.must_store
        assert result.channels_processed == len(truth.channels_in_scope)


async def test_engine_persistent_malformed_history_fails_that_channel_and_the_run(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    truth, victim, others = victim_and_others(ws, busiest)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        fake.faults.malformed(HISTORY, channel=victim, count=None)
        result = await run_engine(fake, stores, ws)
        # Not a success with a silently short count: the run failed, retryably, and says why.
        assert not result.ok and not result.cancelled
        assert result.error == MALFORMED and result.error_kind == "transient"
        reasons = {c: why for c, _, why in result.channels_skipped}
        assert victim in reasons
        assert "malformed" in reasons[victim] and "messages is missing" in reasons[victim]
        victim_calls = [c for c in fake.calls_of(HISTORY) if c.args["channel"] == victim]
        assert len(victim_calls) == 6  # every attempt, then no more
        # Every other channel is stored in full and counted; the victim is not counted.
        stored = set(await stored_rows(stores, ws.team_id))
        assert stored == others.must_store
        assert result.channels_processed == len(truth.channels_in_scope) - 1


async def test_engine_persistent_malformed_replies_fail_that_channel(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    truth, victim, others = victim_and_others(ws, threaded)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        fake.faults.truncated(REPLIES, channel=victim, count=None)
        result = await run_engine(fake, stores, ws)
        assert result.error == MALFORMED and result.error_kind == "transient"
        reasons = {c: why for c, _, why in result.channels_skipped}
        assert "not complete JSON" in reasons[victim]
        stored = set(await stored_rows(stores, ws.team_id))
        assert others.must_store <= stored
        assert {k for k in stored if k[0] == victim} < {
            k for k in truth.must_store if k[0] == victim
        }


async def test_engine_persistent_malformed_setup_answer_fails_the_run(
    database_url: str, tmp_path: Path
) -> None:
    ws = small_workspace(seed=5)
    async with slack_and_stores(ws, database_url, tmp_path) as (fake, stores):
        fake.faults.malformed("users.list", count=None, body={"ok": True})
        result = await run_engine(fake, stores, ws)
        assert result.error == MALFORMED and result.error_kind == "transient"
        assert fake.calls_of(HISTORY) == []


async def test_run_service_reports_a_malformed_channel_as_a_failed_run(
    database_url: str, tmp_path: Path
) -> None:
    """Through RunService: the stored run is `failed` (not `success`), its message and the
    skipped channel's reason say Slack's answer was malformed, and the admin's DM says failed."""
    ws = small_workspace(seed=5)
    user = first_member(ws)
    async with slack_node(ws, database_url, tmp_path) as (fake, node):
        truth = fakeslack.ground_truth(ws, 1, now=ws.now)
        victim = busiest(truth)
        fake.faults.malformed(HISTORY, channel=victim, count=None)
        row = await node.service.start_manual(ws.team_id, user, days=1)
        await node.service.wait_idle(timeout=120)
        done = await node.service.get(row.job_run_id)
        assert done is not None and done.status == "failed"
        assert done.error_message is not None and MALFORMED in done.error_message
        assert "Slack's answers were malformed" in done.error_message
        reasons = {c: why for c, _, why in done.channels_skipped}
        assert "malformed" in reasons[victim]
        assert done.channels_processed == len(truth.channels_in_scope) - 1
        summary = fake.dms(user)[-1]
        words = json.dumps(summary.get("blocks")) + " " + str(summary.get("text"))
        assert "failed" in words.lower() and MALFORMED in words
