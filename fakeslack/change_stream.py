"""A seeded stream of mixed changes over a generated workspace, and the final state it leads to.

`change_stream(ws, n, seed=...)` plans `n` changes in the channels a backfill reads (new posts,
thread replies, edits, including edits into noise and back, deletions, including thread parents
with replies, which become tombstones, renames, a deleted channel, joins and bot messages as
noise, and messages of another workspace for the same app) against a private model of the
workspace, so each change is valid when applied in order, and predicts the final state
(`expected`, a `FinalTruth` with the same rules as `ground_truth.final_truth`). Out-of-order and
duplicated deliveries are delivery settings (`delivery`, for `FakeSlack.play`). Pure: the
workspace is only read; a seed, a workspace and a `start` always give the same stream. One
module, though past 400 lines: the planner's model is what both the plan and the prediction
read.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakeslack.changes import TOMBSTONE_TEXT, Change
from fakeslack.generator import TRIVIAL, UNICODE, WORDS
from fakeslack.ground_truth import DAY, FinalTruth, GroundTruth, Key, ground_truth, is_noise
from fakeslack.workspace import Channel, Message, Workspace, key_to_ts, stable_id, ts_key

# What the model keeps of a message: enough for the noise filter and threads.
LIGHT = ("text", "subtype", "bot_id", "user", "thread_ts")
# Relative weights of the change kinds (a delete_channel comes once, late, on top).
WEIGHTS = {
    "post": 26,
    "reply": 18,
    "edit": 20,
    "delete": 12,
    "join": 3,
    "bot": 5,
    "rename": 2,
    "foreign": 7,
}


@dataclass
class ChangeStream:
    """`changes` in the order they happen; `initial` is what a backfill over the same window
    stores before them, `expected` what a perfect mirror holds after them (every event
    delivered); `delivery` the out-of-order and duplicate settings to play them with."""

    seed: int
    changes: list[Change]
    initial: GroundTruth
    expected: FinalTruth
    foreign_team: str
    delivery: dict[str, Any] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)  # tombstones, edits_to_noise, ...

    def kinds(self) -> Counter[str]:
        return Counter(c.kind for c in self.changes)


@dataclass
class _Chan:
    id: str
    name: str
    members: set[str]
    msgs: dict[str, Message]  # ts -> a light copy (text, subtype, bot_id, user, thread_ts)
    replies: dict[str, list[str]]  # parent ts -> live replies
    editable: list[str]  # ts a person may edit or delete (pruned lazily)
    parents: list[str]  # ts that may take replies (pruned lazily)
    alive: bool = True


class _Planner:
    def __init__(self, ws: Workspace, rng: random.Random, initial: GroundTruth, **window: float):
        self.ws, self.rng, self.initial = ws, rng, initial
        self.oldest_k = round(window["oldest"] * 1_000_000)
        self.lookback_k = round(window["lookback"] * 1_000_000)
        self.humans = sorted(
            uid for uid, u in ws.users.items() if not u.get("is_bot") and not u.get("deleted")
        )
        self.bots = sorted(
            uid
            for uid, u in ws.users.items()
            if u.get("is_bot") and uid != ws.bot_user_id and u.get("profile", {}).get("bot_id")
        )
        self.chans = {cid: self._model(ws.channels[cid]) for cid in initial.channels_in_scope}
        self.names = {c.name for c in ws.channels.values() if not c.deleted}
        self.told: set[Key] = set()
        self.trivialized: list[Key] = []
        self.notes: Counter[str] = Counter()

    def _model(self, ch: Channel) -> _Chan:
        msgs: dict[str, Message] = {}
        replies: dict[str, list[str]] = {}
        editable: list[str] = []
        parents: list[str] = []
        for ts, m in ch.by_ts.items():
            light: Message = {k: m[k] for k in LIGHT if k in m}
            msgs[ts] = light
            parent: str | None = m.get("thread_ts")
            is_reply = parent is not None and parent != ts
            if parent is not None and is_reply:
                replies.setdefault(parent, []).append(ts)
            if self._editable(light, ts, parent if is_reply else None):
                editable.append(ts)
                if not is_reply:
                    parents.append(ts)
        editable.sort(key=ts_key)
        parents.sort(key=ts_key)
        return _Chan(ch.id, ch.name, set(ch.members), msgs, replies, editable, parents)

    def _editable(self, m: Message, ts: str, parent: str | None) -> bool:
        """A person's plain message in the window (a reply: its parent within the lookback)."""
        if m.get("subtype") or m.get("user") not in self.humans or ts_key(ts) <= self.oldest_k:
            return False
        return parent is None or ts_key(parent) > self.lookback_k

    # -- picking ------------------------------------------------------------------------------
    def live(self) -> list[_Chan]:
        return [c for c in self.chans.values() if c.alive]

    def pick(
        self, pool: list[str], ch: _Chan, want: Callable[[str], bool] | None = None
    ) -> str | None:
        """A random live entry of `pool` (dead ones dropped on the way), optionally `want(ts)`."""
        for _ in range(12):
            if not pool:
                return None
            i = self.rng.randrange(len(pool))
            ts = pool[i]
            m = ch.msgs.get(ts)
            if m is None or m.get("subtype") == "tombstone":
                pool[i] = pool[-1]
                pool.pop()
                continue
            if want is None or want(ts):
                return ts
        return None

    def author(self, ch: _Chan) -> str:
        people = sorted(ch.members.intersection(self.humans)) or self.humans
        return self.rng.choice(people)

    def sentence(self) -> str:
        if self.rng.random() < 0.08:
            return self.rng.choice(UNICODE)
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(4, 16))]
        return " ".join(words).capitalize() + self.rng.choice([".", "!", "?", ""])

    def text(self) -> str:
        return self.rng.choice(TRIVIAL) if self.rng.random() < 0.15 else self.sentence()


