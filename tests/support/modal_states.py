"""`view.state.values` of the schedule and run modals as Slack sends them on submission, for the
parser, handler and scenario tests. Values are taken as given (any type), so tests can also send
what Slack never would. Not a test module."""

from __future__ import annotations

from typing import Any

from blocks import ids


def _scope(scope: Any) -> dict[str, Any]:
    return {"type": "radio_buttons", "selected_option": None if scope is None else {"value": scope}}


def _channels(channels: Any) -> dict[str, Any]:
    return {"type": "multi_conversations_select", "selected_conversations": list(channels)}


def schedule_state(
    cron: Any = "0 2 * * *",
    days: Any = "7",
    tz: Any = "Europe/Paris",
    scope: Any = ids.SCOPE_ALL,
    channels: Any = (),
    cron_block: str = ids.SCHEDULE_CRON_BLOCK,
) -> dict[str, Any]:
    """The schedule modal's values (`cron_block`: the cron input's block id, which changes when
    a preset rebuilds the modal)."""
    return {
        cron_block: {ids.SCHEDULE_CRON_ACTION: {"type": "plain_text_input", "value": cron}},
        ids.SCHEDULE_DAYS_BLOCK: {
            ids.SCHEDULE_DAYS_ACTION: {"type": "number_input", "value": days}
        },
        ids.SCHEDULE_TZ_BLOCK: {ids.SCHEDULE_TZ_ACTION: {"type": "plain_text_input", "value": tz}},
        ids.SCHEDULE_SCOPE_BLOCK: {ids.SCHEDULE_SCOPE_ACTION: _scope(scope)},
        ids.SCHEDULE_CHANNELS_BLOCK: {ids.SCHEDULE_CHANNELS_ACTION: _channels(channels)},
    }


def run_state(days: Any = "3", scope: Any = ids.SCOPE_ALL, channels: Any = ()) -> dict[str, Any]:
    """The run modal's values."""
    return {
        ids.RUN_DAYS_BLOCK: {ids.RUN_DAYS_ACTION: {"type": "number_input", "value": days}},
        ids.RUN_SCOPE_BLOCK: {ids.RUN_SCOPE_ACTION: _scope(scope)},
        ids.RUN_CHANNELS_BLOCK: {ids.RUN_CHANNELS_ACTION: _channels(channels)},
    }
