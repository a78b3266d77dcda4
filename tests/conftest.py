"""Shared fixtures: a scrubbed environment, real PostgreSQL and Chroma servers, per-test databases."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.settings import ACCEPTED
from db.migrate import migrate
from db.session import create_engine, make_sessionmaker
from tests.support.restartable_postgres import RestartablePostgres, restartable_postgres
from tests.support.servers import ServerUnavailable, chroma_server, postgres_server

# Every setting the app reads (its `<NAME>_FILE` forms included): none may leak from the
# developer's shell into a test.
SETTINGS_ENV = tuple(ACCEPTED)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, exc: Exception) -> None:
    # In CI a missing server is a failure, never a silent skip.
    if _in_ci():
        pytest.fail(f"{what} is required in CI but could not be started: {exc}")
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(autouse=True)
def scrubbed_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    # Chroma must never phone home from tests.
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture(scope="session")
def _servers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _server_url(
    servers: ExitStack, given: str, start: Callable[[], AbstractContextManager[str]], what: str
) -> str:
    """The URL in the environment variable `given` (`.ci/run` started the server), or that of a
    server started for the session."""
    url = os.environ.get(given)
    if url:
        return url.rstrip("/")
    try:
        return servers.enter_context(start())
    except ServerUnavailable as exc:
        _unavailable(what, exc)
        raise


@pytest.fixture(scope="session")
def postgres_base_url(_servers: ExitStack) -> str:
    """`postgresql+asyncpg://user@host:port` of a running server (without a database name)."""
    return _server_url(_servers, "TEST_POSTGRES_URL", postgres_server, "PostgreSQL")


@pytest.fixture(scope="session")
def chroma_url(_servers: ExitStack) -> str:
    """`http://host:port` of a running Chroma server."""
    return _server_url(_servers, "TEST_CHROMA_URL", chroma_server, "Chroma server")


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[RestartablePostgres]:
    """A PostgreSQL server of the test module's own, which its tests may stop and start again
    (one per module: `initdb` takes seconds)."""
    try:
        with restartable_postgres() as server:
            yield server
    except ServerUnavailable as exc:
        _unavailable("PostgreSQL", exc)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The SQLAlchemy engine of a migrated test database (SQLite, then PostgreSQL)."""
    await migrate(database_url)
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on the migrated test database."""
    return make_sessionmaker(engine)


def _run_isolated(coro_factory: object) -> None:
    """Run a coroutine on a private loop in a thread, whatever loop the test is on."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro_factory())  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def create_postgres_database(base_url: str) -> str:
    """Create an empty database on the server and return its SQLAlchemy URL."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = base_url.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"

    async def create() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_isolated(create)
    return f"{base_url}/{name}"


@pytest.fixture
def postgres_url(postgres_base_url: str) -> str:
    """A fresh, empty PostgreSQL database for this test."""
    return create_postgres_database(postgres_base_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """An empty database for this test, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/backfill.db"
    return request.getfixturevalue("postgres_url")
