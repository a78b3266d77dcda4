"""Every echo of user text is escaped in the fallback `text` exactly as in the blocks (issue 10,
finding 7): Slack's escaping of `&`, `<`, `>`, and mrkdwn's formatting characters made inert
where a value the user chose (a channel label) lands in mrkdwn. No user string ever yields a
`<!`, `<http`, `<@` or `<#` sequence that our own code did not write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blocks.dm import run_failure_blocks, run_failure_text, run_progress_blocks
from blocks.home import home_view
from blocks.models import ChannelRef
from blocks.replies import (
    Reply,
    admin_only_reply,
    error_reply,
    invalid_schedule_reply,
    list_reply,
    parse_error_reply,
    run_started_reply,
    schedule_saved_reply,
    status_reply,
    unknown_channels_reply,
)
from blocks.text import channel_label, user_text
from db.records import Progress, Run, Schedule
from handlers import grammar
from tests.blocks.samples import NOW, RUNNING
from tests.support.block_trees import nodes, strings

SEQUENCES = ("<!", "<http", "<@", "<#")
HOSTILE = (
    "<!channel>",
    "<!here|here>",
    "<https://evil.example|click>",
    "<@U0ADMIN01>",
    "<#C0GENERAL|general>",
    "&lt;!channel&gt;",
    "*pwn*_x_~y~`code`",
    "a > b < c & d",
)
RUN_USAGE = "/backfill run [days=N] [channels=#a,#b]"


def mrkdwn_strings(blocks: Any) -> list[str]:
    """The `text` of every mrkdwn object: where Slack parses `<…>` and formatting."""
    return [
        node["text"]
        for node in nodes(blocks)
        if isinstance(node, dict)
        and node.get("type") == "mrkdwn"
        and isinstance(node.get("text"), str)
    ]


def counts(reply_text: str, blocks: Any) -> dict[str, tuple[int, int]]:
    rendered = "\n".join(mrkdwn_strings(blocks))
    return {seq: (reply_text.count(seq), rendered.count(seq)) for seq in SEQUENCES}


def assert_same_control_sequences(build: Callable[[str], Reply], hostile: str) -> None:
    """`build` with the user's string writes exactly the `<!`/`<http`/`<@`/`<#` sequences it
    writes with a harmless stand-in (empty for empty: an unnamed channel is shown by its id,
    which our code writes as `<#C…>`): none come from the user."""
    reply, plain = build(hostile), build("x" if hostile else "")
    assert counts(reply.text, reply.blocks) == counts(plain.text, plain.blocks), (hostile, reply)


# --- the findings, one by one --------------------------------------------------------------------


def test_parse_error_fallback_text_is_escaped_like_its_blocks() -> None:
    parsed = grammar.parse_command("run days=<!channel>")
    assert isinstance(parsed, grammar.ParseError)
    reply = parse_error_reply(parsed.message, parsed.usage_line)
    assert "<!channel>" not in reply.text
    assert "&lt;!channel&gt;" in reply.text
    assert "&lt;!channel&gt;" in json.dumps(reply.blocks)
    assert "<!channel>" not in json.dumps(reply.blocks)


def test_link_in_unknown_channel_names_is_escaped_in_text_and_blocks() -> None:
    reply = unknown_channels_reply(["<https://evil.example|click>", "ok"], RUN_USAGE)
    assert "<https://" not in reply.text and "<https://" not in json.dumps(reply.blocks)
    escaped = user_text("<https://evil.example|click>", 80)
    assert escaped in reply.text and escaped in json.dumps(reply.blocks, ensure_ascii=False)


def test_channel_label_is_inert_mrkdwn_in_run_started_reply() -> None:
    reply = run_started_reply(7, days=1, channels=[ChannelRef("CAAAAAAAA", "*pwn*_x_~y~")])
    shown = "\n".join(mrkdwn_strings(reply.blocks))
    for formatting in ("*pwn*", "_x_", "~y~"):
        assert formatting not in shown and formatting not in reply.text, formatting
    label = channel_label("CAAAAAAAA", "*pwn*_x_~y~")
    assert label in shown and label in reply.text  # the same rendering in both


def test_names_with_inner_underscores_are_kept_as_typed() -> None:
    assert channel_label("C1", "team_eng_x") == "#team_eng_x"
    assert channel_label("C1", "_x_") != "#_x_"


def test_error_and_refusal_fallbacks_are_escaped() -> None:
    for reply in (
        error_reply("Unknown time zone <!channel>."),
        admin_only_reply("<!here> do things"),
        invalid_schedule_reply("Bad cron <https://evil.example|x>."),
    ):
        assert "<!" not in reply.text and "<http" not in reply.text, reply.text
        assert all("<!" not in t and "<http" not in t for t in strings(reply.blocks))


def test_refusals_worded_by_the_scheduler_keep_their_exact_mentions_only() -> None:
    reply = error_reply(
        "Run #1 started by <@U0ADMIN01> in <#C0GENERAL>; <@U0X|x> <!here> <https://evil.example|x>"
    )
    for part in (reply.text, "\n".join(mrkdwn_strings(reply.blocks))):
        assert "<@U0ADMIN01>" in part and "<#C0GENERAL>" in part
        assert "<@U0X|" not in part and "<!" not in part and "<http" not in part


def test_failure_dm_fallback_is_escaped_like_its_blocks() -> None:
    run = Run(
        job_run_id=3,
        workspace_id="T0ADMIN01",
        job_type="manual",
        status="failed",
        started_at=NOW,
        error_message="channel <!channel> said <https://evil.example|x>",
        triggered_by="U0ADMIN01",
    )
    text = run_failure_text(run, action_taken="Retry <!here>.", retry_allowed=True)
    assert "<!" not in text and "<http" not in text
    blocks = run_failure_blocks(run, action_taken="Retry <!here>.", retry_allowed=True)
    assert all("<!" not in t and "<http" not in t for t in strings(blocks))


# --- every reply that echoes user input, for any string -----------------------------------------

hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=120),
    st.lists(st.sampled_from(HOSTILE + ("a", " ", "|", "<", ">", "&")), max_size=12).map("".join),
)


def schedule_with(text: str) -> Schedule:
    """A schedule whose cron (so also its description, "cron …") and one channel id carry the
    text: builders must keep whatever a row holds inert."""
    return Schedule(
        schedule_id=1,
        workspace_id="T0ADMIN01",
        cron_expression=f"0 2 * * {text}",
        timezone="UTC",
        days_to_backfill=3,
        include_all_channels=False,
        channel_ids=(text, "C0BBBBBBB"),
    )


BUILDERS: dict[str, Callable[[str], Reply]] = {
    "parse_error": lambda u: parse_error_reply(f"`days` got `{u}`.", RUN_USAGE),
    "error_with_usage": lambda u: error_reply(f"Refused: {u}", RUN_USAGE),
    "invalid_schedule": lambda u: invalid_schedule_reply(f"Bad cron {u}."),
    "admin_only": admin_only_reply,
    "unknown_channels": lambda u: unknown_channels_reply([u, "general"], RUN_USAGE),
    "run_started_label": lambda u: run_started_reply(
        4, days=2, channels=[ChannelRef("C0AAAAAAA", u), ChannelRef("C0BBBBBBB")]
    ),
    "run_started_id": lambda u: run_started_reply(4, days=2, channels=[ChannelRef(u)]),
    "schedule_saved": lambda u: schedule_saved_reply(
        schedule_with(u), created=True, viewer_tz="UTC", now=NOW
    ),
    "list": lambda u: list_reply(schedule_with(u), viewer_tz="UTC", now=NOW),
    "status": lambda u: status_reply(
        RUNNING,
        Progress(
            channels_done=1,
            channels_total=3,
            messages_stored=5,
            current_channel=u,
            job_run_id=RUNNING.job_run_id,
        ),
        [],
        viewer_tz="UTC",
        now=NOW,
    ),
    "failure_dm": lambda u: Reply(
        text=run_failure_text(_failed(u), action_taken=f"Retry {u}"),
        blocks=run_failure_blocks(_failed(u), action_taken=f"Retry {u}", retry_allowed=True),
    ),
    "progress_dm": lambda u: Reply(
        text="",
        blocks=run_progress_blocks(
            Progress(
                channels_done=1,
                channels_total=3,
                messages_stored=5,
                current_channel=u,
                job_run_id=9,
            ),
            now=NOW,
        ),
    ),
    "home": lambda u: Reply(
        text="",
        blocks=home_view(
            schedule_with(u),
            None,
            None,
            [_failed(u)],
            None,
            is_admin=True,
            members_can_run=True,
            viewer_tz="UTC",
            now=NOW,
            viewer_id="U0ADMIN01",
        )["blocks"],
    ),
}


def _failed(u: str) -> Run:
    return Run(
        job_run_id=3,
        workspace_id="T0ADMIN01",
        job_type="manual",
        status="failed",
        error_message=u,
        triggered_by="U0ADMIN01",
        started_at=NOW,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(user=hostile_text, builder=st.sampled_from(sorted(BUILDERS)))
@example(user="<!channel>", builder="parse_error")
@example(user="<#CAAAAAAAA|*pwn*_x_~y~>", builder="run_started_label")
def test_no_user_string_writes_slack_control_sequences(user: str, builder: str) -> None:
    assert_same_control_sequences(BUILDERS[builder], user)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        hostile_text,
        hostile_text.map(lambda u: f"run days={u}"),
        hostile_text.map(lambda u: f"run channels={u}"),
        hostile_text.map(lambda u: f'schedule "{u}" tz={u}'),
        hostile_text.map(lambda u: f"history {u}"),
    )
)
def test_parse_errors_of_any_command_never_write_control_sequences(text: str) -> None:
    """Whatever is typed after `/backfill`, a refusal by the parser carries none of Slack's
    control sequences, in `text` or blocks (our own parse errors write none)."""
    parsed = grammar.parse_command(text)
    if not isinstance(parsed, grammar.ParseError):
        return
    reply = parse_error_reply(parsed.message, parsed.usage_line)
    rendered = [reply.text, *strings(reply.blocks)]
    for seq in SEQUENCES:
        assert not any(seq in part for part in rendered), (text, seq, reply)
