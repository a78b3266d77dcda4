"""What it looks like when Slack could not answer at all (as opposed to answering `ok: false`):
the Web API client's own errors, the transport's, and a time bound running out. Listeners catch
these without importing the transport (`aiohttp`) themselves. Imports no module of ours."""

from __future__ import annotations

from typing import Final

import aiohttp
from slack_sdk.errors import SlackClientError

SLACK_UNREACHABLE: Final[tuple[type[BaseException], ...]] = (
    SlackClientError,
    aiohttp.ClientError,
    TimeoutError,
)
