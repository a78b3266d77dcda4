"""What crosses the worker's pipe back to the app: errors that always unpickle."""

from __future__ import annotations

import pickle

from db.chroma_worker import ChromaCallError, EmbeddingMismatchError, _portable


class PickyError(Exception):
    """Like some libraries' errors: its __init__ does not take what `args` holds."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


def test_chroma_worker_plain_errors_cross_as_they_are() -> None:
    for exc in (
        ValueError("limit must be >= 1"),
        KeyError("x"),
        EmbeddingMismatchError("indexed with 'hashing'"),
    ):
        back = pickle.loads(pickle.dumps(_portable(exc)))
        assert type(back) is type(exc) and str(back) == str(exc)


def test_chroma_worker_other_errors_cross_as_a_chroma_call_error() -> None:
    original = PickyError(503, "the   server\nis busy")
    try:
        pickle.loads(pickle.dumps(original))
    except TypeError:
        pass  # exactly why it must not cross as it is
    back = pickle.loads(pickle.dumps(_portable(original)))
    assert isinstance(back, ChromaCallError)
    assert str(back) == "PickyError: 503: the server is busy"