def change_stream(
    ws: Workspace,
    n: int = 2000,
    *,
    seed: int = 0,
    days: float = 7,
    now: float | None = None,
    lookback_days: float = 14,
    min_text_chars: int = 8,
    include_bots: bool = False,
    auto_join: bool = True,
    channel_ids: list[str] | None = None,
    start: float | None = None,
    step: float = 0.25,
    delete_a_channel: bool = True,
    shuffle_window: int = 16,
    duplicate_rate: float = 0.05,
) -> ChangeStream:
    """`n` changes, the first `start` (default: 1 s after the workspace's `now`) and one every
    `step` seconds, in the channels a backfill of `days` reads (`channel_ids` narrows them; the
    bot joins the public ones it is not in first). `initial`'s filters are those of
    `ground_truth`, and `expected` uses the same."""
    if step < 0.001:
        raise ValueError("step must be at least 1 ms (message ts are unique per channel)")
    with ws.lock:
        now = ws.now if now is None else float(now)
        initial = ground_truth(
            ws,
            days,
            now,
            lookback_days=lookback_days,
            min_text_chars=min_text_chars,
            include_bots=include_bots,
            auto_join=auto_join,
            channel_ids=channel_ids,
        )
        rng = random.Random(seed)
        plan = _Planner(
            ws,
            rng,
            initial,
            oldest=now - days * DAY,
            lookback=now - (days + lookback_days) * DAY,
        )
        foreign_team = stable_id("T", ws.team_id, "another workspace", str(seed))
        changes = _plan(
            plan,
            n,
            start=now + 1 if start is None else start,
            step=step,
            seed=seed,
            foreign_team=foreign_team,
            delete_a_channel=delete_a_channel,
        )
    expected = _expected(plan, initial, changes, min_text_chars, include_bots)
    return ChangeStream(
        seed,
        changes,
        initial,
        expected,
        foreign_team,
        {"shuffle_window": shuffle_window, "duplicate_rate": duplicate_rate, "seed": seed},
        plan.notes,
    )


