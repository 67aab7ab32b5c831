"""Embedding providers: the protocol the store calls, and the providers shipped with it.

The store only needs ``model_name``, ``dimensions``, ``version`` and a batch ``embed()``; which
model is behind them is the caller's choice. Three are shipped:

* :class:`HashEmbeddingProvider`: the default, needs no model, bit-exact as docs/memory.md specifies;
* :class:`RandomProjectionProvider`: a seeded random projection of the bag of words, for benchmarks
  and tests that want realistic dimensions (384, 1536) with similar texts close together;
* :class:`SentenceTransformerProvider`: a sentence-transformers model the user already has on disk
  (the ``[embeddings]`` extra); the library never downloads a model.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import JournalError
from ..fields import check_int


@runtime_checkable
class MemoryEmbeddingProvider(Protocol):
    """What the memory store needs from an embedding model."""

    model_name: str
    dimensions: int
    version: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape ``(len(texts), dimensions)``, one row per text."""
        ...


def _check_dimensions(dimensions: object) -> int:
    return int(check_int("dimensions", dimensions, lo=1, hi=65_536, error=JournalError))


def _ascii_lower(token: str) -> str:
    return token.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def tokens(text: str) -> list[str]:
    """Split on Unicode whitespace (punctuation stays on the token), ASCII-lowercased."""
    return [_ascii_lower(t) for t in text.split() if t]


class HashEmbeddingProvider:
    """Signed feature hashing of whitespace tokens (docs/memory.md, "The default embedding provider").

    For each token ``d = SHA-256(token)``: bucket ``d[0] mod dims``, sign ``+1`` when ``d[1]`` is
    even, magnitude ``1 + d[2]/255``; the sum is L2-normalized (an all-zero vector stays zero).
    """

    model_name = "hash-embedding-v1"
    version = 1

    def __init__(self, dimensions: int = 64):
        self.dimensions = _check_dimensions(dimensions)
        self._cache: dict[str, tuple[int, float]] = {}

    def _feature(self, token: str) -> tuple[int, float]:
        hit = self._cache.get(token)
        if hit is None:
            d = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            sign = 1.0 if d[1] % 2 == 0 else -1.0
            hit = (d[0] % self.dimensions, sign * (1.0 + d[2] / 255.0))
            if len(self._cache) < 200_000:
                self._cache[token] = hit
        return hit

    def embed_one(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimensions, dtype=np.float64)
        for token in tokens(text):
            bucket, value = self._feature(token)
            vec[bucket] += value
        norm = float(np.sqrt(vec @ vec))
        if norm > 0.0:
            vec /= norm
        return vec.astype(np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_one(text)
        return out

    def __repr__(self) -> str:
        return f"HashEmbeddingProvider(dimensions={self.dimensions})"


class RandomProjectionProvider:
    """A fixed random projection of the bag of words: deterministic for a given ``seed``.

    Each distinct token gets a Gaussian vector drawn from a generator seeded by the provider seed
    and the token's SHA-256; a text's embedding is the normalized sum of its tokens' vectors, so
    texts sharing words have a positive cosine, as with a real model, at any dimension.
    """

    version = 1

    def __init__(self, dimensions: int = 384, *, seed: int = 0):
        self.dimensions = _check_dimensions(dimensions)
        self.seed = int(check_int("seed", seed, error=JournalError))
        self.model_name = f"random-projection-v1-seed{seed}"
        self._vectors: dict[str, np.ndarray] = {}

    def _token_vector(self, token: str) -> np.ndarray:
        vec = self._vectors.get(token)
        if vec is None:
            digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
            rng = np.random.default_rng([self.seed, int.from_bytes(digest[:8], "little")])
            vec = rng.standard_normal(self.dimensions).astype(np.float32)
            if len(self._vectors) < 500_000:
                self._vectors[token] = vec
        return vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for i, text in enumerate(texts):
            row = out[i]
            for token in tokens(text):
                row += self._token_vector(token)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def __repr__(self) -> str:
        return f"RandomProjectionProvider(dimensions={self.dimensions}, seed={self.seed})"


class SentenceTransformerProvider:
    """A sentence-transformers model already on this machine (``pip install palyra-journal[embeddings]``).

    ``model`` is a local directory or the name of a model in the local Hugging Face cache; the
    model is loaded with downloads switched off, so a missing model is an error, never a download.
    """

    version = 1

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 64):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise JournalError(
                "SentenceTransformerProvider needs the 'sentence-transformers' package: "
                "pip install 'palyra-journal[embeddings]'") from exc
        if not isinstance(model, str) or not model:
            raise JournalError(f"model must be a non-empty str (a local path or cached name), got {model!r}")
        previous = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            try:
                self._model = SentenceTransformer(model, device=device, local_files_only=True)
            except TypeError:  # older sentence-transformers without local_files_only
                self._model = SentenceTransformer(model, device=device)
        except OSError as exc:
            raise JournalError(f"model {model!r} is not available locally ({exc}); the store "
                               "never downloads models: fetch it first") from exc
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous
        self.model_name = f"sentence-transformers:{model}"
        self.dimensions = int(self._model.get_sentence_embedding_dimension())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), self.dimensions)


__all__ = ["MemoryEmbeddingProvider", "HashEmbeddingProvider", "RandomProjectionProvider",
           "SentenceTransformerProvider", "tokens"]
