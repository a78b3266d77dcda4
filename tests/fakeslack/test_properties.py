"""Properties checked over many random inputs: history and replies pagination equal a brute-force
filter for any window, inclusivity and page size; and fakeslack imports nothing of ours."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fakeslack import FakeSlack, generate
from fakeslack.errors import ApiError
from fakeslack.workspace import key_to_ts, ts_key
from tests.fakeslack.helpers import NOW, member_channel

WS = generate(13, users=12, channels=7, messages=700, days=20, now=NOW)
FAKE = FakeSlack(WS, rate_limits=False)  # never started: the method layer is called directly
CH = member_channel(WS)
KEYS = CH.top.keys
THREAD = max(CH.replies, key=lambda t: len(CH.replies[t]))
LO, HI = KEYS[0] - 5_000_000, KEYS[-1] + 5_000_000


def _walk(method: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = FAKE.api.call(method, {**args, **({"cursor": cursor} if cursor else {})})
        out += page["messages"]
        cursor = page.get("response_metadata", {}).get("next_cursor")
        assert bool(cursor) == page["has_more"]
        if not cursor:
            return out


def _in_window(k: int, oldest: int, latest: int | None, inclusive: bool) -> bool:
    above = k >= oldest if inclusive else k > oldest
    below = latest is None or (k <= latest if inclusive else k < latest)
    return above and below


window = st.tuples(
    st.integers(LO, HI),
    st.one_of(st.none(), st.integers(LO, HI)),
    st.booleans(),
    st.integers(1, 60),
)


@settings(max_examples=60, deadline=None)
@given(window)
def test_history_walk_equals_filter(w: tuple[int, int | None, bool, int]) -> None:
    oldest, latest, inclusive, limit = w
    # Half the time the bounds are exact message timestamps, to exercise inclusive edges.
    args: dict[str, Any] = {
        "channel": CH.id,
        "oldest": key_to_ts(oldest),
        "limit": limit,
        "inclusive": "true" if inclusive else "false",
    }
    if latest is not None:
        args["latest"] = key_to_ts(latest)
    got = [m["ts"] for m in _walk("conversations.history", args)]
    want = [
        key_to_ts(k) for k in sorted(KEYS, reverse=True) if _in_window(k, oldest, latest, inclusive)
    ]
    assert got == want


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, len(KEYS) - 1), st.integers(0, len(KEYS) - 1), st.booleans(), st.integers(1, 9)
)
def test_history_exact_bounds(i: int, j: int, inclusive: bool, limit: int) -> None:
    oldest, latest = sorted((KEYS[i], KEYS[j]))
    args = {
        "channel": CH.id,
        "oldest": key_to_ts(oldest),
        "latest": key_to_ts(latest),
        "inclusive": inclusive,
        "limit": limit,
    }
    got = [ts_key(m["ts"]) for m in _walk("conversations.history", args)]
    assert got == [
        k for k in sorted(KEYS, reverse=True) if _in_window(k, oldest, latest, inclusive)
    ]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.sampled_from([None, 0, 1, 2]), st.booleans())
def test_replies_walk_is_parent_then_replies_in_window(
    limit: int, nth: int | None, inclusive: bool
) -> None:
    replies = CH.replies[THREAD].keys
    args: dict[str, Any] = {"channel": CH.id, "ts": THREAD, "limit": limit, "inclusive": inclusive}
    oldest = 0
    if nth is not None and nth < len(replies):
        oldest = replies[nth]
        args["oldest"] = key_to_ts(oldest)
    got = [m["ts"] for m in _walk("conversations.replies", args)]
    assert got[0] == THREAD
    assert got[1:] == [key_to_ts(k) for k in replies if _in_window(k, oldest, None, inclusive)]


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_garbage_cursors_are_invalid_cursor(cursor: str) -> None:
    try:
        FAKE.api.call("conversations.history", {"channel": CH.id, "cursor": cursor})
    except ApiError as exc:
        assert exc.error == "invalid_cursor"
    else:
        raise AssertionError(f"accepted cursor {cursor!r}")


def test_fakeslack_imports_only_stdlib_aiohttp_and_itself() -> None:
    root = Path(__file__).resolve().parents[2] / "fakeslack"
    allowed = set(sys.stdlib_module_names) | {"aiohttp", "fakeslack"}
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
