"""The offline hashing embedding: deterministic, unit-norm, lexical, and a proper Chroma 1.x EF."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from chromadb.utils.embedding_functions import (
    config_to_embedding_function,
    known_embedding_functions,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from db.embedding import DEFAULT_DIM, HASHING_NAME, HashingEmbeddingFunction, tokenize

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [
    "The deploy pipeline failed on staging again",
    "Café menu: crème brûlée & 🍕 pizza on Friday",
    "",
    "   ...   ",
    "a",
    "rollback rollback rollback the release",
]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_embedding_hashing_fixed_dim_and_unit_norm() -> None:
    vectors = HashingEmbeddingFunction()(SAMPLES)
    assert len(vectors) == len(SAMPLES)
    for v in vectors:
        assert v.shape == (DEFAULT_DIM,)
        assert v.dtype == np.float32
        assert np.isfinite(v).all()
        assert math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-5)


def test_embedding_hashing_empty_text_is_a_valid_vector() -> None:
    ef = HashingEmbeddingFunction()
    empty, blank, punct = ef(["", "   ", "?!…"])
    assert not np.isnan(empty).any()
    assert math.isclose(float(np.linalg.norm(empty)), 1.0, rel_tol=1e-6)
    # Every featureless text maps to the same fixed vector.
    assert np.array_equal(empty, blank) and np.array_equal(empty, punct)


def test_embedding_hashing_custom_dim() -> None:
    (v,) = HashingEmbeddingFunction(dim=64)(["hello there"])
    assert v.shape == (64,)
    with pytest.raises(ValueError, match="dim"):
        HashingEmbeddingFunction(dim=1)


def test_embedding_hashing_batch_equals_one_by_one() -> None:
    ef = HashingEmbeddingFunction()
    batch = ef(SAMPLES)
    for text, vector in zip(SAMPLES, batch):
        assert np.allclose(ef([text])[0], vector)


def test_embedding_hashing_deterministic_across_processes() -> None:
    code = (
        "import json, sys; from db.embedding import HashingEmbeddingFunction; "
        "texts = json.loads(sys.stdin.read()); "
        "print(json.dumps([v.tolist() for v in HashingEmbeddingFunction()(texts)]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(SAMPLES),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    ).stdout
    theirs = np.array(json.loads(out), dtype=np.float32)
    ours = np.array(HashingEmbeddingFunction()(SAMPLES), dtype=np.float32)
    assert np.array_equal(theirs, ours)


def test_embedding_hashing_similar_texts_closer_than_unrelated() -> None:
    ef = HashingEmbeddingFunction()
    base, near, inflected, far = ef(
        [
            "the deploy pipeline failed on staging",
            "staging deploy pipeline failed",
            "deployment pipelines failing on staging",
            "who wants pizza for lunch tomorrow",
        ]
    )
    assert _cosine(base, near) > _cosine(base, far)
    # Character n-grams make inflections overlap too.
    assert _cosine(base, inflected) > _cosine(base, far)
    assert _cosine(base, far) < 0.2


def test_embedding_hashing_is_case_insensitive_and_order_sensitive_for_bigrams() -> None:
    ef = HashingEmbeddingFunction()
    a, b, c = ef(["Deploy Failed", "deploy failed", "failed deploy"])
    assert np.allclose(a, b)
    assert not np.allclose(b, c)


def test_embedding_hashing_sublinear_tf() -> None:
    ef = HashingEmbeddingFunction()
    once, many, other = ef(["rollback release", "rollback " * 50 + "release", "release"])
    # Fifty repeats must not drown the other word out (linear tf would leave about 0.02).
    assert _cosine(many, other) > 0.1
    assert _cosine(once, many) > 0.6


def test_embedding_hashing_tokenize() -> None:
    assert tokenize("Hello, WORLD! ＡＢＣ-42") == ["hello", "world", "abc", "42"]


def test_embedding_hashing_chroma_protocol_and_registration() -> None:
    ef = HashingEmbeddingFunction(dim=128)
    assert ef.name() == HASHING_NAME
    assert not ef.is_legacy()
    assert ef.default_space() == "cosine"
    assert known_embedding_functions[HASHING_NAME] is HashingEmbeddingFunction
    config = {"name": ef.name(), "type": "known", "config": ef.get_config()}
    rebuilt = config_to_embedding_function(json.loads(json.dumps(config)))
    assert isinstance(rebuilt, HashingEmbeddingFunction) and rebuilt.dim == 128
    assert np.array_equal(rebuilt(["x y z"])[0], ef(["x y z"])[0])
    with pytest.raises(ValueError, match="version"):
        HashingEmbeddingFunction.build_from_config({"dim": 384, "version": 999})
    with pytest.raises(ValueError, match="dimension"):
        ef.validate_config_update({"dim": 128}, {"dim": 256})


def test_embedding_hashing_is_fast_enough() -> None:
    words = [f"word{i}" for i in range(3000)] + ["deploy", "staging", "release", "incident"]
    rng = random.Random(7)
    docs = [" ".join(rng.choices(words, k=rng.randint(3, 15))) for _ in range(10_000)]
    ef = HashingEmbeddingFunction()
    ef(docs[:100])
    started = time.perf_counter()
    vectors = ef(docs)
    elapsed = time.perf_counter() - started
    assert len(vectors) == 10_000
    # Typically ~0.3 s here; the bound only catches an accidental per-feature Python loop.
    assert elapsed < 5.0, elapsed


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200), min_size=1, max_size=8))
def test_embedding_hashing_any_text_gives_finite_unit_vectors(texts: list[str]) -> None:
    for v in HashingEmbeddingFunction(dim=32)(texts):
        assert v.shape == (32,)
        assert np.isfinite(v).all()
        assert math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-5)
