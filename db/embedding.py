"""Embedding functions for the vector store: the `EMBEDDING` setting's choices.

`hashing` is an offline, deterministic *lexical* embedding (feature hashing of words, word pairs and
character n-grams); `default` is Chroma's own all-MiniLM-L6-v2. No Slack code is imported here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from itertools import chain
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
from chromadb.api.types import (
    DefaultEmbeddingFunction,
    Documents,
    EmbeddingFunction,
    Embeddings,
    Space,
)
from chromadb.utils.embedding_functions import register_embedding_function

__all__ = ["EMBEDDINGS", "HashingEmbeddingFunction", "embedding_function"]

EMBEDDINGS: Final = ("default", "hashing")
"""Accepted values of the `EMBEDDING` setting."""

HASHING_NAME: Final = "backfill_hashing"
# Bump when the feature scheme changes: vectors of two versions are not comparable, so a
# collection persisted with another version refuses to load rather than mixing them silently.
HASHING_VERSION: Final = 1
DEFAULT_DIM: Final = 384

# Feature kinds, kept inside the feature key so identical strings of different kinds never merge.
_WORD, _BIGRAM, _CHARS = 0, 1, 2
# A word match should outweigh the ~15 character n-grams the same word also produces.
_KIND_WEIGHT = np.array([1.0, 0.7, 0.35], dtype=np.float64)
_CHAR_NGRAMS: Final = (3, 4, 5)
_HASH_BITS: Final = 37  # feature identity; with the sign bit and 2 kind bits: a 40-bit key
_HASH_MASK: Final = (1 << _HASH_BITS) - 1
_SIGN_BIT: Final = 1 << _HASH_BITS
_KIND_SHIFT: Final = _HASH_BITS + 1
_KEY_BITS: Final = _KIND_SHIFT + 2
_DOCS_PER_PASS: Final = 1 << 16  # the doc index sits above the 40-bit key: must stay < 2**24
_EMPTY_FEATURE: Final = b"\x00empty"
_CACHE_LIMIT: Final = 50_000

_TOKEN = re.compile(r"\w+")

# Feature keys of each word (its unigram first, then its character n-grams). Shared by every
# instance (Chroma builds new ones from the persisted config); safe across threads, since a value
# only depends on its key. Cleared when full: Slack vocabularies are Zipfian, so it refills fast.
_word_cache: dict[str, npt.NDArray[np.uint64]] = {}


def _feature_key(kind: int, feature: bytes) -> int:
    # blake2b, not hash(): Python's str hash is salted per process and would change the vectors.
    digest = hashlib.blake2b(feature, digest_size=8, person=b"backfill").digest()
    value = int.from_bytes(digest, "little")
    return (kind << _KIND_SHIFT) | (value & (_HASH_MASK | _SIGN_BIT))


def _word_keys(word: str) -> npt.NDArray[np.uint64]:
    keys = _word_cache.get(word)
    if keys is None:
        marked = f"<{word}>"
        feats = [_feature_key(_WORD, word.encode())]
        for n in _CHAR_NGRAMS:
            feats.extend(
                _feature_key(_CHARS, marked[i : i + n].encode()) for i in range(len(marked) - n + 1)
            )
        keys = np.array(feats, dtype=np.uint64)
        if len(_word_cache) >= _CACHE_LIMIT:
            _word_cache.clear()
        _word_cache[word] = keys
    return keys


def _U(value: int) -> np.uint64:
    return np.uint64(value)


def _mix64(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # splitmix64's finaliser: a fixed, well-spread 64-bit mixer (array arithmetic wraps mod 2**64).
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def _batch_features(
    token_lists: list[list[str]], tokens: list[str]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Feature keys of a batch and the row (document index) of each, one entry per occurrence."""
    vocab: dict[str, int] = {}
    ids = np.fromiter(
        (vocab.setdefault(w, len(vocab)) for w in tokens), dtype=np.int64, count=len(tokens)
    )
    word_keys = [_word_keys(w) for w in vocab]  # insertion order == id order
    lengths = np.fromiter(map(len, word_keys), dtype=np.int64, count=len(word_keys))
    flat = np.concatenate(word_keys)
    starts = np.cumsum(lengths) - lengths
    per_doc = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    token_row = np.repeat(np.arange(len(token_lists), dtype=np.uint64), per_doc)

    # Expand every token occurrence into its word's key segment, without a Python loop.
    token_len = lengths[ids]
    total = int(token_len.sum())
    segment_base = starts[ids] - (np.cumsum(token_len) - token_len)
    gather = np.repeat(segment_base, token_len) + np.arange(total, dtype=np.int64)
    word_feats = flat[gather]
    word_rows = np.repeat(token_row, token_len)

    # Bigrams of neighbouring tokens in the same document, hashed from the two words' own
    # (stable) unigram keys: order-sensitive, so "deploy failed" != "failed deploy".
    unigram = flat[starts[ids]]
    same_doc = token_row[1:] == token_row[:-1]
    pair = _mix64(_mix64(unigram[:-1]) + unigram[1:])[same_doc]
    bigram_feats = (_U(_BIGRAM) << _U(_KIND_SHIFT)) | (pair & _U(_HASH_MASK | _SIGN_BIT))
    return (
        np.concatenate([word_feats, bigram_feats]),
        np.concatenate([word_rows, token_row[1:][same_doc]]),
    )


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (Unicode letters and digits), as the hashing embedding sees them."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


