"""User text echoed back over real HTTP (issue 10, finding 7): a parse error quoting `<!channel>`
or a link, and a run started with a hostile channel label, are escaped in the ack's fallback
`text` exactly as in its blocks."""

from __future__ import annotations

import json

from tests.scenarios.harness import Scenario

CONTROL = ("<!", "<http", "<@")


def everything(reply: dict[str, object]) -> str:
    return f"{reply.get('text', '')}\n{json.dumps(reply.get('blocks'), ensure_ascii=False)}"


async def test_parse_errors_echo_user_text_escaped(ui: Scenario) -> None:
    s = ui
    for text in (
        "run days=<!channel>",
        "run days=<https://evil.example|click>",
        "history <!here>",
        "frobnicate <!channel> <@U0ADMIN01>",
    ):
        seen = await s.command(text, s.admin)
        assert seen.status == 200 and isinstance(seen.ack, dict), text
        shown = everything(seen.ack)
        assert not any(seq in shown for seq in CONTROL), (text, shown)
        if not text.startswith("frobnicate"):  # an unknown sub-command is not quoted
            assert "&lt;" in seen.ack["text"], text


async def test_run_started_reply_shows_a_hostile_channel_label_inert(ui: Scenario) -> None:
    s = ui
    channel = s.channels["general"] if "general" in s.channels else next(iter(s.channels.values()))
    seen = await s.command(f"run days=1 channels=<#{channel}|*pwn*_x_~y~>", s.admin)
    [reply] = seen.responses
    assert "started" in reply["text"], reply
    shown = everything(reply)
    for formatting in ("*pwn*", "_x_", "~y~"):
        assert formatting not in shown, (formatting, shown)
    await s.idle()
