"""Minimal Block Kit validation, the checks Slack itself applies most often: block counts, section
text length, message text length, view title length. Returns an error string or None."""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELD = 2000
MAX_HEADER_TEXT = 150
MAX_MESSAGE_TEXT = 40000
MAX_TITLE = 24
MAX_PRIVATE_METADATA = 3000


class BlockError(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def parse_json_arg(value: Any, error: str) -> Any:
    """Form-encoded requests carry `blocks`/`view` as JSON strings; JSON bodies as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise BlockError(error, f"[ERROR] could not parse JSON: {exc.msg}") from exc
    return value


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return ""


def check_blocks(blocks: Any, limit: int) -> None:
    if not isinstance(blocks, list) or any(
        not isinstance(b, dict) or "type" not in b for b in blocks
    ):
        raise BlockError(
            "invalid_blocks_format", "[ERROR] blocks must be an array of block objects"
        )
    if len(blocks) > limit:
        raise BlockError(
            "invalid_blocks", f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]"
        )
    for i, block in enumerate(blocks):
        kind = block["type"]
        if kind == "section":
            if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
                raise BlockError(
                    "invalid_blocks",
                    f"[ERROR] must be less than {MAX_SECTION_TEXT + 1} "
                    f"characters [json-pointer:/blocks/{i}/text/text]",
                )
            fields = block.get("fields") or []
            if len(fields) > 10 or any(len(_text_of(f)) > MAX_SECTION_FIELD for f in fields):
                raise BlockError(
                    "invalid_blocks", f"[ERROR] invalid fields [json-pointer:/blocks/{i}/fields]"
                )
        elif kind == "header" and len(_text_of(block.get("text"))) > MAX_HEADER_TEXT:
            raise BlockError(
                "invalid_blocks",
                f"[ERROR] must be less than {MAX_HEADER_TEXT + 1} "
                f"characters [json-pointer:/blocks/{i}/text/text]",
            )


def check_message(text: str | None, blocks: Any) -> None:
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        raise BlockError("msg_too_long", "[ERROR] text too long")
    if blocks is not None:
        check_blocks(blocks, MAX_MESSAGE_BLOCKS)


def check_view(view: Any) -> None:
    if not isinstance(view, dict):
        raise BlockError("invalid_arguments", "[ERROR] view must be an object [json-pointer:/view]")
    kind = view.get("type")
    if kind not in ("modal", "home"):
        raise BlockError(
            "invalid_arguments", "[ERROR] must be one of modal, home [json-pointer:/view/type]"
        )
    if kind == "modal":
        title = view.get("title")
        if not isinstance(title, dict) or not 1 <= len(_text_of(title)) <= MAX_TITLE:
            raise BlockError(
                "invalid_arguments",
                f"[ERROR] must be less than {MAX_TITLE + 1} characters "
                "[json-pointer:/view/title/text]",
            )
        for part in ("submit", "close"):
            if part in view and len(_text_of(view[part])) > MAX_TITLE:
                raise BlockError(
                    "invalid_arguments",
                    f"[ERROR] must be less than {MAX_TITLE + 1} "
                    f"characters [json-pointer:/view/{part}/text]",
                )
    if len(str(view.get("private_metadata", ""))) > MAX_PRIVATE_METADATA:
        raise BlockError(
            "invalid_arguments",
            "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]",
        )
    check_blocks(view.get("blocks", []), MAX_VIEW_BLOCKS)