def _plan(
    plan: _Planner,
    n: int,
    *,
    start: float,
    step: float,
    seed: int,
    foreign_team: str,
    delete_a_channel: bool,
) -> list[Change]:
    rng, ws = plan.rng, plan.ws
    if not plan.live():
        raise ValueError("no channel in scope to change")
    out: list[Change] = []

    def when() -> tuple[float, str]:
        at = start + len(out) * step
        return at, key_to_ts(round(at * 1_000_000) + rng.randrange(1000))

    # The bot joins the channels in scope it is not in yet (a backfill with AUTO_JOIN would).
    for ch in plan.live():
        if len(out) < n and ws.bot_user_id not in ch.members:
            at, ts = when()
            out.append(Change("join", ch.id, at=at, ts=ts, user=ws.bot_user_id))
            _joined(plan, ch, ws.bot_user_id, ts)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    doom_at = int(n * 0.8) if delete_a_channel and len(plan.live()) >= 3 else -1
    while len(out) < n:
        at, ts = when()
        chans = plan.live()
        if len(out) == doom_at:
            ch = rng.choice([c for c in chans if not ws.channels[c.id].is_general] or chans)
            ch.alive = False
            out.append(Change("delete_channel", ch.id, at=at))
            continue
        kind = rng.choices(kinds, weights)[0]
        ch = rng.choice(chans)
        change = _one(plan, kind, ch, at, ts, foreign_team)
        if change is None:  # nothing to edit, delete or reply to here: a new post instead
            change = _one(plan, "post", ch, at, ts, foreign_team)
        assert change is not None
        out.append(change)
    return out


def _one(
    plan: _Planner, kind: str, ch: _Chan, at: float, ts: str, foreign_team: str
) -> Change | None:
    rng = plan.rng
    if kind == "post":
        text, user = plan.text(), plan.author(ch)
        _add(plan, ch, ts, {"text": text, "user": user}, editable=True)
        return Change("post", ch.id, at=at, ts=ts, text=text, user=user)
    if kind == "reply":
        parent = plan.pick(ch.parents, ch)
        if parent is None:
            return None
        text, user = plan.text(), plan.author(ch)
        _add(plan, ch, ts, {"text": text, "user": user, "thread_ts": parent}, editable=True)
        ch.replies.setdefault(parent, []).append(ts)
        return Change("reply", ch.id, at=at, ts=ts, thread_ts=parent, text=text, user=user)
    if kind == "edit":
        return _edit(plan, ch, at)
    if kind == "delete":
        return _delete(plan, ch, at)
    if kind == "join":
        outsiders = [u for u in plan.humans if u not in ch.members]
        if not outsiders:
            return None
        user = rng.choice(outsiders)
        _joined(plan, ch, user, ts)
        return Change("join", ch.id, at=at, ts=ts, user=user)
    if kind == "bot":
        if not plan.bots:
            return None
        bot = rng.choice(plan.bots)
        text = f"Deploy of build #{rng.randint(100, 999)} finished successfully"
        bot_id = plan.ws.users[bot]["profile"]["bot_id"]
        _add(plan, ch, ts, {"text": text, "subtype": "bot_message", "bot_id": bot_id})
        return Change("bot", ch.id, at=at, ts=ts, text=text, user=bot)
    if kind == "rename":
        base = ch.name.split("--")[0]
        k = 2
        while f"{base}--{k}" in plan.names:
            k += 1
        old, ch.name = ch.name, f"{base}--{k}"
        plan.names.add(ch.name)
        user = plan.author(ch)
        _add(plan, ch, ts, {"text": f'renamed from "{old}"', "subtype": "channel_name"})
        return Change("rename", ch.id, at=at, ts=ts, name=ch.name, user=user)
    if kind == "foreign":
        channel = stable_id("C", foreign_team, str(rng.randrange(3)))
        user = stable_id("U", foreign_team, str(rng.randrange(5)))
        return Change(
            "foreign", channel, at=at, ts=ts, text=plan.sentence(), user=user, team=foreign_team
        )
    raise ValueError(kind)


