"""The two modals (schedule, run now) and the parsers of their submissions, side by side.

Pure: plain data in, a `modal` view dict out; `parse_*_submission(view["state"]["values"])` return
the form's values or `{block_id: message}` for `ack(response_action="errors", errors=…)`, and never
raise whatever the payload holds. Imports only `blocks.*` and `slack_sdk.models`; the days range,
cron length, channel cap and id shapes and the time-zone shape come from `blocks.limits`. One
piece (~490 lines) because a modal's builder and the parser of its submission live side by side
(style.md), and both modals share the days, scope and channel inputs and their parsers.

Presets: the preset menu (`ids.SCHEDULE_PRESET_ACTION`, option value = the preset's cron) sends a
`block_actions` payload. Its listener answers with `views.update(view_id=…, hash=…,
view=schedule_modal(existing, default_tz=…, cron_value=<selected cron>,
context=replace(ctx, cron_revision=ctx.cron_revision + 1)))`, where `ctx =
ModalContext.from_metadata(view["private_metadata"])`. Slack keeps what the admin typed in inputs
whose `block_id`/`action_id` are unchanged (days, time zone, channels), so the cron input's
`block_id` carries the revision (`schedule_modal.cron.r2`): a new block id makes Slack show the
preset's cron instead of the typed one. `parse_schedule_submission` finds the cron block by prefix
and reports its actual `block_id` (`ScheduleFormInput.cron_block_id`) so the handler can attach
`validate_schedule`'s cron error to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ConversationFilter,
    ConversationMultiSelectElement,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from blocks import ids
from blocks.elements import section
from blocks.limits import (
    DEFAULT_DAYS,
    DEFAULT_TIMEZONE,
    MAX_CHANNELS,
    MAX_CRON_CHARS,
    MAX_DAYS,
    MAX_TZ_CHARS,
    MIN_DAYS,
    check_days,
    clamp_days,
    is_conversation_id,
    looks_like_timezone,
)
from blocks.models import DEFAULT_PRESETS, CronPreset
from blocks.text import plain_text
from db.records import Schedule

MAX_PRESETS = 100  # static_select options
_DIGITS = re.compile(r"[0-9]{1,6}")
_ID_FIELD = re.compile(r"[A-Za-z0-9._\-]{0,64}")

SCOPE_OPTIONS = {
    ids.SCOPE_ALL: "All channels the app can read",
    ids.SCOPE_CHOSEN: "Only the channels chosen below",
}


# --- what travels in private_metadata ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModalContext:
    """What a submission needs beyond the form, carried in `private_metadata` as compact JSON.

    `team_id` is only a cross-check: the workspace always comes from the verified request.
    `channel_id` is where the command was typed (for a confirmation), `editing` whether the modal
    opened on an existing schedule, `cron_revision` how many presets were applied (see above)."""

    team_id: str = ""
    user_id: str = ""
    channel_id: str = ""
    editing: bool = False
    schedule_id: int | None = None
    cron_revision: int = 0

    def to_metadata(self) -> str:
        data: dict[str, Any] = {
            "v": 1,
            "team": _id_field(self.team_id),
            "user": _id_field(self.user_id),
            "channel": _id_field(self.channel_id),
            "editing": bool(self.editing),
            "rev": max(0, min(int(self.cron_revision), 10**6)),
        }
        if self.schedule_id is not None:
            data["schedule"] = int(self.schedule_id)
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, metadata: object) -> ModalContext:
        """Never raises: unreadable metadata gives an empty context."""
        try:
            data = json.loads(metadata) if isinstance(metadata, str) and metadata else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()

        def text(key: str) -> str:
            value = data.get(key)
            return _id_field(value) if isinstance(value, str) else ""

        def number(key: str) -> int | None:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            team_id=text("team"),
            user_id=text("user"),
            channel_id=text("channel"),
            editing=data.get("editing") is True,
            schedule_id=number("schedule"),
            cron_revision=max(0, min(number("rev") or 0, 10**6)),
        )


def _id_field(value: str) -> str:
    return value if _ID_FIELD.fullmatch(value) else ""


# --- form results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleFormInput:
    cron: str
    days: int
    tz: str
    include_all_channels: bool
    channel_ids: tuple[str, ...]
    cron_block_id: str = (
        ids.SCHEDULE_CRON_BLOCK
    )  # where to show the scheduler's verdict on the cron


@dataclass(frozen=True, slots=True)
class RunFormInput:
    days: int
    include_all_channels: bool
    channel_ids: tuple[str, ...]


# --- the schedule modal ---------------------------------------------------------------------------


def cron_block_id(revision: int) -> str:
    return ids.SCHEDULE_CRON_BLOCK if revision <= 0 else f"{ids.SCHEDULE_CRON_BLOCK}.r{revision}"


def schedule_modal(
    existing: Schedule | None,
    *,
    default_tz: str | None,
    presets: Sequence[CronPreset] = DEFAULT_PRESETS,
    cron_value: str | None = None,
    context: ModalContext | None = None,
    default_days: int = DEFAULT_DAYS,
) -> dict[str, Any]:
    """Create (no `existing`) or edit the schedule. `cron_value` replaces the cron shown (a preset
    was picked); `default_tz` is the admin's own Slack time zone, used when creating."""
    ctx = context or ModalContext()
    editing = existing is not None
    ctx = ModalContext(
        team_id=ctx.team_id,
        user_id=ctx.user_id,
        channel_id=ctx.channel_id,
        editing=editing,
        schedule_id=existing.schedule_id if existing is not None else ctx.schedule_id,
        cron_revision=ctx.cron_revision,
    )
    cron = cron_value if cron_value is not None else (existing.cron_expression if existing else "")
    cron = " ".join(cron.split())[:MAX_CRON_CHARS]
    days = clamp_days(existing.days_to_backfill if existing else default_days)
    tz = (existing.timezone if existing else None) or default_tz or DEFAULT_TIMEZONE
    tz = tz if looks_like_timezone(tz) else DEFAULT_TIMEZONE

    options = _preset_options(presets)
    preset_select = StaticSelectElement(
        action_id=ids.SCHEDULE_PRESET_ACTION,
        placeholder=PlainTextObject(text="Presets"),
        options=options
        or [Option(text=PlainTextObject(text="Every day at 02:00"), value="0 2 * * *")],
        initial_option=next((o for o in options if o.value == cron), None),
    )
    chosen = existing.channel_ids if existing and not existing.include_all_channels else ()
    blocks: list[Block] = [
        section(
            "Backfill on a timetable. Pick a preset, or write a cron expression: "
            "minute, hour, day of month, month, day of week.",
            block_id=ids.SCHEDULE_PRESET_BLOCK,
            accessory=preset_select,
        ),
        InputBlock(
            block_id=cron_block_id(ctx.cron_revision),
            label=PlainTextObject(text="Cron expression"),
            hint=PlainTextObject(
                text="Example: 0 2 * * * runs every day at 02:00 in the time zone below."
            ),
            element=PlainTextInputElement(
                action_id=ids.SCHEDULE_CRON_ACTION,
                placeholder=PlainTextObject(text="0 2 * * *"),
                initial_value=cron or None,
                max_length=MAX_CRON_CHARS,
            ),
        ),
        _days_input(ids.SCHEDULE_DAYS_BLOCK, ids.SCHEDULE_DAYS_ACTION, days),
        InputBlock(
            block_id=ids.SCHEDULE_TZ_BLOCK,
            label=PlainTextObject(text="Time zone"),
            hint=PlainTextObject(
                text="An IANA name such as Europe/Paris, America/New_York or UTC."
            ),
            element=PlainTextInputElement(
                action_id=ids.SCHEDULE_TZ_ACTION,
                placeholder=PlainTextObject(text="Area/City"),
                initial_value=tz,
                max_length=MAX_TZ_CHARS,
            ),
        ),
        *_channel_inputs(
            ids.SCHEDULE_SCOPE_BLOCK,
            ids.SCHEDULE_SCOPE_ACTION,
            ids.SCHEDULE_CHANNELS_BLOCK,
            ids.SCHEDULE_CHANNELS_ACTION,
            chosen,
        ),
    ]
    return View(
        type="modal",
        callback_id=ids.SCHEDULE_MODAL,
        title=PlainTextObject(text="Edit schedule" if editing else "New schedule"),
        submit=PlainTextObject(text="Save schedule"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=ctx.to_metadata(),
        blocks=blocks,
    ).to_dict()


def _preset_options(presets: Sequence[CronPreset]) -> list[Option]:
    options: list[Option] = []
    seen: set[str] = set()
    for preset in presets:
        value = " ".join(preset.cron.split())
        if not value or len(value) > 150 or value in seen:
            continue  # option values are ≤ 150 characters and unique
        seen.add(value)
        options.append(Option(text=PlainTextObject(text=plain_text(preset.label, 75)), value=value))
        if len(options) == MAX_PRESETS:
            break
    return options


def _days_input(block_id: str, action_id: str, days: int) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=PlainTextObject(text="Days to backfill"),
        hint=PlainTextObject(
            text=f"Each run stores the last N × 24 hours before it starts ({MIN_DAYS}–{MAX_DAYS})."
        ),
        element=NumberInputElement(
            action_id=action_id,
            is_decimal_allowed=False,
            initial_value=str(days),
            min_value=str(MIN_DAYS),
            max_value=str(MAX_DAYS),
        ),
    )


