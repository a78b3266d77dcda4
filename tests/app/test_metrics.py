"""`GET /metrics`: the running app (HTTP mode, then Socket Mode) against fakeslack, scraped after a
run and parsed with prometheus_client's own parser; the counters must match what the run did and
what fakeslack saw."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.runtime import running_app
from fakeslack import FakeSlack, generate
from tests.scenarios.harness import scenario_settings, start_scenario

# Methods only the engine calls (the listeners and DMs use users.info, auth.test, chat.*).
ENGINE_ONLY = ("conversations.list", "conversations.history", "conversations.replies")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/backfill.db"


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample by its name (suffixes like `_total` and `_count` included)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(
        v for have, v in found.get(name, []) if all(have.get(k) == x for k, x in labels.items())
    )


async def scrape(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def test_metrics_count_what_a_run_did(sqlite_url: str, tmp_path: Path) -> None:
    async with start_scenario(sqlite_url, tmp_path) as s:
        # One 429 and one 503 on history: both retried, both counted by outcome.
        s.fake.faults.ratelimit_burst(count=1, retry_after=1, method="conversations.history")
        s.fake.faults.http_error(503, count=1, method="conversations.history")
        seen = await s.command("run days=3", s.admin)
        assert seen.status == 200
        done = await s.wait_run_status(1, "success")
        await s.idle()
        found = samples(await scrape(s.http, s.rt.port))

    counters = s.fake.counters
    for method in ENGINE_ONLY:
        assert value(found, "backfill_slack_calls_total", method=method) == (
            counters.get(method, {}).get("calls", 0)
        ), method
    history = counters["conversations.history"]
    assert history["calls"] > 0 and history["ratelimited"] == 1
    assert value(found, "backfill_slack_calls_total", method="conversations.history", outcome="ok")
    assert (
        value(
            found,
            "backfill_slack_calls_total",
            method="conversations.history",
            outcome="rate_limited",
        )
        == 1
    )
    assert (
        value(
            found, "backfill_slack_calls_total", method="conversations.history", outcome="transient"
        )
        == 1
    )
    assert value(found, "backfill_http_429_total", method="conversations.history") == 1
    assert value(found, "backfill_http_429_total") == 1
    # Every method the engine called was also seen by fakeslack, at least as often.
    for labels, count in found["backfill_slack_calls_total"]:
        assert count <= counters[labels["method"]]["calls"], labels
    assert value(found, "backfill_rate_limit_wait_seconds_total") > 0  # Retry-After, paced calls

    assert value(found, "backfill_runs_total", job_type="manual", status="success") == 1
    assert value(found, "backfill_runs_total") == 1
    assert value(found, "backfill_run_duration_seconds_count", job_type="manual") == 1
    assert value(found, "backfill_run_duration_seconds_sum") > 0
    assert value(found, "backfill_messages_stored_total") == done["messages_collected"] > 0

    assert value(found, "backfill_request_seconds_count") >= 1  # the /backfill run command
    assert value(found, "backfill_vector_store_seconds_count", call="upsert") >= 1
    assert value(found, "backfill_vector_store_seconds_sum", call="upsert") > 0


async def test_metrics_requests_histogram_counts_every_request(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with start_scenario(sqlite_url, tmp_path, messages=50) as s:
        for _ in range(3):
            await s.command("help", s.admin)
        found = samples(await scrape(s.http, s.rt.port))
    assert value(found, "backfill_request_seconds_count") >= 3
    buckets = {labels["le"]: v for labels, v in found["backfill_request_seconds_bucket"]}
    assert buckets["+Inf"] == value(found, "backfill_request_seconds_count")


async def test_metrics_are_served_in_socket_mode(sqlite_url: str, tmp_path: Path) -> None:
    fake = FakeSlack(generate(seed=3, users=8, channels=2, messages=20, days=5))
    await fake.start()
    try:
        settings = scenario_settings(fake, sqlite_url, tmp_path, SLACK_APP_TOKEN=fake.app_token)
        assert settings.socket_mode
        async with (
            running_app(settings, rate_minute_seconds=1.0) as rt,
            aiohttp.ClientSession() as http,
        ):
            found = samples(await scrape(http, rt.port))
            async with http.post(f"http://127.0.0.1:{rt.port}/slack/events") as resp:
                assert resp.status in (404, 405)  # Socket Mode serves no Slack requests over HTTP
    finally:
        await fake.stop()
    for name in ("backfill_runs_total", "backfill_request_seconds_count"):
        assert value(found, name) == 0, name
    assert "backfill_rate_limit_wait_seconds_total" in found


async def test_metrics_registries_of_two_apps_stay_apart() -> None:
    from app.metrics import Metrics

    first, second = Metrics(), Metrics()
    first.on_slack_call("conversations.history", "ok")
    first.on_slack_call("conversations.history", "rate_limited")
    first.on_vector_call("upsert", 0.2)
    one, two = samples(first.exposition().decode()), samples(second.exposition().decode())
    assert value(one, "backfill_slack_calls_total", method="conversations.history") == 2
    assert value(one, "backfill_http_429_total") == 1
    assert value(one, "backfill_vector_store_seconds_count", call="upsert") == 1
    assert value(two, "backfill_slack_calls_total") == 0


async def test_metrics_gateway_observer_hears_each_attempt_by_outcome() -> None:
    from app.metrics import Metrics
    from scheduler.backfill.errors import ChannelUnavailable
    from scheduler.backfill.gateway import SlackGateway

    metrics = Metrics()
    workspace = generate(seed=5, users=4, channels=2, messages=10, days=3)
    async with FakeSlack(workspace, rate_limits=False) as fake:

        async def no_sleep(_: float) -> None:
            return None

        gateway = SlackGateway(
            fake.bot_token,
            base_url=fake.base_url,
            sleep=no_sleep,
            rand=lambda: 0.0,
            observer=metrics.on_slack_call,
        )
        fake.faults.http_error(500, count=1, method="auth.test")
        await gateway.auth_test()
        fake.faults.api_error("channel_not_found", method="conversations.info")
        with pytest.raises(ChannelUnavailable):
            await gateway.channel_info("C0NOWHERE")
    found = samples(metrics.exposition().decode())
    assert value(found, "backfill_slack_calls_total", method="auth.test", outcome="transient") == 1
    assert value(found, "backfill_slack_calls_total", method="auth.test", outcome="ok") == 1
    assert (
        value(
            found,
            "backfill_slack_calls_total",
            method="conversations.info",
            outcome="channel_not_found",
        )
        == 1
    )
    assert value(found, "backfill_http_429_total") == 0
