"""Seeded, pure generator of realistic fake Slack workspaces (users, channels, messages, threads).

Everything comes from one `random.Random(seed)` and the given `now`: a seed and a `now` always
give the same workspace. No message lies within 15 minutes after a whole-day boundary counted back
from `now`, nor in the last 15 minutes, so a backfill started soon after sees the same window.
"""

from __future__ import annotations

import random
import string
import time
from typing import Any

from fakeslack.workspace import Channel, Message, Workspace, key_to_ts

DAY = 86400
# Keep this far (seconds) from each day boundary counted back from `now` (the contract says 900).
BOUNDARY_GAP = 960

TIMEZONES = [
    ("America/Los_Angeles", "Pacific Standard Time", -28800),
    ("America/New_York", "Eastern Standard Time", -18000),
    ("America/Sao_Paulo", "Brasilia Standard Time", -10800),
    ("UTC", "Coordinated Universal Time", 0),
    ("Europe/London", "Greenwich Mean Time", 0),
    ("Europe/Paris", "Central European Time", 3600),
    ("Africa/Lagos", "West Africa Standard Time", 3600),
    ("Asia/Kolkata", "India Standard Time", 19800),
    ("Asia/Kathmandu", "Nepal Time", 20700),
    ("Asia/Tokyo", "Japan Standard Time", 32400),
    ("Australia/Sydney", "Australian Eastern Daylight Time", 39600),
    ("Pacific/Auckland", "New Zealand Daylight Time", 46800),
]
FIRST = [
    "Alice",
    "Bob",
    "Chloé",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Gustavo",
    "Hana",
    "Ingrid",
    "José",
    "Kenji",
    "Leila",
    "Mateo",
    "Nadia",
    "Oluwaseun",
    "Priya",
    "Quentin",
    "Rania",
    "Søren",
    "Tomás",
    "Uma",
    "Viktor",
    "Wei",
    "Xiomara",
    "Yusuf",
    "Zoë",
    "李娜",
    "محمد",
    "Ольга",
    "אורי",
]
LAST = [
    "Nguyen",
    "Smith",
    "Müller",
    "García",
    "Okafor",
    "Kowalski",
    "Tanaka",
    "Haddad",
    "Johansson",
    "Rossi",
    "Silva",
    "Dubois",
    "Kim",
    "Patel",
    "O'Brien",
    "Novak",
    "Ivanova",
    "Cohen",
]
WORDS = [
    "deploy",
    "release",
    "build",
    "pipeline",
    "review",
    "merge",
    "branch",
    "staging",
    "production",
    "incident",
    "database",
    "migration",
    "schema",
    "index",
    "query",
    "latency",
    "customer",
    "ticket",
    "roadmap",
    "sprint",
    "planning",
    "retro",
    "design",
    "spec",
    "draft",
    "feedback",
    "meeting",
    "agenda",
    "notes",
    "budget",
    "forecast",
    "report",
    "dashboard",
    "metrics",
    "alert",
    "oncall",
    "rollback",
    "hotfix",
    "feature",
    "flag",
    "experiment",
    "cohort",
    "onboarding",
    "docs",
    "wiki",
    "backlog",
    "priority",
    "estimate",
    "deadline",
    "launch",
    "announcement",
    "office",
    "lunch",
    "coffee",
    "friday",
    "weekend",
]
CHANNEL_NAMES = [
    "general",
    "random",
    "engineering",
    "design",
    "product",
    "support",
    "sales",
    "marketing",
    "ops",
    "incidents",
    "announcements",
    "hiring",
    "data",
    "frontend",
    "backend",
    "mobile",
    "security",
    "finance",
    "legal",
    "social",
    "books",
    "music",
]
TRIVIAL = [
    "ok",
    ":+1:",
    "lol",
    "+1",
    "thx!",
    ":tada: :tada:",
    "k",
    "yes",
    "no",
    "👍",
    ":100:",
    "<!here>",
    "  ok  ",
]
UNICODE = [
    "今日は会議があります。資料を事前に確認してください 🙏",
    "我们下周一发布新版本，请大家提前测试。",
    "مرحبا بالجميع، الاجتماع غدا في الساعة العاشرة صباحا",
    "שלום לכולם, הפגישה נדחתה למחר בבוקר",
    "Déjà vu: the café's crème brûlée was über-good 🎉🚀✨",
    "이번 주 금요일에 팀 회식이 있습니다 🍻",
    "Привет всем! Релиз переносится на завтра.",
    "Emoji storm 😀😃😄😁😆😅🤣😂🙂🙃 then some words after it",
]
SUBTYPES = (
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "pinned_item",
    "bot_message",
    "thread_broadcast",
    "file_share",
)


