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


# APScheduler 3's executor internals: a patch release may rename or drop any of them.
APSCHEDULER_PRIVATE = {
    "_do_submit_job",
    "_pending_futures",
    "_jobstore_alias",
    "_run_job_error",
    "_run_job_success",
    "run_coroutine_job",
    "run_job",
}


def test_layout_scheduler_uses_only_apschedulers_public_api() -> None:
    """No product module reaches into APScheduler's executors: no private member, no
    `run_coroutine_job`, no subclass of an APScheduler class (a job's fire time comes from the
    public EVENT_JOB_SUBMITTED)."""
    wrong = []
    for package in ("app", "handlers", "scheduler"):
        for path in modules(package):
            tree = ast.parse(path.read_text(), filename=str(path))
            from_apscheduler: set[str] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "apscheduler"
                ):
                    from_apscheduler |= {alias.asname or alias.name for alias in node.names}
                    wrong += [
                        f"{path.relative_to(REPO)} imports {alias.name}"
                        for alias in node.names
                        if alias.name in APSCHEDULER_PRIVATE or alias.name.startswith("_")
                    ]
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in APSCHEDULER_PRIVATE:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno} uses .{node.attr}")
                elif isinstance(node, ast.ClassDef):
                    for base in node.bases:
                        name = ast.unparse(base)
                        if name.split(".")[0] in from_apscheduler or name.startswith("apscheduler"):
                            wrong.append(f"{path.relative_to(REPO)}: {node.name} subclasses {name}")
    assert wrong == []
