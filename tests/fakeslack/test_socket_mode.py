"""fakeslack's Socket Mode against slack_sdk's real aiohttp `SocketModeClient`: the token rules of
`apps.connections.open`, hello, envelopes and acks, ping/pong, disconnect and reconnect, several
connections, and the thread-mode (sync) API."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace, generate
from fakeslack.socket_mode import SocketModeTimeout
from fakeslack.spec import APP_LEVEL_METHODS, METHODS, TIER_PER_MINUTE
from tests.support.reference import require_reference

Listener = Callable[[AsyncBaseSocketModeClient, SocketModeRequest], Awaitable[None]]


async def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Clients:
    """Real SocketModeClients against the fake, closed at teardown; each keeps what it received."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.made: list[SocketModeClient] = []
        self.messages: dict[int, list[dict[str, Any]]] = {}

    async def connect(
        self,
        listener: Listener | None = None,
        *,
        token: str | None = None,
        ping_interval: float = 0.5,
    ) -> SocketModeClient:
        web = AsyncWebClient(base_url=self.fake.base_url)
        client = SocketModeClient(
            app_token=token or self.fake.app_token, web_client=web, ping_interval=ping_interval
        )
        self.made.append(client)
        received = self.messages.setdefault(id(client), [])

        async def keep(message: aiohttp.WSMessage) -> None:
            # Raw frames: `message_listeners` never see `disconnect` (the SDK handles it first).
            received.append(json.loads(message.data))

        client.on_message_listeners.append(keep)
        if listener is not None:
            client.socket_mode_request_listeners.append(listener)
        await client.connect()
        return client

    def received(self, client: SocketModeClient, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages[id(client)] if m.get("type") == kind]

    async def close(self) -> None:
        for client in self.made:
            await client.close()


@pytest.fixture
async def clients(fake: FakeSlack) -> AsyncIterator[Clients]:
    made = Clients(fake)
    try:
        yield made
    finally:
        await made.close()


async def ack_with(payload: dict[str, Any] | None) -> Listener:
    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id, payload))

    return listener


def slash_payload(fake: FakeSlack, text: str = "help") -> dict[str, Any]:
    return {
        "token": "deprecated-verification-token",
        "team_id": fake.team_id,
        "team_domain": "fake",
        "channel_id": "C0FAKE",
        "channel_name": "general",
        "user_id": "U0FAKE",
        "user_name": "someone",
        "command": "/backfill",
        "text": text,
        "api_app_id": fake.workspace.app_id,
        "is_enterprise_install": "false",
        "response_url": fake.new_response_url("U0FAKE", "C0FAKE"),
        "trigger_id": fake.new_trigger_id("U0FAKE"),
    }


# -- apps.connections.open ---------------------------------------------------------------------
async def test_apps_connections_open_answers_a_websocket_url_and_is_recorded(
    fake: FakeSlack,
) -> None:
    web = AsyncWebClient(base_url=fake.base_url)
    response = await web.apps_connections_open(app_token=fake.app_token)
    assert response["ok"] is True
    assert response["url"].startswith(f"ws://127.0.0.1:{fake.port}/_fake/socket/")
    assert f"app_id={fake.workspace.app_id}" in response["url"]
    assert response.headers["X-OAuth-Scopes"] == "connections:write"
    [call] = fake.calls_of("apps.connections.open")
    assert call.ok is True and call.status == 200
    assert fake.app_token not in json.dumps(call.to_dict())  # the token is never recorded
    assert fake.counters["apps.connections.open"]["ok"] == 1
    # Each call gives a different URL.
    again = await web.apps_connections_open(app_token=fake.app_token)
    assert again["url"] != response["url"]


