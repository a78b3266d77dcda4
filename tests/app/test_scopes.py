"""Least privilege: every scope `manifest.yml` asks for is needed by a Slack call the code makes.

The calls are read from the product code itself (AST: `client.<method>(…)` on the SDK's clients,
and the method names our own gateways pass to `_call`), each mapped to the scopes our use of it
needs, checked against Slack's published method references (`SLACK_REFERENCE_DIR`).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml

from tests.support.reference import require_reference

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("app", "handlers", "scheduler", "db", "blocks")

# Method -> the bot scopes our use of it needs. Channel-typed methods need the public and the
# private variant: the app reads public channels and the private ones it was invited to.
NEEDS: dict[str, set[str]] = {
    "auth.test": set(),
    "conversations.list": {"channels:read", "groups:read"},
    "conversations.info": {"channels:read", "groups:read"},
    "conversations.history": {"channels:history", "groups:history"},
    "conversations.replies": {"channels:history", "groups:history"},
    "conversations.join": {"channels:join"},
    "users.info": {"users:read"},
    "users.list": {"users:read"},
    # A user id as `channel` posts in the app's own DM with that user: no conversations.open.
    "chat.postMessage": {"chat:write"},
    "chat.update": {"chat:write"},
    "views.open": set(),
    "views.update": set(),
    "views.publish": set(),
}


def slack_methods_called() -> set[str]:
    known = {name.replace(".", "_"): name for name in NEEDS} | {
        "conversations_open": "conversations.open",
        "users_list": "users.list",
        "views_push": "views.push",
        "chat_postEphemeral": "chat.postEphemeral",
    }
    called: set[str] = set()
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in known:
                    called.add(known[func.attr])
                # Our gateways name the method as their first argument (`_call("users.info")`,
                # `_cursor_walk("conversations.history", …)`).
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and first.value in known.values():
                    called.add(str(first.value))
    return called


def test_scopes_every_call_of_the_code_is_mapped() -> None:
    assert slack_methods_called() == set(NEEDS)


def test_scopes_the_mapping_agrees_with_slacks_references() -> None:
    for method, scopes in NEEDS.items():
        reference = json.loads(
            require_reference("slack-api-ref-methods", f"{method}.json").read_text()
        )
        bot = set((reference.get("scope") or {}).get("bot") or [])
        assert scopes <= bot, f"{method}: {scopes - bot} not a scope Slack lists for it"


def test_scopes_the_manifest_asks_for_exactly_what_the_calls_need() -> None:
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text())
    asked = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = set().union(*NEEDS.values())
    if manifest["features"].get("slash_commands"):
        needed.add("commands")
    assert asked == needed


def test_scopes_the_readme_table_matches_the_manifest() -> None:
    manifest = yaml.safe_load((REPO / "manifest.yml").read_text())
    readme = (REPO / "README.md").read_text()
    table = readme.split("### Scopes, and why each is needed", 1)[1].split("\n\n", 2)[1]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert listed == set(manifest["oauth_config"]["scopes"]["bot"])
