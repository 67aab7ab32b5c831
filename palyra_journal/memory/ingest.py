"""Turning caller input into the rows memory stores: normalization, validation, redaction.

Everything here runs before any write, so a call that raises has written nothing. Each error is an
:class:`InvalidPayloadError` (or ``PayloadTooLargeError``) whose message names the field and value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .. import kernels
from ..errors import InvalidPayloadError, PayloadTooLargeError
from .records import MemoryItem
from ..fields import (
    MAX_SAFE_INT, check_chars, check_choice, check_int, check_number, check_text, redact_text,
)

SOURCES = ("manual", "summary", "import", "tape:user_message", "tape:tool_result")
MAX_TAGS = 32
DEFAULT_MAX_CONTENT_BYTES = 16 * 1024
INGEST_KEYS = frozenset({"content", "principal", "channel", "session_id", "source", "tags",
                         "confidence", "ttl_unix_ms", "memory_id", "embedding"})

_TAG = re.compile(r"[a-z0-9:_.\-]+\Z")
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# Control characters (category Cc) that are not whitespace for str.split(): removed outright.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def normalize_text(text: Any, field: str = "content", max_bytes: int | None = None) -> str:
    """Controls other than whitespace removed, whitespace runs collapsed to one space, trimmed;
    at most ``max_bytes`` of UTF-8 after that (:class:`PayloadTooLargeError` otherwise)."""
    if not isinstance(text, str):
        raise InvalidPayloadError(f"{field} must be a str, got {type(text).__name__}")
    clean: str = text if text.isprintable() else _CONTROLS.sub("", text)  # printable: no controls
    clean = " ".join(clean.split())
    check_chars(field, clean)
    if max_bytes is not None and len(clean) * 4 > max_bytes:
        size = len(clean.encode("utf-8"))
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"{field} is {size} bytes of UTF-8, the limit is {max_bytes}", size, max_bytes)
    return clean


def redact_content(content: str, rules: Any) -> str:
    """JSON object/array text → its redacted canonical text; other text → itself or redacted."""
    return redact_text(content, rules, json_as_canonical=True)


def check_tags(tags: Any, field: str = "tags") -> tuple[str, ...]:
    """Trimmed, ASCII-lowercased, ``[a-z0-9:_.-]`` only, first occurrence kept, at most 32."""
    if tags is None or (type(tags) in (tuple, list) and not tags):  # the usual case, cheaply
        return ()
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        raise InvalidPayloadError(f"{field} must be a list of str, got {_short(tags)}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise InvalidPayloadError(f"{field}: each tag must be a str, got {_short(tag)}")
        check_text(f"{field}: tag", tag, empty_ok=True)
        clean = tag.strip().translate(_ASCII_LOWER)
        if not _TAG.match(clean):
            raise InvalidPayloadError(
                f"{field}: tag {tag!r} must be non-empty and hold only a-z 0-9 : _ . -")
        if clean not in out:
            out.append(clean)
    if len(out) > MAX_TAGS:
        raise InvalidPayloadError(f"{field}: {len(out)} distinct tags, at most {MAX_TAGS} allowed")
    return tuple(out)


def check_sources(sources: Any) -> tuple[str, ...]:
    if sources is None:
        return ()
    if isinstance(sources, str):
        sources = (sources,)
    if not isinstance(sources, Iterable):
        raise InvalidPayloadError(f"sources must be a list of str, got {_short(sources)}")
    out = []
    for s in sources:
        out.append(check_source(s, "sources"))
    return tuple(dict.fromkeys(out))


def check_source(source: Any, field: str = "source") -> str:
    checked: str = check_choice(field, source, SOURCES)
    return checked


def check_confidence(value: Any) -> float | None:
    confidence: float | None = check_number("confidence", value, lo=0.0, hi=1.0, nullable=True)
    return confidence


def check_time(value: Any, field: str) -> int | None:
    """An optional Unix ms time (``ttl_unix_ms``), within ±(2**53 - 1) like every stored time."""
    ms: int | None = check_int(field, value, lo=-MAX_SAFE_INT, nullable=True)
    return ms


def check_embedding(value: Any, dims: int, field: str = "embedding") -> np.ndarray:
    """A finite vector of ``dims`` values, L2-normalized (zero stays zero), as float32."""
    try:
        vec = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(f"{field} must be a sequence of numbers ({exc})") from exc
    if vec.ndim != 1 or vec.shape[0] != dims:
        raise InvalidPayloadError(
            f"{field} must have {dims} values (the provider's dimensions), got shape {vec.shape}")
    if not np.isfinite(vec).all():
        bad = int(np.flatnonzero(~np.isfinite(vec))[0])
        raise InvalidPayloadError(f"{field}[{bad}] is {vec[bad]!r}: values must be finite")
    unit: np.ndarray = unit_rows(vec[None, :])[0]
    return unit


def unit_rows(arr: np.ndarray) -> np.ndarray:
    """Rows of a finite float64 (n, d) array L2-normalized (zero rows stay zero), as float32: the
    one normalization of query, item and provider embeddings, so a vector is stored with the same
    bits whichever call brought it."""
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))[:, None]
    out = np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0)
    unit: np.ndarray = out.astype(np.float32)
    return unit


def unit_rows_of(values: Any, dims: int) -> np.ndarray | None:
    """:func:`check_embedding` of every one of ``values`` as one array (the same bits: each row is
    normalized on its own), or None when one of them is not a finite vector of ``dims`` values:
    the caller then checks them one at a time, for the message naming the first bad one."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim != 2 or arr.shape[1] != dims or not bool(np.isfinite(arr).all()):
        return None
    return unit_rows(arr)


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