def _channel_inputs(
    scope_block: str,
    scope_action: str,
    channels_block: str,
    channels_action: str,
    chosen: Sequence[str],
) -> list[Block]:
    options = [
        Option(text=PlainTextObject(text=label), value=value)
        for value, label in SCOPE_OPTIONS.items()
    ]
    initial = options[1] if chosen else options[0]
    initial_ids = [c for c in chosen if is_conversation_id(c)][:MAX_CHANNELS]
    return [
        InputBlock(
            block_id=scope_block,
            label=PlainTextObject(text="Channels"),
            element=RadioButtonsElement(
                action_id=scope_action, options=options, initial_option=initial
            ),
        ),
        InputBlock(
            block_id=channels_block,
            label=PlainTextObject(text="Chosen channels"),
            hint=PlainTextObject(
                text="Public and private channels; used with “Only the channels chosen below”."
            ),
            optional=True,
            element=ConversationMultiSelectElement(
                action_id=channels_action,
                placeholder=PlainTextObject(text="Choose channels"),
                initial_conversations=initial_ids or None,
                filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
            ),
        ),
    ]


# --- the run-now modal ---------------------------------------------------------------------------------


def run_modal(
    *, default_days: int = DEFAULT_DAYS, context: ModalContext | None = None
) -> dict[str, Any]:
    """Start a manual run: days and channels; the run reports to whoever starts it."""
    ctx = context or ModalContext()
    blocks: list[Block] = [
        section("Backfill now, in the background. You get a direct message when the run ends."),
        _days_input(ids.RUN_DAYS_BLOCK, ids.RUN_DAYS_ACTION, clamp_days(default_days)),
        *_channel_inputs(
            ids.RUN_SCOPE_BLOCK,
            ids.RUN_SCOPE_ACTION,
            ids.RUN_CHANNELS_BLOCK,
            ids.RUN_CHANNELS_ACTION,
            (),
        ),
    ]
    return View(
        type="modal",
        callback_id=ids.RUN_MODAL,
        title=PlainTextObject(text="Run backfill now"),
        submit=PlainTextObject(text="Start run"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=ctx.to_metadata(),
        blocks=blocks,
    ).to_dict()


# --- submissions -----------------------------------------------------------------------------------------

FORM_UNREADABLE = "The form could not be read. Please close it and try again."


def parse_schedule_submission(values: object) -> ScheduleFormInput | dict[str, str]:
    """`view["state"]["values"]` of the schedule modal → the form, or `{block_id: message}`."""
    try:
        return _parse_schedule(values)
    except Exception:  # noqa: BLE001 - a malformed payload is the user's error message, never a crash
        return {ids.SCHEDULE_CRON_BLOCK: FORM_UNREADABLE}


def parse_run_submission(values: object) -> RunFormInput | dict[str, str]:
    """`view["state"]["values"]` of the run modal → the form, or `{block_id: message}`."""
    try:
        return _parse_run(values)
    except Exception:  # noqa: BLE001 - see above
        return {ids.RUN_DAYS_BLOCK: FORM_UNREADABLE}


def _parse_schedule(values: object) -> ScheduleFormInput | dict[str, str]:
    state = values if isinstance(values, Mapping) else {}
    errors: dict[str, str] = {}
    cron_blocks = sorted(
        (
            k
            for k in state
            if isinstance(k, str)
            and (k == ids.SCHEDULE_CRON_BLOCK or k.startswith(ids.SCHEDULE_CRON_BLOCK + "."))
        ),
        key=len,
    )
    cron_block = cron_blocks[-1] if cron_blocks else ids.SCHEDULE_CRON_BLOCK
    cron = " ".join((_text_value(state, cron_block, ids.SCHEDULE_CRON_ACTION) or "").split())
    if not cron:
        errors[cron_block] = "Enter a cron expression, or pick a preset."
    elif len(cron) > MAX_CRON_CHARS:
        errors[cron_block] = (
            f"The cron expression is too long (at most {MAX_CRON_CHARS} characters)."
        )

    days = _days(state, ids.SCHEDULE_DAYS_BLOCK, ids.SCHEDULE_DAYS_ACTION, errors)

    tz = (_text_value(state, ids.SCHEDULE_TZ_BLOCK, ids.SCHEDULE_TZ_ACTION) or "").strip()
    if not tz:
        errors[ids.SCHEDULE_TZ_BLOCK] = "Enter a time zone such as Europe/Paris or UTC."
    elif not looks_like_timezone(tz):
        errors[ids.SCHEDULE_TZ_BLOCK] = (
            "Enter an IANA time zone name such as Europe/Paris, America/New_York or UTC."
        )

    include_all, channels = _scope(
        state,
        (ids.SCHEDULE_SCOPE_BLOCK, ids.SCHEDULE_SCOPE_ACTION),
        (ids.SCHEDULE_CHANNELS_BLOCK, ids.SCHEDULE_CHANNELS_ACTION),
        errors,
    )
    if errors or days is None:
        return errors
    return ScheduleFormInput(
        cron=cron,
        days=days,
        tz=tz,
        include_all_channels=include_all,
        channel_ids=channels,
        cron_block_id=cron_block,
    )


def _parse_run(values: object) -> RunFormInput | dict[str, str]:
    state = values if isinstance(values, Mapping) else {}
    errors: dict[str, str] = {}
    days = _days(state, ids.RUN_DAYS_BLOCK, ids.RUN_DAYS_ACTION, errors)
    include_all, channels = _scope(
        state,
        (ids.RUN_SCOPE_BLOCK, ids.RUN_SCOPE_ACTION),
        (ids.RUN_CHANNELS_BLOCK, ids.RUN_CHANNELS_ACTION),
        errors,
    )
    if errors or days is None:
        return errors
    return RunFormInput(days=days, include_all_channels=include_all, channel_ids=channels)


def _element(state: Mapping[Any, Any], block_id: str, action_id: str) -> Mapping[Any, Any]:
    block = state.get(block_id)
    element = block.get(action_id) if isinstance(block, Mapping) else None
    return element if isinstance(element, Mapping) else {}


def _text_value(state: Mapping[Any, Any], block_id: str, action_id: str) -> str | None:
    value = _element(state, block_id, action_id).get("value")
    return value if isinstance(value, str) else None


def _days(
    state: Mapping[Any, Any], block_id: str, action_id: str, errors: dict[str, str]
) -> int | None:
    raw = (_text_value(state, block_id, action_id) or "").strip()
    message = f"Enter a whole number of days from {MIN_DAYS} to {MAX_DAYS}."
    if not _DIGITS.fullmatch(raw):
        errors[block_id] = message
        return None
    days = check_days(int(raw))
    if days is None:
        errors[block_id] = message
    return days


def _scope(
    state: Mapping[Any, Any],
    scope: tuple[str, str],
    channels: tuple[str, str],
    errors: dict[str, str],
) -> tuple[bool, tuple[str, ...]]:
    option = _element(state, *scope).get("selected_option")
    choice = option.get("value") if isinstance(option, Mapping) else None
    raw = _element(state, *channels).get("selected_conversations")
    chosen: dict[str, None] = {}
    if isinstance(raw, list):
        for item in raw:
            if is_conversation_id(item):
                chosen.setdefault(item)
                if len(chosen) > MAX_CHANNELS:
                    break  # already too many: a forged list of any length costs no more
    picked = list(chosen)
    if choice == ids.SCOPE_CHOSEN:
        if not picked:
            errors[channels[0]] = (
                "Choose at least one channel, or pick “All channels the app can read”."
            )
        elif len(picked) > MAX_CHANNELS:
            errors[channels[0]] = f"Choose at most {MAX_CHANNELS} channels, or pick all channels."
        return False, tuple(picked)
    if picked:
        errors[scope[0]] = (
            "You chose channels below: pick “Only the channels chosen below”, or clear the chosen channels."
        )
    return True, ()
