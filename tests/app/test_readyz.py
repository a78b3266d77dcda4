"""`GET /readyz`: 200 while the database and the vector store answer (and, in Socket Mode, the
socket is connected); 503 naming what failed, in plain words and without secrets, otherwise.
`/healthz` stays 200 throughout: the process is alive."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from app.http_server import build_web_app
from app.readiness import Readiness
from db.session import create_engine
from fakeslack import FakeSlack
from tests.conftest import create_postgres_database
from tests.scenarios.harness import Scenario, start_scenario
from tests.support.app_process import AppProcess, app_on
from tests.support.servers import ServerUnavailable, chroma_server, free_port, postgres_server


async def get(s: Scenario, path: str) -> tuple[int, dict[str, Any]]:
    async with s.http.get(f"http://127.0.0.1:{s.rt.port}{path}") as resp:
        return resp.status, await resp.json()


async def wait_status(s: Scenario, status: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got, body = await get(s, "/readyz")
        if got == status:
            return body
        assert time.monotonic() < deadline, f"/readyz stayed {got}: {body}"
        await asyncio.sleep(0.2)


async def test_readyz_is_200_when_the_database_and_the_vector_store_answer(
    database_url: str,
    tmp_path: Path,
) -> None:
    async with start_scenario(database_url, tmp_path, messages=50) as s:
        status, body = await get(s, "/readyz")
        assert status == 200 and body == {"status": "ready", "mode": "http"}
        assert (await get(s, "/healthz"))[0] == 200


class Answers:
    async def ping(self) -> None:
        return None


async def test_readyz_names_the_database_when_it_cannot_be_reached() -> None:
    """A PostgreSQL URL with a password, on a port where nothing listens."""
    url = f"postgresql+asyncpg://backfill:s3cret-pw@127.0.0.1:{free_port()}/backfill"
    engine = create_engine(url)
    try:
        web_app = build_web_app(None, mode="socket", readiness=Readiness(engine, Answers()))
        async with TestClient(TestServer(web_app)) as client:
            response = await client.get("/readyz")
            text = await response.text()
            assert response.status == 503
            body = await response.json()
            assert body["status"] == "not ready"
            [problem] = body["problems"]
            assert "database" in problem
            assert "s3cret-pw" not in text and "127.0.0.1" not in text
            assert (await client.get("/healthz")).status == 200
    finally:
        await engine.dispose()


@contextmanager
def private_server(
    server: AbstractContextManager[str], what: str
) -> Iterator[tuple[str, Callable[[], None]]]:
    """A server of the test's own (the test is skipped when it cannot start): its address, and a
    function that stops it. Stopped on exit unless the test already did."""
    try:
        address = server.__enter__()
    except ServerUnavailable as exc:
        pytest.skip(f"{what} unavailable: {exc}")
    stopped = False

    def stop() -> None:
        nonlocal stopped
        server.__exit__(None, None, None)
        stopped = True

    try:
        yield address, stop
    finally:
        if not stopped:
            server.__exit__(None, None, None)


async def test_readyz_is_503_naming_the_database_while_postgresql_is_stopped(
    tmp_path: Path,
) -> None:
    """A private PostgreSQL the test stops under the running app."""
    with private_server(postgres_server(), "PostgreSQL") as (base, stop):
        url = create_postgres_database(base)
        async with start_scenario(url, tmp_path, messages=50) as s:
            await wait_status(s, 200)
            stop()
            body = await wait_status(s, 503)
            assert any("database" in problem for problem in body["problems"]), body
            assert not any("vector store" in problem for problem in body["problems"]), body
            assert (await get(s, "/healthz"))[0] == 200


async def test_readyz_is_503_naming_the_vector_store_while_chroma_is_down(
    tmp_path: Path,
) -> None:
    """A private Chroma server the test stops under the running app."""
    with private_server(chroma_server(), "Chroma server") as (chroma, stop):
        async with start_scenario(
            f"sqlite+aiosqlite:///{tmp_path}/backfill.db", tmp_path, messages=50, CHROMA_URL=chroma
        ) as s:
            await wait_status(s, 200)
            stop()
            body = await wait_status(s, 503)
            assert body["problems"] and all("vector store" in p for p in body["problems"]), body
            assert chroma not in str(body)
            assert (await get(s, "/healthz"))[0] == 200


# -- Socket Mode: the HTTP health server also requires the socket to be connected ---------------


def readyz(proc: AppProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{proc.url}/readyz", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def wait_readyz(proc: AppProcess, status: int, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        got, body = readyz(proc)
        if got == status:
            return body
        assert time.monotonic() < deadline, f"/readyz stayed {got}: {body}"
        time.sleep(0.2)


def test_readyz_in_socket_mode_requires_the_socket_to_be_connected(fake: FakeSlack) -> None:
    with app_on(fake, socket_mode=True) as proc:
        try:
            assert '"mode": "socket"' in wait_readyz(proc, 200)
            # Slack refuses new socket URLs and closes the open socket: not ready, still alive.
            fake.faults.api_error("internal_error", count=10_000, method="apps.connections.open")
            fake.request_disconnect("refresh_requested", close_after=0)
            body = wait_readyz(proc, 503)
            assert "Socket Mode" in body and "database" not in body
            with urllib.request.urlopen(f"{proc.url}/healthz", timeout=5) as resp:
                assert resp.status == 200
            fake.faults.clear()
            wait_readyz(proc, 200, timeout=90)
        finally:
            fake.faults.clear()


async def test_readyz_in_socket_mode_is_503_until_the_socket_is_open() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    readiness = Readiness(engine, Answers(), socket_mode=True)
    connected = [False]

    async def is_connected() -> bool:
        return connected[0]

    try:
        web_app = build_web_app(None, mode="socket", readiness=readiness)
        async with TestClient(TestServer(web_app)) as client:
            response = await client.get("/readyz")
            assert response.status == 503
            assert (await response.json())["problems"] == [
                "the Socket Mode connection to Slack is not open yet"
            ]
            readiness.socket_connected = is_connected
            response = await client.get("/readyz")
            assert response.status == 503
            assert "not connected" in (await response.json())["problems"][0]
            connected[0] = True
            response = await client.get("/readyz")
            assert response.status == 200
            assert await response.json() == {"status": "ready", "mode": "socket"}
    finally:
        await engine.dispose()
