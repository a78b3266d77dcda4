"""Render Block Kit (messages, views) as readable terminal text, for the demo and its prompt."""

from __future__ import annotations

import re
import textwrap
from typing import Any

WIDTH = 88
_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")
_BARE = re.compile(r"<([@#!]?[^>]+)>")


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn → plain: `<url|label>` → label, `<@U1>` kept, entities unescaped."""
    text = _LINK.sub(r"\2", text)
    text = _BARE.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return mrkdwn_to_text(str(obj.get("text", "")))
    return ""


def _wrap(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    for raw in text.splitlines() or [""]:
        lines += textwrap.wrap(
            raw,
            WIDTH,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            replace_whitespace=False,
        ) or [indent]
    return lines


def _element_text(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind == "button":
        return f"[ {_text_of(element.get('text'))} ]"
    if kind in ("mrkdwn", "plain_text"):
        return mrkdwn_to_text(str(element.get("text", "")))
    if kind == "image":
        return f"(image: {element.get('alt_text', '')})"
    label = element.get("placeholder") or {}
    return f"[{kind}: {_text_of(label)}]"


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text_of(block.get("text"))
            lines += [title.upper(), "=" * min(len(title), WIDTH)]
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "section":
            if block.get("text"):
                lines += _wrap(_text_of(block["text"]))
            for field in block.get("fields") or []:
                lines += _wrap(_text_of(field), "  ")
            if block.get("accessory"):
                lines.append("  " + _element_text(block["accessory"]))
        elif kind == "context":
            lines += _wrap("  ".join(_element_text(e) for e in block.get("elements", [])), "  ")
        elif kind == "actions":
            lines.append("  ".join(_element_text(e) for e in block.get("elements", [])))
        elif kind == "input":
            lines.append(
                f"{_text_of(block.get('label'))}: {_element_text(block.get('element', {}))}"
            )
        elif kind == "rich_text":
            lines.append("(rich text)")
    return "\n".join(lines)


def render_view(view: dict[str, Any]) -> str:
    title = _text_of(view.get("title")) if view.get("title") else view.get("type", "view")
    return f"┌─ {title} ─\n" + render_blocks(view.get("blocks", []))


def render_message(message: dict[str, Any]) -> str:
    blocks = message.get("blocks")
    if blocks:
        return render_blocks(blocks)
    return "\n".join(_wrap(mrkdwn_to_text(str(message.get("text", "")))))
