"""Search from Slack: `/backfill search` (answered by `answer_search` through the command's
`ANSWERS`), its "More" button, and App Home's search modal (open, submit, "More").

Who searches is always the person of the verified request, judged again on every page: a "More"
button carries only the query and the page (`more_value`), never who may read what, so a forged
button finds nothing the presser could not find by typing the search themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks import ids, replies
from blocks.help import USAGE_BY_COMMAND
from blocks.modals import ModalContext
from blocks.search import (
    MAX_MORE_VALUE,
    MAX_SEARCH_CHARS,
    SearchQuery,
    parse_search_submission,
    search_modal,
    search_reply,
)
from handlers import grammar
from handlers.actions import Click, acked
from handlers.channels import check_channels
from handlers.deps import Deps, deps_of
from scheduler.channel_directory import ChannelLookupFailed
from scheduler.people import Viewer
from scheduler.search import SearchPage

log = logging.getLogger(__name__)
# A modal's submission must be answered within Slack's 3 seconds, results included.
MODAL_SEARCH_SECONDS = 2.2
_ID = re.compile(r"[A-Z0-9]{2,30}")
_MAX_FILTER_IDS = 100


def register(app: AsyncApp) -> None:
    app.action(ids.SEARCH_MORE)(acked(handle_search_more))
    app.action(ids.HOME_SEARCH_OPEN)(acked(handle_home_search_open, urgent=True))
    app.action(ids.SEARCH_MODAL_MORE)(acked(handle_modal_more, urgent=True))
    app.view(ids.SEARCH_MODAL)(handle_search_submission)


def refusal(viewer: Viewer, deps: Deps) -> replies.Reply | None:
    """Why `viewer` may not search (`SEARCH_ALLOWED`), or None."""
    if deps.may_search(viewer):
        return None
    if deps.search is not None and deps.search_allowed == "admins":
        return replies.admin_only_reply("search the stored history (SEARCH_ALLOWED=admins)")
    return replies.error_reply(
        "Search is for full members of this workspace: a guest reads only the channels they were "
        "invited to, and the stored copy cannot tell which those are."
    )


# -- the "More" value: the query and the page, nothing else ----------------------------------------


def more_value(query: SearchQuery, page: int) -> str:
    """A button's `value` for page `page` of `query` (compact JSON, ids and days only)."""
    return json.dumps(
        {
            "w": query.words,
            "c": list(query.channel_ids),
            "u": list(query.user_ids),
            "a": query.after.isoformat() if query.after else None,
            "b": query.before.isoformat() if query.before else None,
            "p": page,
        },
        separators=(",", ":"),
    )


def read_more_value(value: str) -> tuple[SearchQuery, int] | None:
    """The query and page a "More" value holds; None for anything else (forged or damaged)."""
    if not value or len(value) > MAX_MORE_VALUE:
        return None
    try:
        data = json.loads(value)
        words, page = data["w"], data["p"]
        channels, users = data["c"], data["u"]
        after = date.fromisoformat(data["a"]) if data["a"] is not None else None
        before = date.fromisoformat(data["b"]) if data["b"] is not None else None
    except (ValueError, KeyError, TypeError):
        return None
    fine = (
        isinstance(words, str)
        and 0 < len(words.strip()) <= MAX_SEARCH_CHARS
        and isinstance(page, int)
        and 1 < page <= 1000
        and isinstance(channels, list)
        and isinstance(users, list)
        and len(channels) <= _MAX_FILTER_IDS
        and len(users) <= _MAX_FILTER_IDS
        and all(isinstance(i, str) and _ID.fullmatch(i) for i in [*channels, *users])
    )
    if not fine:
        return None
    return SearchQuery(words, tuple(channels), tuple(users), after, before), page


# -- the slash command ------------------------------------------------------------------------------