async def test_apps_connections_open_matches_the_reference(fake: FakeSlack) -> None:
    ref_path = require_reference("slack-api-ref-methods", "apps.connections.open.json")
    ref = json.loads(ref_path.read_text())
    spec = APP_LEVEL_METHODS["apps.connections.open"]
    assert spec.tier == ref["rate_limits"] == "t3"
    assert "apps.connections.open" not in METHODS  # the bot-token surface stays as it was
    response = await AsyncWebClient(base_url=fake.base_url).apps_connections_open(
        app_token=fake.app_token
    )
    assert isinstance(response.data, dict)
    body = response.data
    for key in ref["output"]["required"]:
        assert key in body
    example = ref["examples"]["success"]["example"]
    assert {k: type(v) for k, v in body.items()} == {k: type(v) for k, v in example.items()}


async def test_token_rules_of_apps_connections_open(fake: FakeSlack) -> None:
    web = AsyncWebClient(base_url=fake.base_url)
    fake.add_app_token("xapp-1-A0OTHER-1-noscope", scopes=set())

    async def error_of(call: Awaitable[Any]) -> str:
        with pytest.raises(SlackApiError) as info:
            await call
        return str(info.value.response["error"])

    assert await error_of(web.apps_connections_open(app_token=fake.bot_token)) == (
        "not_allowed_token_type"
    )
    assert await error_of(web.apps_connections_open(app_token="xapp-1-A0NOPE-1-wrong")) == (
        "invalid_auth"
    )
    assert await error_of(web.apps_connections_open(app_token="xapp-1-A0OTHER-1-noscope")) == (
        "missing_scope"
    )
    assert await error_of(web.api_call("apps.connections.open")) == "not_authed"
    # An app-level token opens connections and nothing else.
    assert (
        await error_of(
            AsyncWebClient(token=fake.app_token, base_url=fake.base_url).conversations_list()
        )
        == "not_allowed_token_type"
    )
    errors = [c.error for c in fake.calls_of("apps.connections.open")]
    assert errors == ["not_allowed_token_type", "invalid_auth", "missing_scope", "not_authed"]


async def test_socket_mode_client_with_a_bot_token_fails_to_connect(fake: FakeSlack) -> None:
    client = SocketModeClient(
        app_token=fake.bot_token, web_client=AsyncWebClient(base_url=fake.base_url)
    )
    try:
        with pytest.raises(SlackApiError) as info:
            await client.issue_new_wss_url()
        assert info.value.response["error"] == "not_allowed_token_type"
    finally:
        await client.close()
    assert fake.socket_connections == 0


async def test_apps_connections_open_is_tier_3(workspace: Workspace) -> None:
    async with FakeSlack(workspace, rate_limits=True) as fake:
        web = AsyncWebClient(base_url=fake.base_url)
        web.retry_handlers.clear()
        for _ in range(TIER_PER_MINUTE["t3"]):
            await web.apps_connections_open(app_token=fake.app_token)
        with pytest.raises(SlackApiError) as info:
            await web.apps_connections_open(app_token=fake.app_token)
        assert info.value.response.status_code == 429
        assert int(info.value.response.headers["Retry-After"]) >= 1


async def test_a_websocket_url_is_good_for_one_connection(fake: FakeSlack) -> None:
    url = (
        await AsyncWebClient(base_url=fake.base_url).apps_connections_open(app_token=fake.app_token)
    )["url"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["type"] == "hello"
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(url)
            assert info.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url.replace("/_fake/socket/", "/_fake/socket/0"))


# -- the connection ----------------------------------------------------------------------------
async def test_connect_gets_hello_and_pings_are_ponged(fake: FakeSlack, clients: Clients) -> None:
    client = await clients.connect()
    await until(lambda: clients.received(client, "hello"))
    [hello] = clients.received(client, "hello")
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": fake.workspace.app_id}
    assert isinstance(hello["debug_info"], dict) and "host" in hello["debug_info"]
    assert fake.socket_connections == 1
    assert len(fake.calls_of("apps.connections.open")) == 1
    # The SDK pings right after connecting (`sdk-ping-pong:<t>`) and reads <t> back from the pong.
    [conn] = fake.socket.live()
    await until(lambda: conn.pings and client.last_ping_pong_time is not None)
    first = conn.pings[0].decode()
    assert first.startswith("sdk-ping-pong:")
    await until(lambda: client.last_ping_pong_time == float(conn.pings[-1].decode().split(":")[1]))
    assert await client.is_connected()


