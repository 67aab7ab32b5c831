"""palyra-journal: the persistence engine of an agent runtime in one SQLite file.

The public names of docs/api.md. Domain modules are imported on first use of one of their names, so
``import palyra_journal`` stays cheap for a CLI call or a worker that only appends events.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    AlreadyResolvedError, BackendUnavailableError, ConcurrencyError, CorruptVectorError,
    DuplicateIdError, InvalidPatchError, InvalidPathError, InvalidPayloadError,
    InvalidScheduleError, InvalidStateError, JournalError, NotADatabaseError, NotAJournalError,
    NotFoundError, PayloadTooLargeError, ProofError, ReadOnlyError, SchemaError, SchemaTooNewError, StorageError,
    StorageFullError, VersionConflictError,
    CanvasClosedError, EngineUnavailableError, IntegrityError,
)
from .kernels import backend_name
from .kernels.rules import RedactionRules
from .store import JournalStore

__version__ = "0.1.0"

_LAZY = {
    "EventRecord": ".events", "ChainHead": ".events", "VerifyReport": ".events",
    "MemoryItem": ".memory", "MemoryHit": ".memory", "MaintenanceReport": ".memory",
    "MemoryEmbeddingProvider": ".memory.embeddings", "HashEmbeddingProvider": ".memory.embeddings",
    "RandomProjectionProvider": ".memory.embeddings",
    "SentenceTransformerProvider": ".memory.embeddings",
    "CanvasSnapshot": ".canvas", "CanvasPatchRecord": ".canvas",
    "CronSchedule": ".schedule", "Every": ".schedule", "At": ".schedule",
    "CronJobRecord": ".cron", "CronRunRecord": ".cron", "CronClaim": ".cron",
    "ApprovalRecord": ".approvals",
}


def __getattr__(name: str) -> Any:
    if name == "tlog":  # the verifiable journal (docs/verifiable.md), loaded on first use
        return importlib.import_module(".tlog", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'palyra_journal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "JournalStore", "backend_name", "RedactionRules", "__version__",
    "JournalError", "InvalidPathError", "InvalidPayloadError", "PayloadTooLargeError",
    "DuplicateIdError", "NotFoundError", "VersionConflictError", "InvalidPatchError",
    "InvalidScheduleError", "InvalidStateError", "AlreadyResolvedError", "ConcurrencyError", "SchemaError",
    "NotADatabaseError", "NotAJournalError", "SchemaTooNewError", "ReadOnlyError", "StorageError",
    "StorageFullError",
    "CorruptVectorError", "BackendUnavailableError", "CanvasClosedError", "IntegrityError",
    "ProofError", "EngineUnavailableError", "tlog", *_LAZY,
]