class _Gen:
    def __init__(self, seed: int, now: float, used_ids: set[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.used_ids: set[str] = set() if used_ids is None else used_ids

    # -- ids and times ------------------------------------------------------------------------
    def new_id(self, prefix: str, length: int = 10) -> str:
        alphabet = string.ascii_uppercase + string.digits
        while True:
            ident = prefix + "".join(self.rng.choice(alphabet) for _ in range(length))
            if ident not in self.used_ids:
                self.used_ids.add(ident)
                return ident

    def safe(self, t: float) -> float:
        """Move `t` out of the forbidden zones next to day boundaries counted back from now."""
        for _ in range(10):
            delta = self.now - t
            if delta < BOUNDARY_GAP:
                t = self.now - BOUNDARY_GAP - self.rng.uniform(60, 3600)
                continue
            r = delta % DAY
            if r >= DAY - BOUNDARY_GAP:
                t -= 1800
            elif r < 60:
                t -= 120
            else:
                return t
        return t

    def time_between(self, lo: float, hi: float) -> float:
        return self.safe(self.rng.uniform(lo, hi))

    def ts_in(self, ch_used: set[str], t: float) -> str:
        t = self.safe(t)
        key = int(t) * 1_000_000 + self.rng.randrange(0, 1_000_000)
        while key_to_ts(key) in ch_used:
            key += 1
        ts = key_to_ts(key)
        ch_used.add(ts)
        return ts

    # -- text ---------------------------------------------------------------------------------
    def sentence(self, lo: int = 3, hi: int = 18) -> str:
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(lo, hi))]
        words[0] = words[0].capitalize()
        return " ".join(words) + self.rng.choice([".", "!", "?", "", " :smile:"])

    def long_text(self) -> str:
        target = self.rng.randint(5000, 20000)
        parts: list[str] = []
        size = 0
        while size < target:
            s = self.sentence(8, 30)
            parts.append(s)
            size += len(s) + 1
        return " ".join(parts)[:target]