async def test_slash_command_envelope_reaches_the_listener_and_the_ack_is_recorded(
    fake: FakeSlack, clients: Clients
) -> None:
    seen: list[SocketModeRequest] = []

    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        seen.append(req)
        body = {"response_type": "ephemeral", "text": f"you said {req.payload.get('text')}"}
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id, body))

    await clients.connect(listener)
    payload = slash_payload(fake, "help")
    before = time.time()
    ack = await fake.deliver("slash_commands", payload, timeout=5)
    [req] = seen
    assert req.type == "slash_commands" and req.payload == payload
    assert req.accepts_response_payload is True
    assert req.retry_attempt is None  # only events_api envelopes carry retry fields
    assert ack["envelope_id"] == req.envelope_id and ack["type"] == "slash_commands"
    assert ack["payload"] == {"response_type": "ephemeral", "text": "you said help"}
    assert before <= ack["t_wall"] <= time.time() and 0 <= ack["latency"] < 5
    assert ack["known"] is True and ack["connection_id"] == ack["delivered_to"]
    assert fake.socket_acks == [ack]
    [sent] = fake.socket.envelopes
    assert sent["envelope"]["envelope_id"] == req.envelope_id


async def test_events_api_envelope_has_retry_fields_and_a_bare_ack(
    fake: FakeSlack, clients: Clients
) -> None:
    seen: list[SocketModeRequest] = []

    async def listener(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        seen.append(req)
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))

    await clients.connect(listener)
    event = {
        "type": "event_callback",
        "team_id": fake.team_id,
        "event_id": "Ev01",
        "event": {"type": "app_home_opened", "user": "U0FAKE", "tab": "home"},
    }
    ack = await fake.deliver("events_api", event, retry_attempt=1, retry_reason="timeout")
    [req] = seen
    assert (req.type, req.accepts_response_payload) == ("events_api", False)
    assert (req.retry_attempt, req.retry_reason) == (1, "timeout")
    assert ack["payload"] is None
    # Interactive: accepts a response payload for view submissions, not for button clicks.
    await fake.deliver("interactive", {"type": "block_actions", "actions": []})
    await fake.deliver("interactive", {"type": "view_submission", "view": {}})
    assert [r.accepts_response_payload for r in seen[1:]] == [False, True]


