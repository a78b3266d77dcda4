"""Run `python -m app run` as a real process against fakeslack, and talk to it over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from app.settings import ACCEPTED
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
SETTING_NAMES = tuple(ACCEPTED)  # none may leak from the shell into the app process


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