@register_embedding_function
class HashingEmbeddingFunction(EmbeddingFunction[Documents]):
    """Signed feature hashing of word unigrams, bigrams and in-word character 3-5-grams.

    Each feature counts `1 + ln(tf)` times its kind's weight, lands in one of `dim` buckets with a
    hash-chosen sign, and each vector is L2-normalised. Lexical only: it matches shared words and
    word fragments, not meaning. Deterministic across processes and machines.
    """

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        # Empty text has no features: give it one fixed unit vector instead of 0/0 = NaN.
        empty = np.zeros(dim, dtype=np.float32)
        key = _feature_key(_WORD, _EMPTY_FEATURE)
        empty[(key & _HASH_MASK) % dim] = -1.0 if key & _SIGN_BIT else 1.0
        self._empty = empty

    def __call__(self, input: Documents) -> Embeddings:
        texts = [input] if isinstance(input, str) else list(input)
        if not texts:
            return []
        parts = [
            self._embed_pass(texts[start : start + _DOCS_PER_PASS])
            for start in range(0, len(texts), _DOCS_PER_PASS)
        ]
        matrix = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return cast(Embeddings, list(matrix))

    def _embed_pass(self, texts: list[str]) -> npt.NDArray[np.float32]:
        n = len(texts)
        flat: np.ndarray[Any, Any] = np.zeros(n * self.dim, dtype=np.float64)
        token_lists = [tokenize(text) for text in texts]
        tokens = list(chain.from_iterable(token_lists))
        if tokens:
            keys, rows = _batch_features(token_lists, tokens)
            # (doc, feature) pairs -> term counts -> signed, weighted, sublinear-tf buckets.
            unique, counts = np.unique((rows << _U(_KEY_BITS)) | keys, return_counts=True)
            doc = (unique >> _U(_KEY_BITS)).astype(np.int64)
            kind = ((unique >> _U(_KIND_SHIFT)) & _U(3)).astype(np.int64)
            bucket = ((unique & _U(_HASH_MASK)) % _U(self.dim)).astype(np.int64)
            sign = np.where(unique & _U(_SIGN_BIT), -1.0, 1.0)
            weight = sign * _KIND_WEIGHT[kind] * (1.0 + np.log(counts))
            flat = np.bincount(doc * self.dim + bucket, weights=weight, minlength=flat.size)
        out = flat.reshape(n, self.dim)
        norms = np.linalg.norm(out, axis=1)
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        live = norms > 0
        vectors[live] = out[live] / norms[live, None]
        # No features, or (vanishingly rare) signed collisions that cancel out exactly.
        vectors[~live] = self._empty
        return vectors

    @staticmethod
    def name() -> str:
        return HASHING_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        # Unit vectors: cosine, inner product and L2 all rank the same way.
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim, "version": HASHING_VERSION}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbeddingFunction:
        HashingEmbeddingFunction.validate_config(config)
        return HashingEmbeddingFunction(dim=int(config.get("dim", DEFAULT_DIM)))

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        version = config.get("version", HASHING_VERSION)
        if version != HASHING_VERSION:
            raise ValueError(
                f"{HASHING_NAME} version {version!r} is not supported (this code writes "
                f"version {HASHING_VERSION}); re-index the collection"
            )

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if _dim_of(old_config) != _dim_of(new_config):
            raise ValueError(f"{HASHING_NAME}: the dimension of a collection cannot change")

    def __repr__(self) -> str:
        return f"HashingEmbeddingFunction(dim={self.dim})"


def _dim_of(config: Mapping[str, Any]) -> int:
    return int(config.get("dim", DEFAULT_DIM))


def embedding_function(name: str) -> EmbeddingFunction[Documents]:
    """The embedding function for the `EMBEDDING` setting: `default` or `hashing`.

    `default` is Chroma's all-MiniLM-L6-v2; building it is free, its first call downloads the model.
    """
    if name == "default":
        return DefaultEmbeddingFunction()
    if name == "hashing":
        return HashingEmbeddingFunction()
    accepted = ", ".join(repr(v) for v in EMBEDDINGS)
    raise ValueError(f"EMBEDDING must be one of {accepted}, got {name!r}")