async def test_deliver_times_out_without_ack_or_connection(
    fake: FakeSlack, clients: Clients
) -> None:
    with pytest.raises(SocketModeTimeout):
        await fake.deliver("slash_commands", slash_payload(fake), timeout=0.2)

    async def silent(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        return None

    await clients.connect(silent)
    with pytest.raises(SocketModeTimeout):
        await fake.deliver("slash_commands", slash_payload(fake), timeout=0.3)
    assert fake.socket_acks == []
    with pytest.raises(ValueError):
        await fake.deliver("message", {})


async def test_disconnect_makes_the_client_reconnect_through_a_new_url(
    fake: FakeSlack, clients: Clients
) -> None:
    client = await clients.connect(await ack_with({"text": "ok"}))
    await until(lambda: fake.socket_connections == 1)
    [first] = fake.socket.live()
    await fake.socket.disconnect("refresh_requested")
    await until(lambda: clients.received(client, "disconnect"))
    assert clients.received(client, "disconnect")[0]["reason"] == "refresh_requested"
    await until(lambda: len(fake.calls_of("apps.connections.open")) == 2)
    await until(lambda: any(c.id != first.id for c in fake.socket.live()))
    await until(lambda: not first.open)  # the client left, or the server closed it after grace
    [second] = fake.socket.live()
    assert second.id != first.id and len(clients.received(client, "hello")) == 2
    ack = await fake.deliver("slash_commands", slash_payload(fake))
    assert ack["connection_id"] == second.id and ack["payload"] == {"text": "ok"}


async def test_server_close_makes_the_client_reconnect(fake: FakeSlack, clients: Clients) -> None:
    client = await clients.connect(await ack_with(None))
    await until(lambda: fake.socket_connections == 1)
    [first] = fake.socket.live()
    await first.ws.close()
    await until(lambda: len(clients.received(client, "hello")) == 2)
    assert len(fake.calls_of("apps.connections.open")) == 2
    assert (await fake.deliver("events_api", {"type": "event_callback"}))["payload"] is None


async def test_several_connections_take_turns_and_the_limit_is_enforced(
    fake: FakeSlack, clients: Clients
) -> None:
    one = await clients.connect(await ack_with({"from": "one"}))
    await until(lambda: clients.received(one, "hello"))
    two = await clients.connect(await ack_with({"from": "two"}))
    await until(lambda: clients.received(two, "hello"))
    assert clients.received(two, "hello")[0]["num_connections"] == 2
    assert fake.socket_connections == 2
    froms = {
        (await fake.deliver("slash_commands", slash_payload(fake)))["payload"]["from"]
        for _ in range(4)
    }
    assert froms == {"one", "two"}

    fake.socket.max_connections = 2
    url = (
        await AsyncWebClient(base_url=fake.base_url).apps_connections_open(app_token=fake.app_token)
    )["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        message = await ws.receive_json(timeout=5)
        assert message["type"] == "disconnect" and message["reason"] == "too_many_websockets"
        assert (await ws.receive(timeout=5)).type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
        )
    assert fake.socket_connections == 2


async def test_http_control_routes_deliver_and_report(fake: FakeSlack, clients: Clients) -> None:
    await clients.connect(await ack_with({"text": "pong"}))
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{fake.url}/_fake/socket_mode/deliver",
            json={"type": "slash_commands", "payload": slash_payload(fake)},
        ) as resp:
            body = await resp.json()
        assert resp.status == 200 and body["ack"]["payload"] == {"text": "pong"}
        async with session.get(f"{fake.url}/_fake/socket_mode") as resp:
            state = await resp.json()
        assert state["open"] == 1 and len(state["acks"]) == 1


# -- thread mode ---------------------------------------------------------------------------------
def test_thread_mode_sync_api() -> None:
    ws = generate(3, users=6, channels=3, messages=50, days=3)
    with FakeSlack(ws, rate_limits=False) as fake:
        with pytest.raises(SocketModeTimeout):
            fake.deliver_sync("slash_commands", {"text": "x"}, timeout=0.2)
        results: dict[str, Any] = {}

        async def app_side() -> None:
            client = SocketModeClient(
                app_token=fake.app_token,
                ping_interval=0.5,
                web_client=AsyncWebClient(base_url=fake.base_url),
            )
            client.socket_mode_request_listeners.append(await ack_with({"text": "hi"}))
            await client.connect()
            try:
                await until(lambda: results.get("done"), timeout=10)
            finally:
                await client.close()

        thread = threading.Thread(target=lambda: asyncio.run(app_side()))
        thread.start()
        try:
            assert fake.wait_socket_connections_sync(1, timeout=5) == 1
            assert fake.deliver_sync("slash_commands", {"text": "x"})["payload"] == {"text": "hi"}
            fake.request_disconnect()
            deadline = time.monotonic() + 5
            while len(fake.calls_of("apps.connections.open")) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            fake.wait_socket_connections_sync(1, timeout=5)
            assert fake.deliver_sync("slash_commands", {"text": "y"})["payload"] == {"text": "hi"}
            assert len(fake.calls_of("apps.connections.open")) == 2
        finally:
            results["done"] = True
            thread.join(10)
