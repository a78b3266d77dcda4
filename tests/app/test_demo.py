"""`python -m app demo` as a real subprocess: exits 0 and stores exactly the ground truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.app_process import REPO, SETTING_NAMES


def run_demo(
    tmp_path: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(PYTHONPATH=str(REPO), ANONYMIZED_TELEMETRY="False")
    return subprocess.run(
        [sys.executable, "-m", "app", "demo", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        check=False,  # the exit code is what is tested
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_stores_exactly_the_ground_truth_and_exits_0(tmp_path: Path) -> None:
    proc = run_demo(tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    stored = re.search(r"messages stored: ([\d,]+)", out)
    truth = re.search(r"ground truth for the 60-day window: ([\d,]+)", out)
    assert stored and truth and stored.group(1) == truth.group(1)
    assert int(stored.group(1).replace(",", "")) > 5000
    # The admin's journey, as the issue lists it.
    assert "Schedule created" in out
    assert "BACKFILL" in out  # App Home rendered as text
    assert "Run #1 started" in out
    assert "channels ·" in out  # progress lines
    assert "Backfill finished" in out or "BACKFILL FINISHED" in out  # the DM
    assert "Search the Chroma collection" in out and "#" in out.split("Search the Chroma")[1]
    assert "Traceback" not in out + proc.stderr
    assert (tmp_path / "data" / "demo" / "backfill.db").exists()


def test_demo_keep_running_prompt_as_member(tmp_path: Path) -> None:
    proc = run_demo(
        tmp_path,
        "--keep-running",
        "--as",
        "member",
        "--messages",
        "1500",
        "--channels",
        "4",
        stdin="/backfill status\npause\nhistory 2\n\n",
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    prompt = out.split("Type /backfill commands as")[1]
    assert "Run #1" in prompt  # status and history show the run
    assert "Only workspace admins" in prompt or "only workspace admins" in prompt.lower()


def test_demo_with_three_workspaces_installs_each_through_oauth_and_backfills_each(
    tmp_path: Path,
) -> None:
    proc = run_demo(
        tmp_path, "--workspaces", "3", "--messages", "3000", "--channels", "4", "--days", "20"
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert out.count(": installed") == 3
    results = re.findall(r"run #\d+ success, ([\d,]+) stored \(ground truth ([\d,]+)\) OK", out)
    assert len(results) == 3 and all(stored == truth for stored, truth in results)
    assert "Traceback" not in out + proc.stderr
    assert "xoxb-" not in out + proc.stderr and "xoxe" not in out + proc.stderr
