"""What the app says when the channels a command or a form named cannot be used: some Slack does
not list (made up, deleted, or private without the app), or Slack's channel list could not be read
in time. Replies for commands and DMs, and one-line texts for a form's inline errors. Pure: plain
data in; imports only `blocks.*`.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from blocks.elements import MAX_FALLBACK_TEXT, context, section
from blocks.limits import MAX_CHANNELS
from blocks.replies import Reply
from blocks.text import code, escape_mrkdwn, join_limited, mrkdwn_text, one_line, truncate

SHOWN = 5  # channels named before "and N more"
ACCEPTED = (
    "channels the app can see: public channels, and private channels it was added to "
    f"(at most {MAX_CHANNELS}; leave channels out for all)"
)
NOTHING_CHANGED = "Nothing was changed."


def _reply(text: str, blocks: Sequence[Block]) -> Reply:
    return Reply(text=truncate(text, MAX_FALLBACK_TEXT), blocks=[b.to_dict() for b in blocks])


def _listed_plain(unknown: Sequence[str]) -> str:
    return join_limited([one_line(u)[:90] for u in unknown], max_chars=600, max_items=SHOWN)


def _listed_mrkdwn(unknown: Sequence[str]) -> str:
    return join_limited([code(u, 92) for u in unknown], max_chars=900, max_items=SHOWN)


def channels_not_found_text(unknown: Sequence[str]) -> str:
    """`No channel found for C1, C2 and 7 more. Choose …`: for a form's inline error (plain)."""
    return f"No channel found for {_listed_plain(unknown)}. Choose {ACCEPTED}."


def channels_not_found_reply(
    unknown: Sequence[str], usage_line: str | None = None, *, outcome: str = NOTHING_CHANGED
) -> Reply:
    """Channels named by a command (or a form answered later) that Slack does not list."""
    accepted = f"Accepted: {ACCEPTED}."
    notes = [escape_mrkdwn(accepted)]
    if usage_line:
        notes.append(f"`{mrkdwn_text(one_line(usage_line).replace('`', chr(39)), 300)}`")
    blocks: list[Block] = [
        section(
            f":warning: No channel found for {_listed_mrkdwn(unknown)}. {mrkdwn_text(outcome, 200)}"
        ),
        context(*notes),
    ]
    plain = f"No channel found for {_listed_plain(unknown)}. {outcome}\n{accepted}"
    if usage_line:
        plain += f"\n{usage_line}"
    return _reply(escape_mrkdwn(plain), blocks)


CHECK_FAILED = (
    "The channels could not be checked with Slack just now. Please try again in a minute."
)


def channel_check_failed_text() -> str:
    """For a form's inline error."""
    return f"{CHECK_FAILED} {NOTHING_CHANGED}"


def channel_check_failed_reply(*, outcome: str = NOTHING_CHANGED) -> Reply:
    """Slack's channel list could not be read (an error, or not in time): nothing was done."""
    text = f"{CHECK_FAILED} {outcome}"
    return _reply(escape_mrkdwn(text), [section(f":warning: {mrkdwn_text(text, 500)}")])
