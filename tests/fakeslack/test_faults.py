"""Fault injection, one test per kind: 5xx, 429 bursts, slow responses, connection resets, auth
failures from call K, channels deleted mid-run, ok:false internal_error, and their recording."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from tests.fakeslack.helpers import member_channel


async def _error(coro) -> SlackApiError:  # type: ignore[no-untyped-def]
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


async def test_http_500_and_503_for_a_method(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.faults.http_error(500, count=2, method="conversations.list")
    fake.faults.http_error(503, count=1)
    err = await _error(client.auth_test())  # the any-method 503
    assert err.response.status_code == 503 and err.response.data["error"] == "service_unavailable"
    assert fake.calls[-1].status == 503 and fake.calls[-1].error == "service_unavailable"
    for _ in range(2):
        err = await _error(client.conversations_list())
        assert err.response.status_code == 500
    assert (await client.conversations_list())["ok"]
    assert fake.counters["conversations.list"]["http_errors"] == 2


async def test_sdk_server_error_handler_retries_through_5xx(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    client.retry_handlers.append(AsyncServerErrorRetryHandler(max_retry_count=2))
    fake.faults.http_error(503, count=2, method="users.list")
    assert (await client.users_list())["ok"]
    assert [c.status for c in fake.calls_of("users.list")] == [503, 503, 200]


async def test_ratelimit_burst_with_retry_after(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.faults.ratelimit_burst(count=2, retry_after=7, method="conversations.history")
    ch_id = next(iter(fake.workspace.channels))
    err = await _error(client.conversations_history(channel=ch_id))
    assert err.response.status_code == 429 and err.response.headers["Retry-After"] == "7"
    assert err.response.data["error"] == "ratelimited"
    fake.faults.clear()
    fake.faults.ratelimit_burst(count=1, retry_after=1)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    assert (await client.auth_test())["ok"]
    assert fake.counters["auth.test"]["ratelimited"] == 1


async def test_slow_responses(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.faults.slow(0.4, method="users.list", count=1)
    t0 = time.monotonic()
    await client.users_list()
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    await client.users_list()
    assert time.monotonic() - t0 < 0.3
    # A client timeout shorter than the delay surfaces as a timeout.
    fake.faults.slow(2.0, method="auth.test", count=1)
    impatient = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url, timeout=1)
    with pytest.raises(asyncio.TimeoutError):
        await impatient.auth_test()


async def test_connection_reset_without_response(fake: FakeSlack) -> None:
    fake.faults.connection_reset(count=1, method="auth.test")
    bare = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
    bare.retry_handlers.clear()  # the default handler would retry a connection error once
    with pytest.raises(aiohttp.ClientError):
        await bare.auth_test()
    assert fake.calls[-1].status is None and fake.calls[-1].error == "connection_reset"
    assert (await bare.auth_test())["ok"]
    assert fake.counters["auth.test"]["resets"] == 1
    # With slack_sdk's default connection-error handler, one reset is invisible.
    fake.faults.connection_reset(count=1)
    default = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
    assert (await default.auth_test())["ok"]


@pytest.mark.parametrize("error", ["invalid_auth", "token_revoked"])
async def test_auth_failure_from_call_k(
    fake: FakeSlack, client: AsyncWebClient, error: str
) -> None:
    fake.faults.auth_failure(error, from_call=3)
    await client.auth_test()
    await client.users_list()
    for _ in range(2):
        assert (await _error(client.auth_test())).response.data["error"] == error


async def test_channel_deleted_after_k_history_calls(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace)
    fake.faults.delete_channel(ch.id, after_history_calls=2)
    page1 = await client.conversations_history(channel=ch.id, limit=5)
    await client.conversations_history(
        channel=ch.id, limit=5, cursor=page1["response_metadata"]["next_cursor"]
    )
    for call in (
        client.conversations_history(channel=ch.id, limit=5),
        client.conversations_info(channel=ch.id),
        client.conversations_replies(channel=ch.id, ts=ch.top.msgs[0]["ts"]),
    ):
        assert (await _error(call)).response.data["error"] == "channel_not_found"
    listed = (await client.conversations_list(types="public_channel,private_channel"))["channels"]
    assert ch.id not in {c["id"] for c in listed}


async def test_channel_deleted_immediately(
    fake: FakeSlack, client: AsyncWebClient, workspace: Workspace
) -> None:
    ch = member_channel(workspace, private=True)
    fake.faults.delete_channel(ch.id)
    assert (await _error(client.conversations_history(channel=ch.id))).response.data[
        "error"
    ] == "channel_not_found"


async def test_internal_error_is_ok_false_with_http_200(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.faults.api_error("internal_error", count=1, method="users.list")
    err = await _error(client.users_list())
    assert err.response.status_code == 200 and err.response.data == {
        "ok": False,
        "error": "internal_error",
    }
    assert (await client.users_list())["ok"]
    assert fake.counters["users.list"]["errors"] == 1


async def test_faults_over_http(fake: FakeSlack, client: AsyncWebClient) -> None:
    async with aiohttp.ClientSession() as http:
        specs = [
            {"kind": "http_error", "status": 503, "count": 1, "method": "auth.test"},
            {"kind": "auth", "error": "token_revoked", "from_call": 3},
        ]
        async with http.post(f"{fake.url}/_fake/faults", json=specs) as r:
            assert r.status == 200
    assert (await _error(client.auth_test())).response.status_code == 503
    assert (await client.auth_test())["ok"]
    assert (await _error(client.auth_test())).response.data["error"] == "token_revoked"