@dataclass
class PreparedItem:
    """One validated item, ready to insert: the record to store (its ``memory_id`` is "" until
    one is generated, its times 0 until the write) and its vector (filled in by the embedding
    step when the caller gave none)."""

    item: MemoryItem
    vector: np.ndarray | None


def prepare(spec: dict[str, Any], *, dims: int, max_content_bytes: int, rules: Any,
            where: str = "", batched: bool = False) -> PreparedItem:
    """Validate and normalize one ingest request; ``where`` prefixes messages (``items[3]: ``).

    ``batched``: leave the embedding (unchecked) and the redaction to :func:`prepare_many`."""
    unknown = set(spec) - INGEST_KEYS
    if unknown:
        raise InvalidPayloadError(f"{where}unknown field(s) {sorted(unknown)}")
    if "content" not in spec:
        raise InvalidPayloadError(f"{where}content is required")
    if "principal" not in spec:
        raise InvalidPayloadError(f"{where}principal is required")
    try:
        content = normalize_text(spec["content"], "content", max_content_bytes)
        if not content:
            raise InvalidPayloadError("content is empty after normalization")
        principal = check_text("principal", spec["principal"])
        channel = check_text("channel", spec.get("channel"), nullable=True)
        session_id = check_text("session_id", spec.get("session_id"), nullable=True)
        memory_id = check_text("memory_id", spec.get("memory_id"), nullable=True)
        source = check_source(spec.get("source", "manual"))
        tags = check_tags(spec.get("tags", ()))
        confidence = check_confidence(spec.get("confidence"))
        ttl = check_time(spec.get("ttl_unix_ms"), "ttl_unix_ms")
        emb = spec.get("embedding")
        if batched:
            return PreparedItem(MemoryItem(memory_id or "", principal, channel, session_id, source,
                                           content, "", tags, confidence, ttl, 0, 0), emb)
        vector = None if emb is None else check_embedding(emb, dims)
        stored = redact_content(content, rules)
    except PayloadTooLargeError as exc:
        if not where:
            raise
        raise PayloadTooLargeError(f"{where}{exc}", exc.size, exc.limit) from exc
    except InvalidPayloadError as exc:
        if not where:
            raise
        raise InvalidPayloadError(f"{where}{exc}") from exc
    return PreparedItem(MemoryItem(memory_id or "", principal, channel, session_id, source, stored,
                                   content_hash(stored), tags, confidence, ttl, 0, 0), vector)


def _string_of(canonical: str) -> str:
    """The string a canonical JSON string literal holds: RFC 8785 escapes only with a backslash
    (quote, backslash, controls), so a literal without one holds its text between the quotes."""
    return canonical[1:-1] if "\\" not in canonical else json.loads(canonical)


def prepare_many(specs: list[dict[str, Any]], *, dims: int, max_content_bytes: int,
                 rules: Any) -> list[PreparedItem]:
    """:func:`prepare` of a batch, with the same checks and messages (``items[i]: ...``), but the
    given embeddings validated and normalized as one array and the prose contents redacted in one
    kernel call: per-item calls are most of an ingest's Python time."""
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise InvalidPayloadError(f"items[{i}] must be a dict, got {type(spec).__name__}")
        out.append(prepare(spec, dims=dims, max_content_bytes=max_content_bytes, rules=rules,
                           where=f"items[{i}]: ", batched=True))
    given = [i for i, p in enumerate(out) if p.vector is not None]
    if given:
        batch = unit_rows_of([out[i].vector for i in given], dims)
        vectors: list[np.ndarray] = []
        if batch is not None:
            vectors = list(batch)
        else:  # one at a time: the first bad one raises its own message
            for i in given:
                try:
                    vectors.append(check_embedding(out[i].vector, dims))
                except InvalidPayloadError as exc:
                    raise InvalidPayloadError(f"items[{i}]: {exc}") from exc
        for i, vec in zip(given, vectors):
            out[i].vector = vec
    prose = [i for i, p in enumerate(out) if p.item.content[:1] not in ("{", "[")]
    texts = (kernels.canonicalize_many([out[i].item.content for i in prose], rules=rules)[0]
             if prose else [])
    redacted = dict(zip(prose, map(_string_of, texts)))
    for i, p in enumerate(out):
        it = p.item
        stored = redacted[i] if i in redacted else redact_content(it.content, rules)
        # MemoryItem(...) rather than dataclasses.replace: a tenth of its cost, per item
        p.item = MemoryItem(it.memory_id, it.principal, it.channel, it.session_id, it.source,
                            stored, content_hash(stored), it.tags, it.confidence, it.ttl_unix_ms,
                            0, 0)
    return out


def check_provider_output(out: Any, count: int, dims: int) -> np.ndarray:
    """The provider's batch as float32 ``(count, dims)``, finite, rows L2-normalized."""
    arr = np.asarray(out, dtype=np.float64)
    if arr.shape != (count, dims):
        raise InvalidPayloadError(
            f"embedding provider returned shape {arr.shape}, expected {(count, dims)}")
    if not np.all(np.isfinite(arr)):
        raise InvalidPayloadError("embedding provider returned a non-finite value")
    return unit_rows(arr)


def check_fusion_weights(weights: Any) -> tuple[float, float, float]:
    try:
        wl, wv, wr = (float(w) for w in weights)
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(
            f"memory_fusion_weights must be three numbers (lexical, vector, recency), got {weights!r}"
        ) from exc
    if min(wl, wv, wr) < 0 or not all(map(math.isfinite, (wl, wv, wr))) \
            or abs(wl + wv + wr - 1.0) > 1e-9:
        raise InvalidPayloadError(
            f"memory_fusion_weights must be finite, >= 0 and sum to 1, got {weights!r}")
    return wl, wv, wr
