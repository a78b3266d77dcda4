"""Every `action_id`, `block_id` and `callback_id` the app's surfaces use, in one place.

Builders put them into views and messages; the listeners that route them import the same constants
(`@app.action(ids.HOME_CANCEL_RUN)`). Values are dotted: `<surface>.<thing>`. Imports nothing.
"""

from __future__ import annotations

# --- App Home: actions (buttons) -------------------------------------------------------------
HOME_SCHEDULE_CREATE = "home.schedule_create"  # opens the schedule modal, no schedule yet
HOME_SCHEDULE_EDIT = "home.schedule_edit"  # opens the schedule modal on the existing schedule
HOME_SCHEDULE_PAUSE = "home.schedule_pause"
HOME_SCHEDULE_RESUME = "home.schedule_resume"
HOME_SCHEDULE_DELETE = "home.schedule_delete"  # carries a confirm dialog
HOME_RUN_NOW = "home.run_now"  # opens the run-now modal
HOME_CANCEL_RUN = "home.cancel_run"  # value: the job_run_id
HOME_REFRESH = "home.refresh"
HOME_SEARCH_OPEN = "home.search_open"  # opens the search modal

# --- App Home: blocks --------------------------------------------------------------------------
HOME_SCHEDULE_BLOCK = "home.schedule"
HOME_SCHEDULE_ACTIONS_BLOCK = "home.schedule_actions"
HOME_RUN_BLOCK = "home.run"
HOME_RUN_ACTIONS_BLOCK = "home.run_actions"
HOME_PROGRESS_BLOCK = "home.progress"
HOME_RECENT_RUNS_BLOCK = "home.recent_runs"
HOME_TOTALS_BLOCK = "home.totals"
HOME_SEARCH_BLOCK = "home.search"

# --- Schedule modal ------------------------------------------------------------------------------
SCHEDULE_MODAL = "schedule_modal.view"  # callback_id
SCHEDULE_PRESET_BLOCK = "schedule_modal.preset"
SCHEDULE_PRESET_ACTION = "schedule_modal.preset_select"  # block_actions: fill the cron input
# The cron input's block_id is this prefix, plus `.r<N>` after a preset was applied: a new block_id
# makes Slack drop what was typed and show the preset's cron (same ids keep the typed value).
SCHEDULE_CRON_BLOCK = "schedule_modal.cron"
SCHEDULE_CRON_ACTION = "schedule_modal.cron_input"
SCHEDULE_DAYS_BLOCK = "schedule_modal.days"
SCHEDULE_DAYS_ACTION = "schedule_modal.days_input"
SCHEDULE_TZ_BLOCK = "schedule_modal.tz"
SCHEDULE_TZ_ACTION = "schedule_modal.tz_input"
SCHEDULE_SCOPE_BLOCK = "schedule_modal.scope"
SCHEDULE_SCOPE_ACTION = "schedule_modal.scope_radio"
SCHEDULE_CHANNELS_BLOCK = "schedule_modal.channels"
SCHEDULE_CHANNELS_ACTION = "schedule_modal.channels_select"

# --- Run-now modal --------------------------------------------------------------------------------
RUN_MODAL = "run_modal.view"  # callback_id
RUN_DAYS_BLOCK = "run_modal.days"
RUN_DAYS_ACTION = "run_modal.days_input"
RUN_SCOPE_BLOCK = "run_modal.scope"
RUN_SCOPE_ACTION = "run_modal.scope_radio"
RUN_CHANNELS_BLOCK = "run_modal.channels"
RUN_CHANNELS_ACTION = "run_modal.channels_select"

# --- Search modal (App Home's "Search the history") ----------------------------------------------
SEARCH_MODAL = "search_modal.view"  # callback_id; submitting it searches, results in the modal
SEARCH_WORDS_BLOCK = "search_modal.words"
SEARCH_WORDS_ACTION = "search_modal.words_input"
SEARCH_CHANNEL_BLOCK = "search_modal.channel"
SEARCH_CHANNEL_ACTION = "search_modal.channel_select"
SEARCH_AUTHOR_BLOCK = "search_modal.author"
SEARCH_AUTHOR_ACTION = "search_modal.author_select"
SEARCH_AFTER_BLOCK = "search_modal.after"
SEARCH_AFTER_ACTION = "search_modal.after_date"
SEARCH_BEFORE_BLOCK = "search_modal.before"
SEARCH_BEFORE_ACTION = "search_modal.before_date"
SEARCH_MODAL_MORE = (
    "search_modal.more"  # block_actions in the modal; value: the caller's opaque page
)
SEARCH_MODAL_MORE_BLOCK = "search_modal.more_actions"

# Radio values shared by both modals.
SCOPE_ALL = "all"
SCOPE_CHOSEN = "chosen"

# --- DMs ----------------------------------------------------------------------------------------------
DM_RETRY_RUN = "dm.retry_run"  # value: the failed job_run_id
DM_CANCEL_RUN = "dm.cancel_run"  # value: the job_run_id in progress
DM_RUN_ACTIONS_BLOCK = "dm.run_actions"

# --- Ephemeral replies ---------------------------------------------------------------------------------
REPLY_CANCEL_RUN = "reply.cancel_run"  # value: the job_run_id in progress
REPLY_RUN_ACTIONS_BLOCK = "reply.run_actions"
# `/backfill search`'s ephemeral results: the "More" button; value: the caller's opaque next page
# (at most 2,000 characters, `blocks.search.MAX_MORE_VALUE`).
SEARCH_MORE = "search.more"
SEARCH_MORE_BLOCK = "search.more_actions"
# `/backfill purge`'s ephemeral confirmation: Purge (danger, with a confirm dialog) and Cancel.
PURGE_CONFIRM = "purge.confirm"
PURGE_CANCEL = "purge.cancel"
PURGE_ACTIONS_BLOCK = "purge.actions"


def all_ids() -> dict[str, str]:
    """Every constant of this module by name (contract tests check uniqueness and routing)."""
    return {
        k: v
        for k, v in globals().items()
        if k.isupper() and isinstance(v, str) and not k.startswith("SCOPE_")
    }
