"""Slack's Block Kit limits and the block constructors that clip to them (section, fields,
context, header, button text, the cancel-run button with its confirmation), so no builder can
produce a block Slack refuses.

Pure: imports `slack_sdk.models` and `blocks.text` only.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from blocks.text import clip_mrkdwn, plain_text

# Slack's limits (docs.slack.dev block reference; slack_sdk's *_max_length constants agree).
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_FIELDS = 10
MAX_CONTEXT_ELEMENTS = 10
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_BLOCKS = 50
# `msg_blocks_too_long` has an undocumented ceiling around 13,000 characters of block text
# (bolt-js #2509): messages keep their total text under this budget.
MESSAGE_TEXT_BUDGET = 11000
MAX_FALLBACK_TEXT = 3000


def section(text: str, *, block_id: str | None = None, accessory: object = None) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=clip_mrkdwn(text or " ", MAX_SECTION_TEXT)),
        block_id=block_id,
        accessory=accessory,  # type: ignore[arg-type]
    )


def fields_section(fields: Sequence[str], *, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(
        fields=[
            MarkdownTextObject(text=clip_mrkdwn(f or " ", MAX_FIELD_TEXT))
            for f in list(fields)[:MAX_FIELDS]
        ],
        block_id=block_id,
    )


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    items = [t for t in texts if t][:MAX_CONTEXT_ELEMENTS] or [" "]
    return ContextBlock(
        elements=[MarkdownTextObject(text=clip_mrkdwn(t, MAX_SECTION_TEXT)) for t in items],
        block_id=block_id,
    )


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=plain_text(text, MAX_HEADER_TEXT), emoji=True))


def button_text(text: str) -> PlainTextObject:
    return PlainTextObject(text=plain_text(text, MAX_BUTTON_TEXT), emoji=True)


def cancel_run_button(action_id: str, job_run_id: int) -> ButtonElement:
    """The danger button that cancels run `job_run_id`, with its confirmation dialog."""
    return ButtonElement(
        text=button_text("Cancel run"),
        action_id=action_id,
        value=str(job_run_id),
        style="danger",
        confirm=ConfirmObject(
            title=PlainTextObject(text=f"Cancel run #{job_run_id}?"),
            text=PlainTextObject(
                text="The run stops after the current page. What it stored is kept."
            ),
            confirm=PlainTextObject(text="Cancel run"),
            deny=PlainTextObject(text="Keep running"),
            style="danger",
        ),
    )