def _user(g: _Gen, team_id: str, index: int, role: str) -> dict[str, Any]:
    rng = g.rng
    first, last = rng.choice(FIRST), rng.choice(LAST)
    real = f"{first} {last}"
    handle = "".join(
        c for c in f"{first}.{last}".lower() if c.isascii() and (c.isalnum() or c == ".")
    )
    handle = (handle or "user") + str(index)
    display = "" if rng.random() < 0.3 else rng.choice([first, handle, f"{first[0]}{last}".lower()])
    tz, tz_label, tz_offset = rng.choice(TIMEZONES)
    uid = g.new_id("U")
    is_bot = role == "bot"
    profile: dict[str, Any] = {
        "avatar_hash": "".join(rng.choice("0123456789abcdef") for _ in range(12)),
        "status_text": "",
        "status_emoji": "",
        "status_expiration": 0,
        "real_name": real,
        "display_name": display,
        "real_name_normalized": real,
        "display_name_normalized": display,
        "title": "",
        "phone": "",
        "skype": "",
        "fields": None,
        "first_name": first,
        "last_name": last,
        "image_24": "https://avatars.example.com/24.png",
        "image_48": "https://avatars.example.com/48.png",
        "image_72": "https://avatars.example.com/72.png",
        "image_192": "https://avatars.example.com/192.png",
        "team": team_id,
    }
    if not is_bot:
        profile["email"] = f"{handle}@example.com"
    user: dict[str, Any] = {
        "id": uid,
        "team_id": team_id,
        "name": handle,
        "deleted": role == "deleted",
        "color": "".join(rng.choice("0123456789abcdef") for _ in range(6)),
        "real_name": real,
        "tz": tz,
        "tz_label": tz_label,
        "tz_offset": tz_offset,
        "profile": profile,
        "is_admin": role in ("primary_owner", "owner", "admin"),
        "is_owner": role in ("primary_owner", "owner"),
        "is_primary_owner": role == "primary_owner",
        "is_restricted": role == "guest",
        "is_ultra_restricted": False,
        "is_bot": is_bot,
        "is_app_user": False,
        "updated": int(g.now) - rng.randint(0, 400 * DAY),
        "has_2fa": False,
    }
    if is_bot:
        bot_id = g.new_id("B")
        user["name"] = f"{rng.choice(WORDS)}bot{index}"
        user["real_name"] = profile["real_name"] = profile["real_name_normalized"] = user["name"]
        profile["display_name"] = profile["display_name_normalized"] = ""
        profile["bot_id"] = bot_id
        profile["api_app_id"] = g.new_id("A")
        profile["always_active"] = True
        user["tz"], user["tz_label"], user["tz_offset"] = (
            "America/Los_Angeles",
            "Pacific Standard Time",
            -28800,
        )
    return user


def _roles(n: int) -> list[str]:
    roles = ["primary_owner", "owner", "admin", "bot", "deleted", "member"]
    while len(roles) < n:
        x = len(roles)
        roles.append(
            "admin"
            if x % 11 == 0
            else "bot"
            if x % 13 == 0
            else "deleted"
            if x % 17 == 0
            else "guest"
            if x % 19 == 0
            else "member"
        )
    return roles[:n]


def _channel_kinds(n: int) -> list[str]:
    kinds = [
        "public_member",
        "public_member",
        "public_nonmember",
        "private_member",
        "private_nonmember",
        "archived_member",
        "archived_nonmember",
        "public_member",
    ]
    cycle = ["public_member"] * 6 + ["public_nonmember"] * 2 + ["private_member", "archived_member"]
    while len(kinds) < n:
        kinds.append(cycle[len(kinds) % len(cycle)])
    return kinds[:n]


