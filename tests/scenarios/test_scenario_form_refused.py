"""A form Slack will not open (`views.open`: an expired or forged `trigger_id`) is answered in
plain words with one log line, not "something went wrong" and a traceback."""

from __future__ import annotations

import logging

import pytest

from tests.scenarios.harness import Scenario


@pytest.mark.parametrize("error", ["expired_trigger_id", "invalid_trigger_id"])
async def test_form_slack_refuses_to_open_is_explained_without_a_traceback(
    ui: Scenario, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    ui.fake.faults.api_error(error, method="views.open")
    with caplog.at_level(logging.WARNING):
        seen = await ui.command("run", ui.admin)
    assert seen.status == 200
    assert "within 3 seconds" in seen.reply_text() and "Nothing was changed" in seen.reply_text()
    assert "something went wrong" not in seen.reply_text()
    refused = [r for r in caplog.records if "refused to open a form" in r.getMessage()]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]
    assert await ui.runs() == []
