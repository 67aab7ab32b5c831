"""Memory: ingest, embeddings and hybrid (FTS5 + exact vector) recall, scoped per principal.

Modules: ``store`` (MemoryStore, the API), ``ingest`` (normalization, validation, redaction),
``embeddings`` (providers), ``index`` (the in-memory float32 matrix), ``fts`` (the FTS5 query
builder), ``search`` (fusion, snippets, query cache), ``retention`` (maintain, reembed), ``demo``.
"""

from __future__ import annotations

from .embeddings import (
    HashEmbeddingProvider, MemoryEmbeddingProvider, RandomProjectionProvider,
    SentenceTransformerProvider,
)
from .records import MaintenanceReport, MemoryHit, MemoryItem
from .store import MemoryStore

__all__ = ["MemoryStore", "MemoryItem", "MemoryHit", "MaintenanceReport",
           "MemoryEmbeddingProvider", "HashEmbeddingProvider", "RandomProjectionProvider",
           "SentenceTransformerProvider"]
