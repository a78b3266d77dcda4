"""fakeslack's responses against Slack's published shapes, read offline from shared/reference/:
the OpenAPI response schemas (resolved locally, extra properties allowed), the required output
fields and example responses of the docs.slack.dev scrape, and the documented tiers and scopes."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from fakeslack import FakeSlack, Workspace
from fakeslack.spec import METHODS
from tests.fakeslack.helpers import channel_where, member_channel, small_modal
from tests.support.reference import reference_dir, require_reference

REFERENCE = reference_dir()
REF_METHODS = REFERENCE / "slack-api-ref-methods"
OPENAPI = REFERENCE / "slack-api-specs" / "slack_web_openapi_v2.json"
GENERIC_ERRORS = {
    "invalid_auth",
    "not_authed",
    "missing_scope",
    "invalid_arguments",
    "ratelimited",
    "internal_error",
    "token_revoked",
    "account_inactive",
    "no_text",
    "fatal_error",
    "user_not_found",
}


def _require_reference() -> None:
    require_reference("slack-api-ref-methods")
    require_reference("slack-api-specs", "slack_web_openapi_v2.json")


@cache
def _ref(method: str) -> dict[str, Any]:
    _require_reference()
    return json.loads((REF_METHODS / f"{method}.json").read_text())  # type: ignore[no-any-return]


def _relax(node: Any) -> Any:
    """OpenAPI 2 quirks -> JSON Schema: `items: [a, b]` on a non-array means "one of"; extra
    properties are allowed (the 2020 spec lists fewer fields than Slack sends today)."""
    if isinstance(node, list):
        return [_relax(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _relax(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)
    }
    if isinstance(out.get("items"), list) and out.get("type") != "array":
        out["anyOf"] = out.pop("items")
    return out


@cache
def _openapi() -> dict[str, Any]:
    _require_reference()
    return json.loads(OPENAPI.read_text())  # type: ignore[no-any-return]


def _openapi_schema(method: str) -> dict[str, Any] | None:
    spec = _openapi()
    path = spec["paths"].get(f"/{method}")
    if path is None:
        return None
    op = path.get("post") or path.get("get")
    schema = _relax(op["responses"]["200"]["schema"])
    schema["definitions"] = _relax(spec["definitions"])
    return schema  # type: ignore[no-any-return]


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(v)]


def _check_like_example(ours: Any, example: Any, where: str) -> None:
    """Every field of the documented example that we also send has the same JSON type."""
    if isinstance(example, dict) and isinstance(ours, dict):
        for key, ex in example.items():
            if key in ours and ex is not None and ours[key] is not None:
                assert _json_type(ours[key]) == _json_type(ex), f"{where}.{key}"
                _check_like_example(ours[key], ex, f"{where}.{key}")
    elif (
        isinstance(example, list)
        and isinstance(ours, list)
        and example
        and ours
        and isinstance(example[0], dict)
    ):
        for item in ours:
            _check_like_example(item, example[0], f"{where}[]")


def _check(method: str, body: dict[str, Any]) -> None:
    ref = _ref(method)
    for key in ref.get("output", {}).get("required", []):
        assert key in body, f"{method}: documented required field {key!r} missing"
    success = ref.get("examples", {}).get("success", {}).get("example")
    if success:
        _check_like_example(body, success, method)
    schema = _openapi_schema(method)
    if schema is not None:
        jsonschema.Draft4Validator(schema).validate(body)


async def _responses(fake: FakeSlack, ws: Workspace) -> dict[str, dict[str, Any]]:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
    ch = member_channel(ws)
    outsider = channel_where(ws, private=False, archived=False, member=False)
    parent_ts = next(
        ts
        for ts, rs in ch.replies.items()
        if len(rs) >= 2 and ch.by_ts[ts].get("user") and not ch.by_ts[ts].get("subtype")
    )
    admin = next(u["id"] for u in ws.users.values() if u["is_admin"])
    out: dict[str, dict[str, Any]] = {}
    out["auth.test"] = (await client.auth_test()).data
    out["conversations.list"] = (
        await client.conversations_list(types="public_channel,private_channel", limit=200)
    ).data
    out["conversations.history"] = (
        await client.conversations_history(channel=ch.id, limit=200)
    ).data
    out["conversations.replies"] = (
        await client.conversations_replies(channel=ch.id, ts=parent_ts)
    ).data
    out["conversations.info"] = (await client.conversations_info(channel=ch.id)).data
    out["conversations.join"] = (await client.conversations_join(channel=outsider.id)).data
    out["conversations.open"] = (await client.conversations_open(users=admin)).data
    out["users.info"] = (await client.users_info(user=admin)).data
    out["users.list"] = (await client.users_list(limit=500)).data
    out["users.conversations"] = (
        await client.users_conversations(user=admin, types="public_channel,private_channel")
    ).data
    posted = await client.chat_postMessage(channel=admin, text="Backfill done: 42 messages stored")
    out["chat.postMessage"] = posted.data
    out["chat.update"] = (
        await client.chat_update(
            channel=posted["channel"], ts=posted["ts"], text="Backfill done: 43 messages stored"
        )
    ).data
    out["chat.postEphemeral"] = (
        await client.chat_postEphemeral(channel=ch.id, user=admin, text="hi")
    ).data
    modal = small_modal("Schedule", "Save", "schedule", "Cron")
    opened = await client.views_open(trigger_id=fake.new_trigger_id(admin), view=modal)
    out["views.open"] = opened.data
    out["views.update"] = (await client.views_update(view_id=opened["view"]["id"], view=modal)).data
    out["views.push"] = (
        await client.views_push(trigger_id=fake.new_trigger_id(admin), view=modal)
    ).data
    out["views.publish"] = (
        await client.views_publish(user_id=admin, view={"type": "home", "blocks": modal["blocks"]})
    ).data
    return out


async def test_every_method_matches_the_documented_response_shapes(
    fake: FakeSlack, workspace: Workspace
) -> None:
    _require_reference()
    bodies = await _responses(fake, workspace)
    assert set(bodies) == set(METHODS)
    for method, body in bodies.items():
        assert body["ok"] is True
        if (REF_METHODS / f"{method}.json").exists():
            _check(method, body)
        else:  # chat.postEphemeral has no docs.slack.dev file here: OpenAPI only
            schema = _openapi_schema(method)
            assert schema is not None, method
            jsonschema.Draft4Validator(schema).validate(body)


async def test_schema_check_catches_a_wrong_shape(fake: FakeSlack, workspace: Workspace) -> None:
    """The checker is not vacuous: a broken body fails it."""
    bodies = await _responses(fake, workspace)
    broken = dict(bodies["conversations.history"])
    broken["messages"] = [{**broken["messages"][0], "ts": 1700000000.0001}]
    with pytest.raises((AssertionError, jsonschema.ValidationError)):
        _check("conversations.history", broken)
    missing = {k: v for k, v in bodies["users.list"].items() if k != "cache_ts"}
    with pytest.raises((AssertionError, jsonschema.ValidationError)):
        _check("users.list", missing)


def test_tiers_and_scopes_match_the_reference() -> None:
    _require_reference()
    for name, spec in METHODS.items():
        path = REF_METHODS / f"{name}.json"
        if not path.exists():
            continue
        ref = _ref(name)
        documented = ref["rate_limits"]
        assert spec.tier == ("special" if documented == "t5" else documented), name
        if spec.scope is not None:
            assert spec.scope in ref["scope"]["bot"], name


async def test_error_strings_are_documented(fake: FakeSlack, workspace: Workspace) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
    ch = member_channel(workspace)
    outsider = channel_where(workspace, private=False, archived=False, member=False)
    private_out = channel_where(workspace, private=True, member=False)
    archived = channel_where(workspace, archived=True, member=False)
    cases = [
        ("conversations.history", client.conversations_history(channel=outsider.id)),
        ("conversations.history", client.conversations_history(channel="C0NOPE00000")),
        ("conversations.history", client.conversations_history(channel=ch.id, cursor="bad")),
        ("conversations.history", client.conversations_history(channel=ch.id, oldest="yesterday")),
        (
            "conversations.replies",
            client.conversations_replies(channel=ch.id, ts="1000000000.000001"),
        ),
        ("conversations.info", client.conversations_info(channel=private_out.id)),
        ("conversations.join", client.conversations_join(channel=archived.id)),
        ("conversations.join", client.conversations_join(channel=private_out.id)),
        ("conversations.list", client.conversations_list(types="nope")),
        ("conversations.list", client.conversations_list(cursor="bad")),
        ("users.info", client.users_info(user="U0NOBODY000")),
        ("chat.update", client.chat_update(channel=ch.id, ts="1000000000.000001", text="x")),
        (
            "chat.postMessage",
            client.chat_postMessage(channel=ch.id, text="x", blocks=[{"type": "divider"}] * 51),
        ),
        (
            "views.open",
            client.views_open(
                trigger_id="1.2.3",
                view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []},
            ),
        ),
    ]
    for method, call in cases:
        with pytest.raises(SlackApiError) as info:
            await call
        error = info.value.response.data["error"]
        documented = set(_ref(method).get("errors", {}))
        assert error in documented | GENERIC_ERRORS, f"{method}: {error} is not a documented error"