def generate(
    seed: int = 0,
    *,
    users: int = 40,
    channels: int = 12,
    messages: int = 2000,
    days: int = 30,
    now: float | None = None,
    ids: set[str] | None = None,
    app: Workspace | None = None,
    same_bot: bool = False,
) -> Workspace:
    """A workspace of `users` users, `channels` channels, ~`messages` messages over `days` days.

    For several workspaces of one app (`fleet.generate_workspaces`): `ids`, the ids taken so
    far, shared so none collide (new ones are added); `app`, a workspace whose app id and
    signing secret this one takes (and, with `same_bot`, its bot user, as an org-wide app has
    one across an enterprise). The same seed gives the same workspace either way."""
    now = time.time() if now is None else float(now)
    g = _Gen(seed, now, ids)
    rng = g.rng
    team_id = g.new_id("T0FAKE", 5)
    ws = Workspace(
        team_id=team_id,
        team_name=f"Fake Workspace {seed}",
        domain=f"fake-{seed}",
        bot_user_id=g.new_id("U"),
        bot_id=g.new_id("B"),
        app_id=g.new_id("A"),
        bot_token="xoxb-"
        + "-".join(str(rng.randrange(10**11, 10**12)) for _ in range(2))
        + "-"
        + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24)),
        signing_secret="".join(rng.choice("0123456789abcdef") for _ in range(32)),
        now=now,
        seed=seed,
    )
    if app is not None:  # drawn above all the same, so the rest of the workspace is unchanged
        ws.app_id, ws.signing_secret = app.app_id, app.signing_secret
        if same_bot:
            ws.bot_user_id, ws.bot_id = app.bot_user_id, app.bot_id
    # The app's own bot user.
    ws.add_user(
        {
            "id": ws.bot_user_id,
            "team_id": team_id,
            "name": "backfill",
            "deleted": False,
            "color": "2c2d30",
            "real_name": "Backfill",
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Standard Time",
            "tz_offset": -28800,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": True,
            "is_app_user": False,
            "updated": int(now) - 30 * DAY,
            "profile": {
                "real_name": "Backfill",
                "display_name": "",
                "real_name_normalized": "Backfill",
                "display_name_normalized": "",
                "avatar_hash": "000000000000",
                "title": "",
                "phone": "",
                "skype": "",
                "status_text": "",
                "status_emoji": "",
                "fields": None,
                "bot_id": ws.bot_id,
                "api_app_id": ws.app_id,
                "always_active": True,
                "team": team_id,
            },
        }
    )
    for i, role in enumerate(_roles(max(users, 6))):
        ws.add_user(_user(g, team_id, i, role))
    humans = [u["id"] for u in ws.users.values() if not u["is_bot"] and not u["deleted"]]
    deleted = [u["id"] for u in ws.users.values() if u["deleted"]]
    bots = [u for u in ws.users.values() if u["is_bot"] and u["id"] != ws.bot_user_id]

    # Channels.
    names = list(CHANNEL_NAMES)
    chans: list[Channel] = []
    kinds = _channel_kinds(max(channels, 7))
    for i, kind in enumerate(kinds):
        name = names[i] if i < len(names) else f"project-{i}"
        created = int(now - (days + 60 + rng.randint(0, 300)) * DAY)
        members = set(rng.sample(humans, k=min(len(humans), max(3, len(humans) * 2 // 3))))
        if kind.endswith("_member"):
            members.add(ws.bot_user_id)
        ch = Channel(
            id=g.new_id("C"),
            name=name,
            is_private=kind.startswith("private"),
            is_archived=kind.startswith("archived"),
            is_general=i == 0,
            created=created,
            creator=humans[0],
            members=members,
            topic=g.sentence(2, 6) if rng.random() < 0.7 else "",
            purpose=g.sentence(3, 8) if rng.random() < 0.7 else "",
        )
        if i == 0:
            ch.members = set(humans) | {ws.bot_user_id}
        chans.append(ch)
        ws.add_channel(ch)

    span_lo = now - days * DAY
    span_hi = now - BOUNDARY_GAP
    weights = [rng.uniform(1, 5) * (3 if i == 0 else 1) for i in range(len(chans))]
    total_w = sum(weights)
    for i, ch in enumerate(chans):
        budget = max(6, int(messages * weights[i] / total_w))
        msgs = _fill_channel(g, ws, ch, budget, span_lo, span_hi, humans, deleted, bots)
        if i == 0:
            msgs += _coverage(g, ws, ch, {m["ts"] for m in msgs}, min(days, 7), humans, bots)
        ch.load(msgs)
    return ws


def _fill_channel(
    g: _Gen,
    ws: Workspace,
    ch: Channel,
    budget: int,
    lo: float,
    hi: float,
    humans: list[str],
    deleted: list[str],
    bots: list[dict[str, Any]],
) -> list[Message]:
    rng = g.rng
    used: set[str] = set()
    out: list[Message] = []
    authors = [u for u in ch.members if u != ws.bot_user_id] or humans
    authors = sorted(authors) + deleted[:1]
    end = hi
    if ch.is_archived:
        end = rng.uniform(lo + (hi - lo) * 0.5, hi)
    while len(out) < budget:
        t = g.time_between(lo, end)
        msg = _random_message(g, ws, ch, used, t, authors, bots)
        out.append(msg)
        if msg.get("subtype") is None and rng.random() < 0.10 and len(out) < budget:
            out += _thread(g, ws, ch, used, msg, t, min(end, hi), authors, rng.randint(1, 8))
    # Late replies to old parents (the 14-day lookback): parents 1..20 days older than the reply.
    n_late = max(1, budget // 60) if not ch.is_archived else 0
    gaps = [2, 5, 9, 13, 16, 19, 20, 3, 11]
    for j in range(n_late):
        reply_t = g.time_between(hi - 6.5 * DAY, hi)
        parent_t = reply_t - (gaps[j % len(gaps)] + rng.uniform(0.1, 0.8)) * DAY
        parent = _plain(g, ws, used, parent_t, rng.choice(authors), g.sentence(5, 14))
        out.append(parent)
        n = rng.randint(1, 3)
        replies = [
            _reply(
                g,
                ws,
                used,
                parent,
                reply_t - rng.uniform(0, 3600),
                rng.choice(authors),
                g.sentence(4, 12),
            )
            for _ in range(n)
        ]
        if rng.random() < 0.3:  # and an early reply, long before the window
            replies.append(
                _reply(
                    g,
                    ws,
                    used,
                    parent,
                    parent_t + rng.uniform(60, DAY),
                    rng.choice(authors),
                    g.sentence(4, 12),
                )
            )
        out += [r for r in replies if r is not None]
    if ch.is_archived:
        out.append(
            {
                "type": "message",
                "subtype": "channel_archive",
                "user": authors[0],
                "text": "archived the channel",
                "ts": g.ts_in(used, end + 60),
            }
        )
    return out


def _plain(g: _Gen, ws: Workspace, used: set[str], t: float, user: str, text: str) -> Message:
    return {
        "type": "message",
        "user": user,
        "text": text,
        "ts": g.ts_in(used, t),
        "team": ws.team_id,
        "client_msg_id": _uuid(g),
    }


def _uuid(g: _Gen) -> str:
    h = "".join(g.rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reply(
    g: _Gen,
    ws: Workspace,
    used: set[str],
    parent: Message,
    t: float,
    user: str,
    text: str,
    broadcast: bool = False,
) -> Message | None:
    """A reply after its parent, or None when no safe time after the parent exists near `t`."""
    parent_t = _ts_float(parent["ts"])
    t = g.safe(max(t, parent_t + 1))
    if t <= parent_t + 1:
        t = g.safe(parent_t + 1200)
        if t <= parent_t + 1:
            return None
    msg = _plain(g, ws, used, t, user, text)
    msg["thread_ts"] = parent["ts"]
    if parent.get("user"):
        msg["parent_user_id"] = parent["user"]
    if broadcast:
        msg["subtype"] = "thread_broadcast"
        msg["root"] = {k: parent[k] for k in ("type", "user", "text", "ts") if k in parent}
    return msg


def _ts_float(ts: str) -> float:
    return float(ts)


def _thread(
    g: _Gen,
    ws: Workspace,
    ch: Channel,
    used: set[str],
    parent: Message,
    t: float,
    end: float,
    authors: list[str],
    n: int,
) -> list[Message]:
    rng = g.rng
    out = []
    for _ in range(n):
        rt = min(end, t + rng.uniform(30, 3 * DAY))
        if rt <= t + 1:
            break
        text = rng.choice(TRIVIAL) if rng.random() < 0.2 else g.sentence(3, 15)
        reply = _reply(
            g, ws, used, parent, rt, rng.choice(authors), text, broadcast=rng.random() < 0.06
        )
        if reply is not None:
            out.append(reply)
    return out


def _random_message(
    g: _Gen,
    ws: Workspace,
    ch: Channel,
    used: set[str],
    t: float,
    authors: list[str],
    bots: list[dict[str, Any]],
) -> Message:
    rng = g.rng
    user = rng.choice(authors)
    r = rng.random()
    if r < 0.08:
        return _plain(g, ws, used, t, user, _trivial(g, authors))
    if r < 0.15:
        m = _plain(g, ws, used, t, user, f"<@{rng.choice(authors)}> {g.sentence(4, 14)}")
        return m
    if r < 0.20:
        return _plain(g, ws, used, t, user, rng.choice(UNICODE))
    if r < 0.207:
        return _plain(g, ws, used, t, user, g.long_text())
    if r < 0.30:
        return _system(
            g,
            ws,
            ch,
            used,
            t,
            user,
            rng.choice(
                ["channel_join"] * 6
                + ["channel_leave"] * 2
                + ["channel_topic", "channel_purpose", "channel_name", "pinned_item"]
            ),
            authors,
        )
    if r < 0.36 and bots:
        return _bot(g, ws, used, t, rng.choice(bots), subtype=rng.random() < 0.6)
    if r < 0.40:
        return _file(g, ws, used, t, user, with_text=rng.random() < 0.5)
    if r < 0.405:
        m = _plain(g, ws, used, t, user, "is heading out for lunch, back at two")
        m["subtype"] = "me_message"
        return m
    m = _plain(g, ws, used, t, user, g.sentence())
    if rng.random() < 0.12:
        m["text"] = g.sentence() + " (edited)"
        m["edited"] = {
            "user": user,
            "ts": key_to_ts(int(min(t + rng.uniform(10, 3600), g.now - 60) * 1_000_000)),
        }
    if rng.random() < 0.3:
        m["blocks"] = [
            {
                "type": "rich_text",
                "block_id": g.new_id("b", 5).lower(),
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": m["text"]}]}
                ],
            }
        ]
    return m


def _trivial(g: _Gen, authors: list[str]) -> str:
    if g.rng.random() < 0.3:
        return f"<@{g.rng.choice(authors)}> :wave:"
    return g.rng.choice(TRIVIAL)


def _system(
    g: _Gen,
    ws: Workspace,
    ch: Channel,
    used: set[str],
    t: float,
    user: str,
    subtype: str,
    authors: list[str],
) -> Message:
    m: Message = {"type": "message", "subtype": subtype, "user": user, "ts": g.ts_in(used, t)}
    if subtype == "channel_join":
        m["text"] = f"<@{user}> has joined the channel"
        if g.rng.random() < 0.3:
            m["inviter"] = g.rng.choice(authors)
    elif subtype == "channel_leave":
        m["text"] = f"<@{user}> has left the channel"
    elif subtype == "channel_topic":
        m["topic"] = g.sentence(2, 6)
        m["text"] = f"set the channel topic: {m['topic']}"
    elif subtype == "channel_purpose":
        m["purpose"] = g.sentence(2, 8)
        m["text"] = f"set the channel purpose: {m['purpose']}"
    elif subtype == "channel_name":
        m["old_name"], m["name"] = f"{ch.name}-old", ch.name
        m["text"] = f'has renamed the channel from "{ch.name}-old" to "{ch.name}"'
    elif subtype == "pinned_item":
        m["item_type"] = "C"
        m["text"] = f"<@{user}> pinned a message to this channel."
    elif subtype == "channel_archive":
        m["text"] = "archived the channel"
    return m


def _bot(
    g: _Gen, ws: Workspace, used: set[str], t: float, bot: dict[str, Any], subtype: bool
) -> Message:
    bot_id = bot["profile"]["bot_id"]
    text = g.rng.choice(
        [
            "Deploy of build #{n} finished successfully",
            "Nightly report: {n} tickets closed, all checks green",
            "Reminder: stand-up in 10 minutes (run {n})",
        ]
    ).format(n=g.rng.randint(100, 999))
    if subtype:
        return {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": g.ts_in(used, t),
            "bot_id": bot_id,
            "username": bot["name"],
            "icons": {"emoji": ":robot_face:"},
        }
    return {
        "type": "message",
        "user": bot["id"],
        "bot_id": bot_id,
        "app_id": bot["profile"]["api_app_id"],
        "text": text,
        "ts": g.ts_in(used, t),
        "team": ws.team_id,
        "bot_profile": {
            "id": bot_id,
            "deleted": False,
            "name": bot["name"],
            "updated": int(g.now) - DAY,
            "app_id": bot["profile"]["api_app_id"],
            "team_id": ws.team_id,
            "icons": {
                "image_36": "https://avatars.example.com/36.png",
                "image_48": "https://avatars.example.com/48.png",
                "image_72": "https://avatars.example.com/72.png",
            },
        },
    }


def _file(g: _Gen, ws: Workspace, used: set[str], t: float, user: str, with_text: bool) -> Message:
    fid = g.new_id("F")
    name = g.rng.choice(["report.pdf", "diagram.png", "notes.txt", "budget.xlsx", "photo.jpg"])
    m: Message = {
        "type": "message",
        "subtype": "file_share",
        "user": user,
        "text": g.sentence(4, 12) if with_text else "",
        "ts": g.ts_in(used, t),
        "upload": True,
        "display_as_bot": False,
        "team": ws.team_id,
        "files": [
            {
                "id": fid,
                "created": int(t),
                "timestamp": int(t),
                "name": name,
                "title": name,
                "mimetype": "application/octet-stream",
                "filetype": name.rsplit(".", 1)[1],
                "user": user,
                "size": g.rng.randint(1000, 900000),
                "mode": "hosted",
                "is_external": False,
                "url_private": f"https://files.slack.com/files-pri/{ws.team_id}-{fid}/{name}",
                "permalink": f"https://{ws.domain}.slack.com/files/{user}/{fid}/{name}",
            }
        ],
    }
    return m


def _coverage(
    g: _Gen,
    ws: Workspace,
    ch: Channel,
    used: set[str],
    days: int,
    humans: list[str],
    bots: list[dict[str, Any]],
) -> list[Message]:
    """One of every common subtype (and a tombstone parent) in the last `days` days of `ch`."""
    rng = g.rng
    lo, hi = g.now - days * DAY, g.now - BOUNDARY_GAP
    authors = sorted(humans)
    out: list[Message] = []
    for st in (
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "pinned_item",
    ):
        out.append(
            _system(g, ws, ch, used, g.time_between(lo, hi), rng.choice(authors), st, authors)
        )
    bot = bots[0] if bots else None
    if bot is not None:
        out.append(_bot(g, ws, used, g.time_between(lo, hi), bot, subtype=True))
        out.append(_bot(g, ws, used, g.time_between(lo, hi), bot, subtype=False))
    out.append(_file(g, ws, used, g.time_between(lo, hi), authors[0], with_text=True))
    out.append(_file(g, ws, used, g.time_between(lo, hi), authors[-1], with_text=False))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[0], "ok"))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[0], ":+1:"))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[1], f"<@{authors[0]}> :wave:"))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[1], UNICODE[0]))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[2], UNICODE[2]))
    out.append(_plain(g, ws, used, g.time_between(lo, hi), authors[2], g.long_text()))
    edited = _plain(
        g, ws, used, g.time_between(lo, hi - DAY), authors[0], "Updated plan: ship on Thursday"
    )
    edited["edited"] = {
        "user": authors[0],
        "ts": key_to_ts(int((float(edited["ts"]) + 300) * 1_000_000)),
    }
    out.append(edited)
    # A thread with a broadcast reply.
    pt = g.time_between(lo, hi - 2 * DAY)
    parent = _plain(g, ws, used, pt, authors[0], "Thread: who can review the migration plan?")
    out.append(parent)
    replies = [
        _reply(g, ws, used, parent, pt + rng.uniform(600, DAY), authors[1], "I can take it today"),
        _reply(
            g,
            ws,
            used,
            parent,
            pt + rng.uniform(600, DAY),
            authors[2],
            "Also sending this to the channel: review done",
            broadcast=True,
        ),
    ]
    # A deleted parent that still has replies.
    pt = g.time_between(lo, hi - 2 * DAY)
    tomb: Message = {
        "type": "message",
        "subtype": "tombstone",
        "user": "USLACKBOT",
        "text": "This message was deleted.",
        "ts": g.ts_in(used, pt),
        "hidden": True,
    }
    out.append(tomb)
    replies.append(
        _reply(
            g,
            ws,
            used,
            tomb,
            pt + rng.uniform(600, DAY),
            authors[1],
            "Replying to something that was deleted later",
        )
    )
    return out + [r for r in replies if r is not None]
