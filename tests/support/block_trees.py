"""Walking a Block Kit payload as Slack receives it (dicts, lists and strings): every node, for
the tests that look anywhere in a view for its strings, its mrkdwn texts or its action ids. Not a
test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def nodes(tree: Any) -> Iterator[Any]:
    """`tree` and every value inside it (dict keys aside), depth first, in document order."""
    yield tree
    if isinstance(tree, dict):
        for value in tree.values():
            yield from nodes(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from nodes(value)


def strings(tree: Any) -> list[str]:
    """Every string inside `tree` (texts, labels, values), in document order."""
    return [node for node in nodes(tree) if isinstance(node, str)]
