"""Run `python -m app run` as a real process against fakeslack, and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.settings import ACCEPTED
from fakeslack import FakeSlack
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
SETTING_NAMES = tuple(ACCEPTED)  # none may leak from the shell into the app process
# What every answer to `/backfill help` shows, whatever the transport.
HELP_SYNTAX = (
    "/backfill schedule",
    "days=N",
    "channels=#a,#b",
    "tz=Area/City",
    "/backfill run",
    "/backfill status",
    "/backfill list",
    "/backfill cancel",
    "/backfill history [N]",
)


class AppProcess:
    """A running app; its combined output is kept in a file for assertions after it stops."""

    def __init__(self, settings: dict[str, str], workdir: Path) -> None:
        self.port = int(settings.get("PORT") or free_port())
        env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
        env.update(
            settings, PORT=str(self.port), PYTHONPATH=str(REPO), ANONYMIZED_TELEMETRY="False"
        )
        self.output_path = workdir / "app-output.log"
        self._out = open(self.output_path, "wb")  # noqa: SIM115 - open for the process's life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "run"],
            cwd=workdir,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"app exited {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"app did not become healthy: {self.output()}")

    def post(self, path: str, body: str, headers: dict[str, str]) -> tuple[int, str]:
        req = urllib.request.Request(
            f"{self.url}{path}", data=body.encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.output_path.read_text(errors="replace")


def app_settings(
    api_url: str, bot_token: str, signing_secret: str, workdir: Path
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": api_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/backfill.db",
        "CHROMA_PATH": str(workdir / "chroma"),
        "EMBEDDING": "hashing",
        "LOG_LEVEL": "DEBUG",
    }


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="backfill-app-"))


def settings_for(fake: FakeSlack, workdir: Path, *, socket_mode: bool = False) -> dict[str, str]:
    """The app's settings on `fake` (its URL and credentials), storing under `workdir`. In Socket
    Mode the app token stands in for the signing secret, which is then not required."""
    settings = app_settings(fake.base_url, fake.bot_token, fake.signing_secret, workdir)
    if socket_mode:
        del settings["SLACK_SIGNING_SECRET"]
        settings["SLACK_APP_TOKEN"] = fake.app_token
    return settings


@contextmanager
def app_on(fake: FakeSlack, *, socket_mode: bool = False, **settings: str) -> Iterator[AppProcess]:
    """A healthy app process on `fake` in a fresh work directory (in Socket Mode, once its socket
    is open), `settings` overriding the defaults; stopped, and its directory removed, on exit."""
    workdir = new_workdir()
    proc = AppProcess(settings_for(fake, workdir, socket_mode=socket_mode) | settings, workdir)
    try:
        proc.wait_healthy()
        if socket_mode:
            fake.wait_socket_connections_sync(1, timeout=30)
        yield proc
    finally:
        proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def some_user(fake: FakeSlack, *, admin: bool) -> str:
    """A human, active member of the workspace who is (or is not) a workspace admin."""
    for user in fake.workspace.users.values():
        human = not user.get("is_bot") and not user.get("deleted")
        if human and bool(user.get("is_admin")) == admin:
            return str(user["id"])
    raise AssertionError("generated workspace lacks that kind of user")


def assert_admin_home_published(fake: FakeSlack, user: str, timeout: float = 10) -> None:
    """The app publishes `user` a Home tab (within `timeout` seconds) showing them as an admin,
    which only `users.info` could have told it."""
    deadline = time.monotonic() + timeout
    while fake.home_view(user) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    view = fake.home_view(user)
    assert view is not None and view["type"] == "home"
    assert "workspace admin" in json.dumps(view["blocks"])  # users.info said admin
