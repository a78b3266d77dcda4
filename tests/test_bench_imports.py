"""Every benchmark under bench/ imports (its fakes and helpers follow the app's interfaces): they
are not run by the tests (their figures are read by people), so a renamed type would otherwise
break them unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))


@pytest.mark.parametrize("name", BENCHES)
def test_bench_imports(name: str) -> None:
    code = f"import sys; sys.path[:0] = ['.', 'bench']; import {name}"
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
