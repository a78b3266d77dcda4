"""`embedding_function(EMBEDDING)`: which function each setting selects (never calling MiniLM)."""

from __future__ import annotations

import pytest
from chromadb.api.types import DefaultEmbeddingFunction

from db.embedding import HashingEmbeddingFunction, embedding_function


def test_embedding_selection_default_is_chromas_minilm() -> None:
    ef = embedding_function("default")
    # Only the type: calling it would download all-MiniLM-L6-v2.
    assert isinstance(ef, DefaultEmbeddingFunction)
    assert ef.name() == "default"


def test_embedding_selection_hashing() -> None:
    assert isinstance(embedding_function("hashing"), HashingEmbeddingFunction)


@pytest.mark.parametrize("bad", ["", "Hashing", "minilm", "openai", " default"])
def test_embedding_selection_rejects_other_values(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        embedding_function(bad)
    message = str(info.value)
    assert "\n" not in message
    assert "EMBEDDING" in message and "'default'" in message and "'hashing'" in message
    assert repr(bad) in message
