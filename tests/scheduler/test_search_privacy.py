"""Private stays private (issue 16): whatever the words, filters (a forged `in:` naming any channel,
private ones included; `from:`; days) and page, a search returns only messages of channels the
person searching may read in Slack: public channels, and private channels they are a member of.
A hypothesis property over a workspace with several private channels of different members, the
real stores (SQLite, embedded Chroma) and fakeslack over HTTP answering the channel list and
the members."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

import fakeslack
from blocks.search import SearchQuery
from db.records import MessageRecord
from fakeslack.workspace import Channel
from scheduler.backfill.writer import write_batch
from scheduler.channel_directory import ChannelDirectory
from scheduler.search import SearchService
from tests.engine.engine_harness import open_stores, small_workspace

VOCABULARY = ["gateway", "deploy", "ERR_42", "lunch", "budget", "roadmap", "incident", "secret"]
BASE = 1_750_000_000


def private_channels(ws: fakeslack.Workspace, people: list[str]) -> list[Channel]:
    """Four private channels with the bot and different people (one with nobody else)."""
    groups = [set(people[:3]), set(people[2:6]), {people[0]}, set()]
    channels = []
    for n, members in enumerate(groups):
        channel = Channel(
            id=f"C0PRIV{n:05d}",
            name=f"private-{n}",
            is_private=True,
            members={ws.bot_user_id, *members},
        )
        ws.add_channel(channel)
        channels.append(channel)
    return channels


def readable_truth(ws: fakeslack.Workspace, user: str) -> set[str]:
    """What Slack lets `user` read among the channels the bot is in."""
    return {
        c.id
        for c in ws.channels.values()
        if not c.is_im and not c.deleted and (not c.is_private or user in c.members)
    }


def test_search_never_shows_a_channel_the_searcher_cannot_read(tmp_path: Path) -> None:
    ws = small_workspace(messages=40)
    people = sorted(u for u in ws.users if not ws.users[u].get("is_bot") and u != ws.bot_user_id)
    private = private_channels(ws, people)
    public = [c for c in ws.channels.values() if not c.is_private and not c.is_im]
    rng = random.Random(5)
    records = []
    for n in range(400):
        channel = rng.choice([*private, *private, *public])
        text = " ".join(rng.sample(VOCABULARY, 3)) + f" message {n}"
        author = rng.choice(people)
        records.append(
            MessageRecord(
                ws.team_id,
                channel.id,
                channel.name,
                f"{BASE + n * 3600}.000100",
                None,
                author,
                author,
                text,
            )
        )
    channel_ids = sorted(c.id for c in ws.channels.values() if not c.is_im)
    runner = asyncio.Runner()
    with fakeslack.FakeSlack(ws, rate_limits=False) as fake:
        stores_cm = open_stores(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", tmp_path / "chroma")
        stores = runner.run(stores_cm.__aenter__())
        try:
            runner.run(write_batch(stores.sessions, stores.vectors, records, []))
            client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
            service = SearchService(stores.sessions, stores.vectors, ChannelDirectory())
            shown_any = []

            @settings(
                max_examples=60,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(
                user=st.sampled_from(people[:8]),
                words=st.lists(
                    st.sampled_from([*VOCABULARY, "message", "zz"]), min_size=1, max_size=3
                ),
                in_=st.lists(st.sampled_from(channel_ids), max_size=3),
                from_=st.lists(st.sampled_from(people), max_size=2),
                after=st.one_of(st.none(), st.dates(date(2025, 6, 1), date(2025, 7, 15))),
                page=st.integers(1, 3),
            )
            def check(
                user: str,
                words: list[str],
                in_: list[str],
                from_: list[str],
                after: date | None,
                page: int,
            ) -> None:
                query = SearchQuery(" ".join(words), tuple(in_), tuple(from_), after, None)
                found = runner.run(
                    service.search(client, ws.team_id, user, query, tz="UTC", page=page)
                )
                allowed = readable_truth(ws, user)
                leaked = [
                    h.message.channel_id for h in found.hits if h.message.channel_id not in allowed
                ]
                assert leaked == [], (user, query, leaked)
                if in_:
                    assert all(h.message.channel_id in in_ for h in found.hits)
                if from_:
                    assert all(h.message.user_id in from_ for h in found.hits)
                shown_any.extend(h.message.channel_id for h in found.hits)

            check()
            # Not vacuous: private channels' messages were found by those who may read them.
            assert set(shown_any) & {c.id for c in private}
        finally:
            runner.run(stores_cm.__aexit__(None, None, None))
            runner.close()