def _add(plan: _Planner, ch: _Chan, ts: str, msg: Message, *, editable: bool = False) -> None:
    ch.msgs[ts] = msg
    plan.told.add((ch.id, ts))
    if editable:
        ch.editable.append(ts)
        if not msg.get("thread_ts"):
            ch.parents.append(ts)


def _joined(plan: _Planner, ch: _Chan, user: str, ts: str) -> None:
    ch.members.add(user)
    _add(plan, ch, ts, {"text": f"<@{user}> has joined the channel", "subtype": "channel_join"})


def _edit(plan: _Planner, ch: _Chan, at: float) -> Change | None:
    """A plain edit; or one that turns a message into noise (trivial text); or, later, back."""
    rng = plan.rng
    back = [
        k
        for k in plan.trivialized
        if k[0] == ch.id and k[1] in ch.msgs and ch.msgs[k[1]].get("subtype") != "tombstone"
    ]
    if back and rng.random() < 0.5:
        key = rng.choice(back)
        plan.trivialized.remove(key)
        plan.notes["edits_back"] += 1
        return _edited(plan, ch, key[1], plan.sentence() + " (back)", at)
    if rng.random() < 0.3:
        ts = plan.pick(ch.editable, ch, lambda t: not is_noise(ch.msgs[t]))
        if ts is not None:
            plan.trivialized.append((ch.id, ts))
            plan.notes["edits_to_noise"] += 1
            return _edited(plan, ch, ts, rng.choice(TRIVIAL), at)
    ts = plan.pick(ch.editable, ch)
    if ts is None:
        return None
    return _edited(plan, ch, ts, plan.sentence() + " (edited)", at)


def _edited(plan: _Planner, ch: _Chan, ts: str, text: str, at: float) -> Change:
    ch.msgs[ts] = {**ch.msgs[ts], "text": text}
    plan.told.add((ch.id, ts))
    return Change("edit", ch.id, at=at, ts=ts, text=text, user=ch.msgs[ts].get("user"))


def _delete(plan: _Planner, ch: _Chan, at: float) -> Change | None:
    """A deletion; about a third of them a thread parent with replies (a tombstone)."""
    ts = None
    if plan.rng.random() < 0.35:
        ts = plan.pick(ch.parents, ch, lambda t: bool(ch.replies.get(t)))
    ts = ts or plan.pick(ch.editable, ch)
    if ts is None:
        return None
    msg = ch.msgs[ts]
    parent = msg.get("thread_ts")
    if not parent and ch.replies.get(ts):
        ch.msgs[ts] = {"text": TOMBSTONE_TEXT, "subtype": "tombstone", "user": "USLACKBOT"}
        plan.notes["tombstones"] += 1
    else:
        del ch.msgs[ts]
        if parent:
            live = ch.replies[parent]
            live.remove(ts)
            head = ch.msgs.get(parent)
            if not live and head is not None and head.get("subtype") == "tombstone":
                del ch.msgs[parent]  # its last reply gone, the tombstone goes too
    return Change("delete", ch.id, at=at, ts=ts)


def _expected(
    plan: _Planner,
    initial: GroundTruth,
    changes: list[Change],
    min_text_chars: int,
    include_bots: bool,
) -> FinalTruth:
    """The final state predicted from the model (the rule of `ground_truth.final_truth`)."""
    wanted = initial.must_store | plan.told
    messages: dict[Key, str] = {}
    gone: set[Key] = set()
    for key in initial.must_store | initial.must_not_store | plan.told:
        ch = plan.chans.get(key[0])
        if ch is None:
            continue
        msg = ch.msgs.get(key[1]) if ch.alive else None
        noisy = msg is None or is_noise(
            msg, min_text_chars=min_text_chars, include_bots=include_bots
        )
        if msg is not None and not noisy and key in wanted:
            messages[key] = msg.get("text", "")
        else:
            gone.add(key)
    foreign = {(c.team or "", c.channel, c.ts or "") for c in changes if c.kind == "foreign"}
    return FinalTruth(
        messages,
        gone,
        {c.id: c.name for c in plan.chans.values() if c.alive},
        {c.id for c in plan.chans.values() if not c.alive},
        foreign,
    )
