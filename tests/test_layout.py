"""The direction of imports (design.md's layout table) and the engine's one Slack gateway."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("app", "handlers", "blocks", "scheduler", "db", "fakeslack")
# package -> packages of ours it may import (itself always allowed)
ALLOWED = {
    "handlers": {"blocks", "scheduler", "db"},
    "blocks": set(),
    "scheduler": {"db", "blocks"},  # scheduler/backfill is narrower, below
    "db": set(),
    "fakeslack": set(),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def ours(name: str) -> str | None:
    top = name.split(".")[0]
    return top if top in OURS else None


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layout_imports_follow_the_design(package: str) -> None:
    wrong = []
    for path in modules(package):
        for name in imports_of(path):
            top = ours(name)
            if top and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == []


def test_layout_engine_imports_only_db() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("scheduler/backfill")
        for name in imports_of(path)
        if ours(name) and not name.startswith(("scheduler.backfill", "db"))
    ]
    assert wrong == []


def test_layout_blocks_and_db_do_no_slack_io() -> None:
    for package, banned in (
        ("blocks", ("slack_sdk.web", "aiohttp", "sqlalchemy", "chromadb")),
        ("db", ("slack_sdk", "slack_bolt")),
    ):
        for path in modules(package):
            for name in imports_of(path):
                assert not name.startswith(banned), f"{path.relative_to(REPO)} imports {name}"


def test_layout_only_the_gateway_talks_to_slack_in_the_engine() -> None:
    """Only `gateway.py` may hold a Slack client: every engine call is paced and retried there."""
    talkers = sorted(
        str(path.relative_to(REPO))
        for path in modules("scheduler/backfill")
        if any(name.startswith(("slack_sdk", "slack_bolt", "aiohttp")) for name in imports_of(path))
    )
    assert talkers == ["scheduler/backfill/gateway.py"]
