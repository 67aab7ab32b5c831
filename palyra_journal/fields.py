"""Checks of the plain text fields (ids, names, principals) that every domain takes.

One place decides what an acceptable id-like string is, so that canvas, cron, approvals and memory
refuse the same things with the same words: a lone surrogate, for instance, can be neither stored
as UTF-8 nor hashed, and must be refused before it reaches SQLite.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidPayloadError

#: Longest id-like field accepted, in characters.
MAX_ID_CHARS = 1024

_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_at(text: str) -> int:
    """Index of the first lone surrogate in ``text``, or -1 (one regex scan, C speed)."""
    m = _SURROGATE.search(text)
    return -1 if m is None else m.start()


def check_unicode(name: str, value: str) -> None:
    """Refuse a str holding a lone surrogate, naming the field and the index."""
    i = surrogate_at(value)
    if i >= 0:
        raise InvalidPayloadError(
            f"{name} holds a lone surrogate at index {i} ({value[i]!r}): not valid Unicode text")


def check_text(name: str, value: Any, *, nullable: bool, max_chars: int = MAX_ID_CHARS) -> None:
    """A non-empty str of at most ``max_chars`` valid Unicode characters (or None if nullable)."""
    if value is None:
        if nullable:
            return
        raise InvalidPayloadError(f"{name} is required (a non-empty string), got None")
    if not isinstance(value, str) or not value:
        raise InvalidPayloadError(f"{name} must be a non-empty string, got {value!r:.80}")
    if len(value) > max_chars:
        raise InvalidPayloadError(f"{name} is {len(value)} characters long; the limit is {max_chars}")
    check_unicode(name, value)


def canonical_within_limit(value: Any, what: str, *, rules: Any, redact: bool, limit: int) -> str:
    """Canonical JSON of ``value`` (redacted when asked) whose UTF-8 size is at most ``limit``.

    The common step of every domain that stores a JSON document (canvas states and patches,
    approval snapshots and prompts): one size rule, one error with both numbers.
    """
    from . import kernels
    from .errors import PayloadTooLargeError
    text, _ = kernels.canonicalize(value, rules=rules, redact=redact)
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > limit:
        raise PayloadTooLargeError(
            f"{what}: canonical size {size} bytes exceeds max_payload_bytes {limit}", size, limit)
    return text
