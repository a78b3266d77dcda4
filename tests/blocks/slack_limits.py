"""Checks of Slack's Block Kit limits on rendered surfaces, and golden-file comparison.

`slack_sdk.models` validates most limits in `to_dict()`; this walks the JSON for the rest
(empty texts, unique ids, the aggregate size of a message) and round-trips each surface through
the SDK's parsers. `UPDATE_GOLDEN=1` rewrites the golden files instead of comparing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

GOLDEN = Path(__file__).parent / "golden"
MESSAGE_TEXT_CEILING = 13000  # msg_blocks_too_long was hit around 13,200 characters (bolt-js #2509)


def assert_golden(name: str, data: Any) -> None:
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
        return
    assert path.exists(), (
        f"golden file {path.name} is missing: run with UPDATE_GOLDEN=1 to create it"
    )
    expected = path.read_text(encoding="utf-8")
    assert rendered == expected, (
        f"{path.name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)"
    )


def check_view(view: dict[str, Any]) -> None:
    """A home or modal view: SDK round trip plus every limit."""
    assert View(**view).to_dict() == view
    kind = view["type"]
    assert kind in ("home", "modal")
    assert 1 <= len(view["blocks"]) <= 100
    if kind == "modal":
        assert 1 <= len(view["title"]["text"]) <= 24
        for key in ("submit", "close"):
            if key in view:
                assert 1 <= len(view[key]["text"]) <= 24
        assert len(view.get("callback_id", "")) <= 255
        if any(b["type"] == "input" for b in view["blocks"]):
            assert "submit" in view
    else:
        assert "submit" not in view and "close" not in view and "title" not in view
    assert len(view.get("private_metadata", "")) <= 3000
    assert len(json.dumps(view).encode()) <= 250_000
    _check_blocks(view["blocks"])


def check_message(blocks: list[dict[str, Any]], text: str | None = None) -> None:
    """Message blocks (ephemeral replies, DMs): SDK round trip plus every limit."""
    assert 1 <= len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        assert parsed.to_dict() == block
    _check_blocks(blocks)
    assert total_text(blocks) <= MESSAGE_TEXT_CEILING
    if text is not None:
        assert 1 <= len(text) <= 4000


def total_text(node: Any) -> int:
    if isinstance(node, dict):
        own = len(node["text"]) if isinstance(node.get("text"), str) else 0
        return own + sum(
            total_text(v) for k, v in node.items() if k != "text" or not isinstance(v, str)
        )
    if isinstance(node, list):
        return sum(total_text(v) for v in node)
    return 0


def _text(obj: dict[str, Any], limit: int, *, plain: bool = False) -> None:
    assert obj["type"] in (("plain_text",) if plain else ("plain_text", "mrkdwn")), obj
    assert 1 <= len(obj["text"]) <= limit, (len(obj["text"]), limit, obj["text"][:80])
    assert obj["text"].strip() or obj["text"] == " ", obj


def _check_blocks(blocks: list[dict[str, Any]]) -> None:
    block_ids: list[str] = []
    action_ids: list[str] = []
    for block in blocks:
        if "block_id" in block:
            assert 1 <= len(block["block_id"]) <= 255
            block_ids.append(block["block_id"])
        kind = block["type"]
        if kind == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                _text(block["text"], 3000)
            if "fields" in block:
                assert 1 <= len(block["fields"]) <= 10
                for f in block["fields"]:
                    _text(f, 2000)
            if "accessory" in block:
                _check_element(block["accessory"], action_ids)
        elif kind == "header":
            _text(block["text"], 150, plain=True)
        elif kind == "context":
            assert 1 <= len(block["elements"]) <= 10
            for e in block["elements"]:
                _text(e, 3000)
        elif kind == "actions":
            assert 1 <= len(block["elements"]) <= 25
            for e in block["elements"]:
                _check_element(e, action_ids)
        elif kind == "input":
            _text(block["label"], 2000, plain=True)
            if "hint" in block:
                _text(block["hint"], 2000, plain=True)
            _check_element(block["element"], action_ids)
        else:
            assert kind == "divider", kind
    assert len(block_ids) == len(set(block_ids)), block_ids
    assert len(action_ids) == len(set(action_ids)), action_ids


def _check_element(element: dict[str, Any], action_ids: list[str]) -> None:
    if "action_id" in element:
        assert 1 <= len(element["action_id"]) <= 255
        action_ids.append(element["action_id"])
    if "placeholder" in element:
        _text(element["placeholder"], 150, plain=True)
    kind = element["type"]
    if kind == "button":
        _text(element["text"], 75, plain=True)
        assert len(element.get("value", "")) <= 2000
    if "confirm" in element:
        c = element["confirm"]
        _text(c["title"], 100, plain=True)
        _text(c["text"], 300)
        _text(c["confirm"], 30, plain=True)
        _text(c["deny"], 30, plain=True)
    if "options" in element:
        limit = 10 if kind == "radio_buttons" else 100
        assert 1 <= len(element["options"]) <= limit
        values = [o["value"] for o in element["options"]]
        assert len(values) == len(set(values))
        for o in element["options"]:
            _text(o["text"], 75, plain=kind != "radio_buttons")
            assert 1 <= len(o["value"]) <= 150
        if "initial_option" in element:
            assert element["initial_option"] in element["options"]
