"""The kernel layer: one interface, two backends.

``pure`` (Python + numpy) is the reference; ``native`` wraps the compiled cffi module and must give
byte-identical canonical JSON and hashes, and scores within 1e-5. The backend is picked once at
import: native when the extension imports, else pure. ``PALYRA_JOURNAL_BACKEND=python|native``
forces one (asking for native when it is not built raises :class:`BackendUnavailableError`).

Domain modules call the functions of this module (``kernels.canonicalize(...)``), never a backend
directly, so that :func:`set_backend` (used by the tests to run everything on both backends) takes
effect everywhere.

The interface (both backends implement exactly these names):

``canonicalize(value, *, rules=DEFAULT_RULES, redact=True) -> (str, bool)``
    Validate a JSON-compatible Python value, redact it, return its RFC 8785 text and whether
    redaction changed anything. Raises InvalidPayloadError naming the path of a bad value.
``canonicalize_text(text, *, rules=DEFAULT_RULES, redact=True) -> (str, bool)``
    The same for JSON text (``str`` or UTF-8 ``bytes``), parsed strictly; errors name the offset.
``canonicalize_many(values, *, rules, redact=True, max_bytes=None, root=None, payloads=False)``
    ``(texts, redacted_flags)`` of a batch in one call; ``payloads=True`` reads None as ``{}`` and
    str/bytes as JSON text. The first bad item raises as its single call would (root ``root(i)``),
    with ``index`` set on the exception; a text over ``max_bytes`` raises PayloadTooLargeError.
``event_lines(lines, *, rules, redact=True, max_bytes=None) -> columns | None``
    A batch of JSON event lines (bytes) as envelope columns plus canonical payloads, or None when
    the caller must take its reference path (always None on the pure backend).
``sha256(data) -> bytes``
``chain_hashes(prev_hash, rows) -> list[str]``
    ``rows``: sequence of tuples in :data:`CHAIN_FIELDS` order; returns each row's hex hash.
``verify_chain(prev_hash, first_seq, rows) -> (index, reason) | None``
    ``rows``: tuples in :data:`VERIFY_FIELDS` order; the first bad row's index and reason.
``topk(matrix, query, k, mask=None) -> (indices int64, scores float64)``
    Exact top-k by dot product, score desc then index asc, masked rows skipped.
``loads_canonical(text)`` (one implementation for both backends)
    Python values of stored canonical text; integral doubles beyond 2**53 read back as floats.
``cpu_info() -> dict``
    ``{"simd": "avx2", "sha": "sha-ni", ...}``: what the backend runs on this CPU.
"""

from __future__ import annotations

import os
from types import ModuleType

from ..errors import BackendUnavailableError, JournalError
from .pure_jcs import loads_canonical
from .rules import DEFAULT_RULES, REDACTED, RULES_VERSION, RedactionRules

#: Envelope fields of hash chain v1, in the order rows are passed to ``chain_hashes``.
CHAIN_FIELDS = (
    "seq", "event_id", "kind", "actor", "session_id", "run_id", "principal", "device_id",
    "channel", "timestamp_unix_ms", "payload_json",
)
#: ``CHAIN_FIELDS`` plus the stored hash and prev_hash, the row form ``verify_chain`` reads.
VERIFY_FIELDS = CHAIN_FIELDS + ("hash", "prev_hash")
#: The ``prev_hash`` of seq 1.
GENESIS_HASH = "0" * 64

_EXPORTED = ("canonicalize", "canonicalize_text", "canonicalize_many", "event_lines", "sha256", "chain_hashes", "verify_chain",
             "topk", "cpu_info")

_active: ModuleType | None = None


def _load(name: str) -> ModuleType:
    if name == "native":
        try:
            from . import native as mod
        except (ImportError, AttributeError) as exc:  # not built, or built without a kernel's symbols
            raise BackendUnavailableError(
                "PALYRA_JOURNAL_BACKEND=native but the native extension is not available "
                f"({exc}); reinstall with a C compiler, or use PALYRA_JOURNAL_BACKEND=python"
            ) from exc
        return mod
    if name in ("python", "pure"):
        from . import pure as mod
        return mod
    raise JournalError(f"unknown kernel backend {name!r}: expected 'native' or 'python'")


def set_backend(name: str) -> str:
    """Switch every kernel function to backend ``name`` ("native" or "python"); returns it."""
    global _active
    mod = _load(name)
    g = globals()
    for fn in _EXPORTED:
        g[fn] = getattr(mod, fn)
    _active = mod
    return backend_name()


def backend_name() -> str:
    """``"native"`` or ``"python"``: the backend the kernel functions run on."""
    return "native" if _active is not None and _active.__name__.endswith(".native") else "python"


def native_available() -> bool:
    try:
        _load("native")
    except BackendUnavailableError:
        return False
    return True


def _initial() -> None:
    forced = os.environ.get("PALYRA_JOURNAL_BACKEND", "").strip().lower()
    if forced in ("", "auto"):
        try:
            set_backend("native")
        except BackendUnavailableError:
            set_backend("python")
    else:
        set_backend(forced)


_initial()

__all__ = ["CHAIN_FIELDS", "VERIFY_FIELDS", "GENESIS_HASH", "DEFAULT_RULES", "REDACTED",
           "RULES_VERSION", "RedactionRules", "loads_canonical", "set_backend", "backend_name", "native_available", *_EXPORTED]
