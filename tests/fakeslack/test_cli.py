"""`python -m fakeslack` as a subprocess: one JSON line when ready, a working API, exit 0 on
SIGTERM or SIGINT."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from slack_sdk import WebClient

REPO = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fakeslack",
            "--seed",
            "4",
            "--messages",
            "300",
            "--users",
            "12",
            "--channels",
            "8",
            *args,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"no ready line; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_ready_line_serves_and_exits_cleanly(sig: signal.Signals) -> None:
    proc, info = _start("--port", "0", "--time-compression", "60", "--profile", "non_marketplace")
    try:
        assert set(info) == {"url", "bot_token", "team_id", "port", "signing_secret"}
        assert info["url"] == f"http://127.0.0.1:{info['port']}/api/" and info["port"] > 0
        client = WebClient(token=info["bot_token"], base_url=info["url"])
        auth = client.auth_test()
        assert auth["team_id"] == info["team_id"]
        channels = client.conversations_list(types="public_channel,private_channel")["channels"]
        member = next(c for c in channels if c["is_member"] and not c["is_archived"])
        assert len(client.conversations_history(channel=member["id"])["messages"]) <= 15
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == "", "nothing but the ready line goes to stdout"


def test_cli_no_rate_limits_flag() -> None:
    proc, info = _start("--no-rate-limits")
    try:
        client = WebClient(token=info["bot_token"], base_url=info["url"])
        for _ in range(25):  # conversations.list is Tier 2 (20/min)
            client.conversations_list(limit=1)
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
