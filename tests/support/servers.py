"""Start real PostgreSQL and Chroma servers on loopback for the test session.

`.ci/run` may start them and pass `TEST_POSTGRES_URL` / `TEST_CHROMA_URL`; otherwise
the tests start their own. With `CI=true` a server that cannot start fails the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# initdb for a throwaway cluster: the `postgres` superuser, no passwords, UTF-8, and no wait
# for the files to reach the disk.
INITDB_OPTIONS = ("-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")


class ServerUnavailable(RuntimeError):
    """A test server could not be started on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_bin_dir() -> Path:
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(os.path.realpath(pg_ctl)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise ServerUnavailable(
            "PostgreSQL binaries (pg_ctl) not found; apt-get install postgresql"
        )
    return Path(candidates[-1]).parent


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield `postgresql+asyncpg://postgres@127.0.0.1:PORT` for a throwaway cluster."""
    bindir = _postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="backfill-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = free_port()
    try:
        subprocess.run(
            _as_postgres_user([str(bindir / "initdb"), "-D", str(data), *INITDB_OPTIONS]),
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    opts,
                    "-l",
                    str(root / "log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        raise ServerUnavailable(
            f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')} {log}"
        ) from exc
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,  # already stopped is fine
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def chroma_server() -> Iterator[str]:
    """Yield `http://127.0.0.1:PORT` of a `chroma run` server on a temp directory."""
    chroma = shutil.which("chroma") or str(Path(os.sys.executable).parent / "chroma")
    if not Path(chroma).exists():
        raise ServerUnavailable("the `chroma` CLI (from the chromadb package) was not found")
    root = Path(tempfile.mkdtemp(prefix="backfill-chroma-"))
    port = free_port()
    log = open(root / "log", "wb")  # noqa: SIM115 - open for the server's life
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServerUnavailable(
                        "chroma run did not start: " + (root / "log").read_text(errors="replace")
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
