"""The app's start-up heap is frozen out of the collector's full collections (see
`app.runtime.settle_heap`), and given back when the app stops."""

from __future__ import annotations

import gc

from app.runtime import settle_heap


class Survivor:
    pass


def test_runtime_settle_heap_freezes_what_start_up_made() -> None:
    kept = [Survivor() for _ in range(100)]
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() >= before + len(kept)
        assert gc.get_count()[2] == 0  # nothing left for the next full collection to walk
    finally:
        gc.unfreeze()
