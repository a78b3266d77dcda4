"""fakeslack's `users.conversations`: a person's channels, private ones only where the caller (the
bot) is a member too, as Slack documents; paginated."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

import fakeslack
from fakeslack.workspace import Channel


async def test_private_channels_are_listed_only_where_the_bot_is_a_member() -> None:
    ws = fakeslack.generate(seed=3, users=8, channels=4, messages=20, days=5)
    user = next(u for u in ws.users if not ws.users[u].get("is_bot") and u != ws.bot_user_id)
    ws.add_channel(
        Channel("C0SHARED001", "shared", is_private=True, members={ws.bot_user_id, user})
    )
    ws.add_channel(Channel("C0HIDDEN001", "hidden", is_private=True, members={user}))
    async with fakeslack.FakeSlack(ws, rate_limits=False) as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.base_url)
        seen: list[str] = []
        cursor = None
        while True:
            page = await client.users_conversations(
                user=user, types="private_channel", limit=1, cursor=cursor
            )
            seen += [c["id"] for c in page["channels"]]
            cursor = page["response_metadata"]["next_cursor"] or None
            if cursor is None:
                break
        assert seen == ["C0SHARED001"]
        public = await client.users_conversations(user=user, types="public_channel")
        assert {c["id"] for c in public["channels"]} == {
            c.id
            for c in ws.channels.values()
            if not c.is_private and not c.is_im and user in c.members
        }
