"""Static facts about the emulated Web API methods: rate-limit tier, scopes, rate profiles.

Values follow docs.slack.dev (as copied in shared/reference/slack-api-ref-methods); a test checks
the tiers against those files. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BOT_SCOPES: frozenset[str] = frozenset(
    {
        "channels:read",
        "groups:read",
        "channels:history",
        "groups:history",
        "channels:join",
        "users:read",
        "chat:write",
        "im:write",
        "commands",
    }
)

# Scopes of the default app-level token (`xapp-`): what Socket Mode needs.
DEFAULT_APP_SCOPES: frozenset[str] = frozenset({"connections:write"})

# Calls per minute for each tier (the documented floors, enforced as hard limits here).
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}


@dataclass(frozen=True)
class MethodSpec:
    name: str
    tier: str  # "t1".."t4" or "special"
    per_minute: int  # calls allowed in any 60 s window (per token, team, method)
    scope: str | None = None  # a fixed scope; channel-typed scopes are resolved by the handler
    per_channel_per_second: int | None = None  # chat.postMessage


def _t(name: str, tier: str, scope: str | None = None) -> MethodSpec:
    return MethodSpec(name, tier, TIER_PER_MINUTE[tier], scope)


METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in [
        MethodSpec("auth.test", "special", 600),
        _t("conversations.list", "t2"),
        _t("conversations.history", "t3"),
        _t("conversations.replies", "t3"),
        _t("conversations.info", "t3"),
        _t("conversations.join", "t3", "channels:join"),
        _t("conversations.open", "t3", "im:write"),
        _t("users.info", "t4", "users:read"),
        _t("users.list", "t2", "users:read"),
        _t("users.conversations", "t3"),
        # ~1 message per second per channel, plus a workspace ceiling of several hundred a minute.
        MethodSpec("chat.postMessage", "special", 600, "chat:write", per_channel_per_second=1),
        _t("chat.postEphemeral", "t4", "chat:write"),
        _t("chat.update", "t3", "chat:write"),
        _t("views.publish", "t4"),
        _t("views.open", "t4"),
        _t("views.update", "t4"),
        _t("views.push", "t4"),
    ]
}

# Methods that take an app-level token (`xapp-`) and refuse bot tokens (`not_allowed_token_type`);
# kept apart from METHODS, the bot-token surface, whose shapes the conformance test enumerates.
APP_LEVEL_METHODS: dict[str, MethodSpec] = {
    s.name: s
    for s in [
        # Tier 3 as docs.slack.dev and shared/reference say today; the older api.slack.com page
        # (and slack_sdk's "Tier1" comment on its Retry-After default) said Tier 1.
        _t("apps.connections.open", "t3", "connections:write"),
    ]
}

# Scope needed to read (history/replies) or see (list/info) a conversation, by its kind.
HISTORY_SCOPE = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
READ_SCOPE = {"public": "channels:read", "private": "groups:read", "im": "im:read"}
TYPE_SCOPE = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "im": "im:read",
    "mpim": "mpim:read",
}


@dataclass(frozen=True)
class Profile:
    """A rate profile: per-minute overrides and page-size caps (limit max = default)."""

    name: str
    per_minute: dict[str, int]
    page_cap: dict[str, int]


PROFILES: dict[str, Profile] = {
    "internal": Profile("internal", {}, {}),
    # 2025/2026 rule for commercially distributed non-Marketplace apps.
    "non_marketplace": Profile(
        "non_marketplace",
        {"conversations.history": 1, "conversations.replies": 1},
        {"conversations.history": 15, "conversations.replies": 15},
    ),
}
