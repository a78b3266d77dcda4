"""The browser's part of an OAuth install: a workspace admin opens the app's install page, allows
the app on fakeslack's authorize page, and is sent back to the app's redirect URL. For tests and
the demo, against a real app over HTTP (Bolt's `/slack/install` and `/slack/oauth_redirect`)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import aiohttp

STATE_COOKIE = "slack-app-oauth-state"  # Bolt's
_AUTHORIZE_LINK = re.compile(r'href="([^"]+/oauth/v2/authorize[^"]+)"')


class InstallFailed(AssertionError):
    """A step of the install did not answer as it should; says which and what came back."""


async def install_through_browser(
    http: aiohttp.ClientSession, app_url: str, team_id: str, *, org: bool = False
) -> str:
    """Install the app served at `app_url` (`http://host:port`) on workspace `team_id`, as its
    admin would in a browser (`org`: for the workspace's whole Enterprise Grid organisation, as
    an org admin); the page the app shows at the end."""
    async with http.get(f"{app_url}/slack/install") as page:
        html = await page.text()
        cookie = page.cookies.get(STATE_COOKIE)
    link = _AUTHORIZE_LINK.search(html)
    if page.status != 200 or link is None or cookie is None:
        raise InstallFailed(f"install page: HTTP {page.status}: {html[:300]}")
    authorize = link.group(1).replace("&amp;", "&")
    # fakeslack's authorize page needs to know who is logged in: its workspace.
    headers = {"X-Fake-Team": team_id, **({"X-Fake-Org-Install": "1"} if org else {})}
    async with http.get(authorize, headers=headers, allow_redirects=False) as allowed:
        if allowed.status != 302:
            raise InstallFailed(f"authorize: HTTP {allowed.status}: {(await allowed.text())[:300]}")
        location = urlsplit(allowed.headers["Location"])
    async with http.get(
        f"{app_url}{location.path}?{location.query}",
        headers={"Cookie": f"{STATE_COOKIE}={cookie.value}"},
    ) as done:
        body = await done.text()
    if done.status != 200:
        raise InstallFailed(f"redirect: HTTP {done.status}: {body[:300]}")
    return body
