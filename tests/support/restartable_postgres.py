"""A private PostgreSQL server that a test may stop and start again (`pg_ctl stop -m fast`, then
start on the same port and data directory), to play a database outage. The session-wide server
of `servers.postgres_server` is shared by every test and must never stop; this one is the
test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import (
    INITDB_OPTIONS,
    ServerUnavailable,
    _as_postgres_user,
    _postgres_bin_dir,
    free_port,
)


class RestartablePostgres:
    """One cluster on loopback; `url` stays valid across `stop()` and `start()`."""

    def __init__(self) -> None:
        self._bindir = _postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="backfill-pg-outage-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.port = free_port()
        self.base_url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"
        self._run("initdb", "-D", str(self.data), *INITDB_OPTIONS)

    @property
    def url(self) -> str:
        """The `postgres` database of the cluster (SQLAlchemy URL)."""
        return f"{self.base_url}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        try:
            subprocess.run(
                _as_postgres_user([str(self._bindir / tool), *args]),
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            stderr = getattr(exc, "stderr", b"") or b""
            raise ServerUnavailable(
                f"{tool} failed: {stderr.decode(errors='replace')} {log[-2000:]}"
            ) from exc

    def start(self) -> None:
        opts = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: sessions are cut (admin shutdown), new connections refused."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def close(self) -> None:
        subprocess.run(
            _as_postgres_user(
                [str(self._bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A started private cluster, removed on exit (stopped first if it is running)."""
    server = RestartablePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()
