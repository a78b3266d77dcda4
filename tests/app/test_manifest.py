"""`manifest.yml` validates against Slack's manifest schema (resolved offline) and asks for minimal scopes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.support.reference import require_reference

REPO = Path(__file__).resolve().parents[2]
REMOTE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


def load_manifest() -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifest.yml").read_text())


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schemas = require_reference("slack-manifest-schema")
    root = json.loads((schemas / "manifest.schema.json").read_text())
    registry = Registry()
    # The root schema $refs the versioned schemas by URL; serve them from the local copies.
    for version in ("1.0.0", "2.0.0"):
        contents = json.loads((schemas / f"manifest.schema.{version}.json").read_text())
        registry = registry.with_resource(
            f"{REMOTE}manifest.schema.{version}.json",
            Resource.from_contents(contents, default_specification=DRAFT7),
        )
    return jsonschema.Draft7Validator(root, registry=registry)


def test_manifest_validates_against_slacks_schema(validator: jsonschema.Draft7Validator) -> None:
    errors = [e.message for e in validator.iter_errors(load_manifest())]
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda m: m["display_information"].update(name="x" * 40),
        lambda m: m["features"]["slash_commands"][0].update(command="backfill"),
        lambda m: m["settings"].update(socket_mode_enabled="yes"),
        lambda m: m["features"]["app_home"].update(unknown_key=True),
    ],
)
def test_manifest_validator_catches_a_broken_manifest(
    validator: jsonschema.Draft7Validator, breakage: Any
) -> None:
    manifest = copy.deepcopy(load_manifest())
    breakage(manifest)
    assert list(validator.iter_errors(manifest)), "the schema check must be able to fail"


# The live mirror's subscriptions and the scope each needs (slack-platform.md §16.3, §16.4): all
# already granted for reading history and listing channels.
MIRROR_EVENTS = {
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "channel_rename": {"channels:read"},
    "group_rename": {"groups:read"},
    "channel_deleted": {"channels:read"},
    "group_deleted": {"groups:read"},
    "channel_archive": {"channels:read"},
    "member_joined_channel": {"channels:read", "groups:read"},
}


def test_manifest_mirror_events_need_no_new_scope_and_each_has_a_listener() -> None:
    from handlers.events import register
    from scheduler.mirror_rules import CHANNEL_EVENTS

    scopes = set(load_manifest()["oauth_config"]["scopes"]["bot"])
    for event, needs in MIRROR_EVENTS.items():
        assert needs <= scopes, event
    listened = {"message", *CHANNEL_EVENTS}
    for event in MIRROR_EVENTS:
        assert event.split(".")[0] in listened, event
    assert callable(register)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for event in MIRROR_EVENTS:
        assert f"`{event}`" in readme, f"README does not explain {event}"


# A workspace removing the app: no scope needed, each has a listener (`handlers.uninstalls`).
REMOVAL_EVENTS = ("app_uninstalled", "tokens_revoked")


def test_an_install_asks_for_the_manifests_scopes() -> None:
    """Bolt's install page asks for `BOT_SCOPES`; Slack grants the manifest's (the removal
    events' listeners are shown by tests/scenarios/test_scenario_multi_workspace.py)."""
    from app.bolt_app import BOT_SCOPES

    assert sorted(BOT_SCOPES) == sorted(load_manifest()["oauth_config"]["scopes"]["bot"])


def test_manifest_declares_what_the_app_serves() -> None:
    m = load_manifest()
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/backfill"]
    assert m["features"]["app_home"]["home_tab_enabled"] is True
    assert m["features"]["app_home"]["messages_tab_enabled"] is True
    assert m["settings"]["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        *MIRROR_EVENTS,
        *REMOVAL_EVENTS,
    ]
    assert m["settings"]["interactivity"]["is_enabled"] is True
    assert m["settings"]["org_deploy_enabled"] is False
    assert set(m["oauth_config"]["scopes"]) == {"bot"}  # no user token


def test_manifest_scopes_are_minimal_and_each_is_justified_in_the_readme() -> None:
    scopes = load_manifest()["oauth_config"]["scopes"]["bot"]
    assert sorted(scopes) == sorted(
        [
            "commands",
            "channels:read",
            "groups:read",
            "channels:history",
            "groups:history",
            "channels:join",
            "users:read",
            "chat:write",
        ]
    )
    readme = (REPO / "README.md").read_text()
    for scope in scopes:
        assert f"| `{scope}` |" in readme, f"README does not justify {scope}"