async def answer_search(
    parsed: grammar.Search, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> replies.Reply:
    """`/backfill search …` after the acknowledgement: channel names resolved, then page 1."""
    channel_ids = parsed.channel_ids
    if parsed.channel_names:
        checked = await check_channels(
            deps,
            client,
            ids=parsed.channel_ids,
            names=parsed.channel_names,
            usage_line=USAGE_BY_COMMAND["search"],
            outcome="Nothing was searched.",
        )
        if isinstance(checked, replies.Reply):
            return checked
        channel_ids = checked.ids
    query = SearchQuery(
        parsed.words, tuple(channel_ids), parsed.user_ids, parsed.after, parsed.before
    )
    return await _page_reply(query, 1, client, deps, viewer)


async def _page_reply(
    query: SearchQuery, page: int, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> replies.Reply:
    found = await _search(query, page, client, deps, viewer)
    if isinstance(found, replies.Reply):
        return found
    more = more_value(query, page + 1) if found.more else None
    return search_reply(list(found.hits), query, tz=viewer.tz, page=page, more=more)


async def _search(
    query: SearchQuery, page: int, client: AsyncWebClient, deps: Deps, viewer: Viewer
) -> SearchPage | replies.Reply:
    refused = refusal(viewer, deps)
    if refused is not None or deps.search is None:
        return refused or replies.error_reply("Search is not available.")
    try:
        return await deps.search.search(
            client, deps.team_id, viewer.user_id, query, tz=viewer.tz, page=page
        )
    except ChannelLookupFailed:
        return replies.error_reply(
            "Slack did not list the channels in time, so nothing was searched. Try again shortly."
        )


# -- "More" under the command's results ----------------------------------------------------------


async def handle_search_more(click: Click) -> None:
    viewer = await click.viewer()
    read = read_more_value(click.value)
    if read is None:
        reply = replies.error_reply("That button no longer holds a search. Search again.")
    else:
        reply = await _page_reply(*read, click.client, click.deps, viewer)
    if click.respond is not None:
        await click.respond(**reply.as_kwargs(), replace_original=True)


# -- App Home's search modal -----------------------------------------------------------------------


async def handle_home_search_open(click: Click) -> None:
    viewer = await click.viewer()
    refused = refusal(viewer, click.deps)
    if refused is not None:
        log.info("search modal refused to %s", viewer.user_id)
        await click.deps.home.publish(click.client, click.user_id)
        return
    context = ModalContext(team_id=click.deps.team_id, user_id=viewer.user_id)
    await click.client.views_open(
        trigger_id=click.body["trigger_id"], view=search_modal(context=context)
    )


async def handle_search_submission(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    """Results in the modal itself, within Slack's 3 seconds (else the form says so)."""
    deps = deps_of(context)
    view = body.get("view") or {}
    parsed = parse_search_submission((view.get("state") or {}).get("values"))
    if isinstance(parsed, dict):
        await ack(response_action="errors", errors=parsed)
        return
    user_id = str((body.get("user") or {}).get("id") or "")
    try:
        viewer = await deps.people.viewer(client, user_id)
        found = await asyncio.wait_for(
            _search(parsed, 1, client, deps, viewer), MODAL_SEARCH_SECONDS
        )
    except TimeoutError:
        await ack(
            response_action="errors",
            errors={
                ids.SEARCH_WORDS_BLOCK: "The search took too long. Narrow it (a channel, a "
                "person or days) and try again."
            },
        )
        return
    if isinstance(found, replies.Reply):
        await ack(response_action="errors", errors={ids.SEARCH_WORDS_BLOCK: found.text[:150]})
        return
    more = more_value(parsed, 2) if found.more else None
    modal = search_modal(
        parsed,
        hits=list(found.hits),
        tz=viewer.tz,
        more=more,
        context=ModalContext(team_id=deps.team_id, user_id=user_id),
    )
    await ack(response_action="update", view=modal)


async def handle_modal_more(click: Click) -> None:
    view = click.body.get("view") or {}
    read = read_more_value(click.value)
    if read is None or not view.get("id"):
        return
    query, page = read
    viewer = await click.viewer()
    found = await _search(query, page, click.client, click.deps, viewer)
    if isinstance(found, replies.Reply):
        return
    more = more_value(query, page + 1) if found.more else None
    modal = search_modal(
        query,
        hits=list(found.hits),
        tz=viewer.tz,
        page=page,
        more=more,
        context=ModalContext(team_id=click.deps.team_id, user_id=viewer.user_id),
    )
    await click.client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
