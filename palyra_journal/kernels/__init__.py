"""The kernel layer: one interface, two backends.

``pure`` (Python + numpy) is the reference; ``native`` wraps the compiled cffi module and must give
byte-identical canonical JSON and hashes, and scores within 1e-5. The backend is picked once at
import: native when the extension imports and this interpreter can run it, else pure.
``PALYRA_JOURNAL_BACKEND=python|native`` forces one (asking for native when it is not available
raises :class:`BackendUnavailableError`).

The native backend hands Python objects to C by address and C re-takes the GIL to read them, which
is sound only on CPython with the GIL: on PyPy or GraalPy, or on a free-threaded build, the pure
backend runs and :func:`native_unavailable_reason` (shown by ``doctor``) says why. An extension that
is simply not built (``ModuleNotFoundError`` for ``palyra_journal._native``) falls back quietly;
any other failure while loading it (a missing symbol, a layout check that fails, a crash in
import) is a bug: it is warned about (``RuntimeWarning``), kept for ``doctor``, and with
``PALYRA_JOURNAL_REQUIRE_NATIVE=1`` (CI) it raises instead of falling back.

Domain modules call the functions of this module (``kernels.canonicalize(...)``), never a backend
directly, so that :func:`set_backend` (used by the tests to run everything on both backends) takes
effect everywhere.

The interface (both backends implement exactly these names):

``canonicalize(value, *, rules=DEFAULT_RULES, redact=True) -> (str, bool)``
    Validate a JSON-compatible Python value, redact it, return its RFC 8785 text and whether
    redaction changed anything. Raises InvalidPayloadError naming the path of a bad value.
``canonicalize_text(text, *, rules=DEFAULT_RULES, redact=True) -> (str, bool)``
    The same for JSON text (``str`` or UTF-8 ``bytes``), parsed strictly; errors name the offset.
``canonicalize_many(values, *, rules, redact=True, max_bytes=None, root=None, payloads=False,
pack=False)``
    ``(texts, redacted_flags)`` of a batch in one call; ``payloads=True`` reads None as ``{}`` and
    str/bytes as JSON text. The first bad item raises as its single call would (root ``root(i)``),
    with ``index`` set on the exception; a text over ``max_bytes`` raises PayloadTooLargeError.
    ``pack=True`` adds a third item: the texts NUL-ended in one bytes object (the payload column
    ``chain_columns`` takes), or None where the backend does not write it (pure).
``event_lines(lines, *, rules, redact=True, max_bytes=None, pack=False) -> columns | None``
    A batch of JSON event lines (bytes) as envelope columns plus canonical payloads, or None when
    the caller must take its reference path (always None on the pure backend); ``pack=True`` adds
    the packed payload column as a twelfth item.
``sha256(data) -> bytes``
``chain_hashes(prev_hash, rows) -> list[str]``
    ``rows``: sequence of tuples in :data:`CHAIN_FIELDS` order; returns each row's hex hash.
``chain_columns(prev_hash, first_seq, columns, leaf_count=0, packed_payload=None)``
    The batch path's call, ``(list[str], bytes)``: ``columns`` are the :data:`CHAIN_FIELDS` after
    ``seq`` (one list each, seqs from ``first_seq``); each row's hash, and the RFC 9162 leaf hashes
    of the first ``leaf_count`` rows from the same envelopes (the Merkle tiles' input).
    ``packed_payload``: the payload column as ``canonicalize_many(pack=True)`` wrote it.
``chain_row(prev_hash, row) -> (str, bytes)``
    ``append``'s call: one row's hash (as ``chain_hashes``) and its RFC 9162 leaf hash.
``verify_chain(prev_hash, first_seq, rows) -> (index, reason) | None``
    ``rows``: tuples in :data:`VERIFY_FIELDS` order; the first bad row's index and reason.
``verify_joined(prev_hash, first_seq, n, columns, leaf_count) -> bytes | None``
    ``verify_chain`` of ``n`` rows read as one result row (per :data:`VERIFY_FIELDS` column, SQLite's
    ``json_group_array``, the payloads joined by NUL): the leaf hashes of the first ``leaf_count``
    rows when every row is good, else None (read the rows).
``topk(matrix, query, k, mask=None) -> (indices int64, scores float64)``
    Exact top-k by dot product, score desc then index asc, masked rows skipped.
``ulids(count, now_ms, last) -> (list[str], last)``
    ``count`` ULIDs for ``now_ms`` following ``last`` (an int, 0 for none), monotonic within a
    millisecond; the caller keeps ``last`` (:mod:`palyra_journal.ids`).
``quantize_int8(matrix) -> Int8Tier``
    The int8 tier of a float32 matrix: per row an int8 code, its scale and error bounds
    (docs/recall.md).
``topk_int8(matrix, tier, query, k, mask=None) -> (indices, scores, stats)``
    ``topk``'s answer, scanning the int8 codes and rescoring only the rows their bounds cannot
    exclude; ``stats``: ``{"rescored", "fallback", "scanned"}``.
``topk_int8_many(matrix, tier, queries, k, mask=None) -> [(indices, scores, stats), ...]``
    ``topk_int8`` of every row of ``queries`` (nq, d), in one pass over the codes.
``int8_candidates(tier, query, k, mask=None) -> (rows | None, stats)``
    The int8 scan alone: the rows its bounds cannot exclude (None: the bound cannot prune).
``topk_rows(matrix, rows, query, k) -> (indices, scores)``
    ``topk`` among ``rows`` of any indexable of float32 rows: the rescoring of those rows.
``loads_canonical(text)`` (one implementation for both backends)
    Python values of stored canonical text; integral doubles beyond 2**53 read back as floats.
``cpu_info() -> dict``
    ``{"simd": "avx2", "sha": "sha-ni", ...}``: what the backend runs on this CPU.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import warnings
from types import ModuleType
from typing import Any, Callable

from ..errors import BackendUnavailableError, JournalError
from .layout import (
    CHAIN_FIELDS, EVENT_LINE_IGNORED_KEYS, EVENT_LINE_KEYS, GENESIS_HASH, VERIFY_FIELDS,
)
from .pure_jcs import loads_canonical
from .rules import DEFAULT_RULES, REDACTED, RULES_VERSION, RedactionRules

_EXPORTED = ("canonicalize", "canonicalize_text", "canonicalize_many", "event_lines", "sha256",
             "chain_hashes", "chain_columns", "chain_row", "verify_chain", "verify_joined", "topk",
             "quantize_int8", "topk_int8", "topk_int8_many",
             "int8_candidates", "topk_rows", "ulids", "cpu_info")

_active: ModuleType | None = None

# The kernel functions, bound to the active backend by set_backend() (declared here for checkers).
canonicalize: Callable[..., tuple[str, bool]]
canonicalize_text: Callable[..., tuple[str, bool]]
canonicalize_many: Callable[..., tuple[list[str], list[bool]]]
event_lines: Callable[..., Any]
sha256: Callable[[Any], bytes]
chain_hashes: Callable[[str, Any], list[str]]
chain_columns: Callable[..., tuple[list[str], bytes]]
chain_row: Callable[[str, Any], tuple[str, bytes]]
verify_chain: Callable[[str, int, Any], "tuple[int, str] | None"]
verify_joined: Callable[[str, int, int, Any, int], "bytes | None"]
topk: Callable[..., Any]
quantize_int8: Callable[..., Any]
topk_int8: Callable[..., Any]
topk_int8_many: Callable[..., Any]
int8_candidates: Callable[..., Any]
topk_rows: Callable[..., Any]
ulids: Callable[[int, int, int], tuple[list[str], int]]
cpu_info: Callable[[], dict[str, Any]]


def interpreter_refusal() -> str | None:
    """Why this interpreter cannot run the native backend, or None when it can (CPython + GIL)."""
    impl = sys.implementation.name
    if impl != "cpython":
        return (f"the native backend passes objects to C by address, which only CPython allows; "
                f"this is {impl}")
    gil_check = getattr(sys, "_is_gil_enabled", None)
    if sysconfig.get_config_var("Py_GIL_DISABLED") and (gil_check is None or not gil_check()):
        return "the native backend relies on the GIL, and this is a free-threaded CPython build"
    return None


_native_error: str | None = None


def _import_native() -> ModuleType:
    """The native backend module; BackendUnavailableError when it cannot run here."""
    global _native_error
    refusal = interpreter_refusal()
    if refusal is not None:
        raise BackendUnavailableError(f"native backend not used: {refusal}")
    try:
        from . import native as mod
    except ModuleNotFoundError as exc:
        if exc.name != "palyra_journal._native":
            raise
        raise BackendUnavailableError(
            "the native extension is not built; reinstall with a C compiler, or use "
            "PALYRA_JOURNAL_BACKEND=python") from exc
    except Exception as exc:  # built but broken: never silent
        _native_error = f"{type(exc).__name__}: {exc}"
        raise BackendUnavailableError(
            f"the native extension failed to load ({_native_error})") from exc
    return mod


def _load(name: str) -> ModuleType:
    if name == "native":
        return _import_native()
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
    return native_unavailable_reason() is None


def native_unavailable_reason() -> str | None:
    """Why the native backend cannot be used here (None when it can), for ``doctor``."""
    try:
        _load("native")
    except BackendUnavailableError as exc:
        return str(exc)
    return None


def native_load_error() -> str | None:
    """The error of a native extension that is built but failed to load (a bug), else None."""
    return _native_error


def _initial() -> None:
    forced = os.environ.get("PALYRA_JOURNAL_BACKEND", "").strip().lower()
    if forced not in ("", "auto"):
        set_backend(forced)
        return
    try:
        set_backend("native")
    except BackendUnavailableError as exc:
        if _native_error is not None:
            if os.environ.get("PALYRA_JOURNAL_REQUIRE_NATIVE") == "1":
                raise
            warnings.warn(f"palyra_journal: {exc}; running on the pure Python backend",
                          RuntimeWarning, stacklevel=2)
        set_backend("python")


_initial()

__all__ = ["CHAIN_FIELDS", "VERIFY_FIELDS", "GENESIS_HASH", "EVENT_LINE_KEYS",
           "EVENT_LINE_IGNORED_KEYS", "DEFAULT_RULES", "REDACTED", "RULES_VERSION", "loads_canonical",
           "RedactionRules", "set_backend", "backend_name", "native_available",
           "native_unavailable_reason", "native_load_error", "interpreter_refusal", *_EXPORTED]
