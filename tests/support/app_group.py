"""Real `python -m app run` processes of one test on one database and one fakeslack, and what the
tests read from outside them: a reader of the database on its own loop, a patient wait that shows
the apps' output when it gives up, and the pid in an owner name."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text

from db.session import create_engine, make_sessionmaker
from fakeslack import FakeSlack
from scheduler.process_identity import parse_owner
from tests.support.app_process import AppProcess, app_settings, new_workdir

T = TypeVar("T")


class OutsideReader:
    """Reads from outside the apps, on one open connection pool (a poll costs a query, not a
    connection) and a loop of its own (the tests are synchronous)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._engine = create_engine(url)
        self.sessions = make_sessionmaker(self._engine)

    def read(self, query: Callable[[], Awaitable[T]]) -> T:
        return self._loop.run_until_complete(query())

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async def read() -> list[dict[str, Any]]:
            async with self.sessions() as session:
                result = await session.execute(text(sql), params)
                return [dict(r._mapping) for r in result]

        return self.read(read)

    def close(self) -> None:
        self._loop.run_until_complete(self._engine.dispose())
        self._loop.close()


class AppGroup:
    """The app processes of one test (one host, one database), stopped and cleaned up at the end,
    their output at hand for failure messages."""

    def __init__(self, fake: FakeSlack, database_url: str, chroma: Path | None = None) -> None:
        self.fake, self.database_url, self.chroma = fake, database_url, chroma
        self.started: list[AppProcess] = []
        self.workdirs: list[Path] = []

    def start(self, chroma: Path | None = None) -> AppProcess:
        """A new app process (not waited for: `wait_healthy()` when the test needs it)."""
        workdir = new_workdir()
        self.workdirs.append(workdir)
        fake = self.fake
        settings = app_settings(fake.base_url, fake.bot_token, fake.signing_secret, workdir)
        settings.update(DATABASE_URL=self.database_url, LOG_LEVEL="INFO")
        store = chroma or self.chroma
        if store is not None:
            settings["CHROMA_PATH"] = str(store)
        app = AppProcess(settings, workdir)
        self.started.append(app)
        return app

    def outputs(self) -> str:
        return "\n".join(f"--- app {a.proc.pid} ---\n{a.output()[-4000:]}" for a in self.started)

    def stop_all(self) -> None:
        for app in self.started:
            app.stop()
        for workdir in self.workdirs:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_for(
    check: Callable[[], T | None],
    what: str,
    apps: AppGroup,
    timeout: float,
    interval: float = 0.05,
) -> T:
    """`check()`'s first truthy result; past `timeout`, a failure naming `what` with the apps'
    output."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}\n{apps.outputs()}"
            )
        time.sleep(interval)


def pid_of(owner: str | None) -> int | None:
    """The pid in a process owner name (`scheduler.process_identity`), None if it has none."""
    name = None if owner is None else parse_owner(owner)
    return None if name is None else name.pid
