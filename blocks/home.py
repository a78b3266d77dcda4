"""The App Home tab."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from blocks.help import USAGE_LINES


def home_view(*, is_admin: bool) -> dict[str, Any]:
    """The Home tab: what the app does and how to drive it from Slack."""
    role = (
        "You are a workspace admin: you can schedule, run and cancel backfills."
        if is_admin
        else "You are a member: you can see schedules and runs; admins change them."
    )
    commands = "\n".join(f"• `{syntax}`  {meaning}" for syntax, meaning in USAGE_LINES)
    blocks = [
        HeaderBlock(text="Backfill"),
        SectionBlock(
            text=MarkdownTextObject(
                text=(
                    "Keeps a searchable copy of this workspace's message history, "
                    "thread replies included, on a schedule or on demand."
                )
            )
        ),
        ContextBlock(elements=[MarkdownTextObject(text=role)]),
        DividerBlock(),
        SectionBlock(text=MarkdownTextObject(text="*Commands*\n" + commands)),
    ]
    return View(type="home", blocks=blocks).to_dict()
