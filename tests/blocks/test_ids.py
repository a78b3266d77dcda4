"""The ID constants are unique and dotted, and `blocks/` stays pure (no I/O, nothing of ours)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from blocks import ids

BLOCKS = Path(__file__).resolve().parents[2] / "blocks"
ALLOWED_ROOTS = {
    "__future__", "collections", "dataclasses", "datetime", "typing", "json", "re", "math", "zoneinfo",
    "difflib", "slack_sdk", "blocks", "enum", "functools", "itertools",
    "cron_descriptor",  # a cron in words: pure text in, text out
}  # fmt: skip
# Of ours beyond `blocks`, only the entities' plain types (design.md: "nothing of ours but plain
# data types").
DATA_MODULES = {"db.records"}
FORBIDDEN = {
    "slack_sdk.web",
    "slack_sdk.webhook",
    "slack_sdk.socket_mode",
    "slack_sdk.oauth",
    "slack_sdk.http_retry",
}


def test_ids_are_unique_dotted_upper_snake() -> None:
    found = ids.all_ids()
    assert len(found) >= 30
    assert len(set(found.values())) == len(found), "two constants share a value"
    for name, value in found.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", name), name
        assert re.fullmatch(r"[a-z_]+\.[a-z_.0-9]+", value), (name, value)
        assert len(value) <= 255


def test_blocks_import_nothing_but_the_stdlib_slack_models_blocks_and_the_records() -> None:
    for path in sorted(BLOCKS.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                if name in DATA_MODULES:
                    continue
                assert name.split(".")[0] in ALLOWED_ROOTS, f"{path.name} imports {name}"
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                    f"{path.name} imports {name}"
                )
                if name.startswith("slack_sdk"):
                    assert name.startswith("slack_sdk.models"), f"{path.name} imports {name}"


def test_builders_use_the_constants() -> None:
    sources = "".join(p.read_text() for p in BLOCKS.glob("*.py") if p.name != "ids.py")
    for name in ids.all_ids():
        assert f"ids.{name}" in sources, f"{name} is never used by a builder"
