"""Every field rule of every domain, written once: text, integers, choices, flags, free text.

One place decides what an acceptable field is, so that the journal, memory, canvas, cron and
approvals refuse the same things with the same words (docs/fields.md holds the table):

* a text field is a ``str`` (not empty, unless the field says so) of at most ``max_chars``
  characters, with no NUL (C strings and many tools cut at it) and no lone surrogate (it can be
  neither stored as UTF-8 nor hashed);
* an integer is an ``int`` (not a bool) inside the field's range; times, counters and sizes stay
  within ±(2**53 - 1), the integers every JSON reader holds exactly (I-JSON);
* a choice is one of the listed strings;
* free text that may quote a secret (an approval summary, a cron error message) goes through
  :func:`redact_text`, the one redaction of prose, before it is stored.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real
from typing import Any, Sequence

from .errors import InvalidPayloadError, JournalError, PayloadTooLargeError

#: The largest integer every JSON reader holds exactly (I-JSON); times and counters stay within.
MAX_SAFE_INT = 2**53 - 1
#: Longest id-like field (ids, kinds, names, principals, channels, labels), in characters.
MAX_ID_CHARS = 1024
#: Longest free-text field (a cron prompt, an approval summary or reason, an error message).
MAX_TEXT_CHARS = 65_536
#: Largest ``limit`` of a listing call; larger values are clamped to it.
MAX_LIST = 1000


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def bad_char_at(text: str) -> int:
    """Index of the first NUL or lone surrogate in ``text``, or -1.

    Built from C-speed string methods (``find``, ``isascii``, ``encode``): a regex over the
    surrogate range is about a thousand times slower, which a 100 000-event batch would feel.
    """
    nul = text.find("\x00")
    if text.isascii():
        return nul
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start if nul < 0 else min(nul, exc.start)
    return nul


def check_chars(name: str, value: str) -> None:
    """Refuse a str holding a NUL or a lone surrogate, naming the field and the index."""
    i = bad_char_at(value)
    if i < 0:
        return
    if value[i] == "\x00":
        raise InvalidPayloadError(f"{name} holds a NUL character at index {i}: {_show(value)}")
    raise InvalidPayloadError(
        f"{name} holds a lone surrogate at index {i} ({value[i]!r}): not valid Unicode text")


def check_text(name: str, value: Any, *, nullable: bool = False, empty_ok: bool = False,
               max_chars: int = MAX_ID_CHARS) -> Any:
    """``value`` when it is an acceptable text field (see the module docstring), else raise.

    ``nullable``: None is accepted (and returned). ``empty_ok``: "" is accepted.
    """
    if value is None:
        if nullable:
            return None
        raise InvalidPayloadError(f"{name} is required (a non-empty string), got None")
    if not isinstance(value, str):
        raise InvalidPayloadError(f"{name} must be a string, got {type(value).__name__} "
                                  f"{_show(value)}")
    if not value and not empty_ok:
        raise InvalidPayloadError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise InvalidPayloadError(f"{name} is {len(value)} characters long; the limit is "
                                  f"{max_chars}")
    check_chars(name, value)
    return value


def check_texts(name: str, values: Sequence[Any], label: Any, *, nullable: bool = False,
                max_chars: int = MAX_ID_CHARS) -> None:
    """:func:`check_text` over a whole column of a batch, with C-level builtins on the good path.

    ``label(i)`` names row ``i`` in a message (``events[3]``); the field is ``label(i).name``.
    """
    def slow() -> None:
        for i, v in enumerate(values):
            check_text(f"{label(i)}.{name}", v, nullable=nullable, max_chars=max_chars)

    types = set(map(type, values))
    if not types <= ({str, type(None)} if nullable else {str}):
        return slow()
    strs = [v for v in values if v is not None] if type(None) in types else values
    if not strs:
        return None
    if "" in strs or max(map(len, strs)) > max_chars:
        return slow()
    if bad_char_at("".join(strs)) >= 0:
        return slow()
    return None


def check_int(name: str, value: Any, *, lo: int = 0, hi: int = MAX_SAFE_INT,
              nullable: bool = False, error: type[JournalError] = InvalidPayloadError) -> Any:
    """``int(value)`` for an integer (not a bool; numpy integers accepted) in ``[lo, hi]``."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise error(f"{name} must be an integer in [{lo}, {hi}], got {type(value).__name__} "
                    f"{_show(value)}")
    v = int(value)
    if not lo <= v <= hi:
        raise error(f"{name} must be an integer in [{lo}, {hi}], got {v}")
    return v


def check_number(name: str, value: Any, *, lo: float = -math.inf, hi: float = math.inf,
                 lo_open: bool = False, nullable: bool = False) -> Any:
    """``float(value)`` for a finite real number (not a bool) in ``[lo, hi]`` (``(lo, hi]`` with
    ``lo_open``); NaN and the infinities are refused."""
    if value is None and nullable:
        return None
    bounds = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InvalidPayloadError(f"{name} must be a finite number in {bounds}, got "
                                  f"{type(value).__name__} {_show(value)}")
    f = float(value)
    if not math.isfinite(f) or not (lo < f if lo_open else lo <= f) or not f <= hi:
        raise InvalidPayloadError(f"{name} must be a finite number in {bounds}, got {_show(value)}")
    return f


def check_choice(name: str, value: Any, allowed: Sequence[str], *, nullable: bool = False,
                 error: type[JournalError] = InvalidPayloadError) -> Any:
    """``value`` when it is one of ``allowed`` (exact strings; None when ``nullable``)."""
    if value is None and nullable:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise error(f"{name} must be one of {', '.join(allowed)}; got {_show(value)}")
    return value


def check_bool(name: str, value: Any, *, nullable: bool = False) -> Any:
    """``value`` when it is True or False (or None when ``nullable``)."""
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise InvalidPayloadError(f"{name} must be True or False, got {type(value).__name__} "
                                  f"{_show(value)}")
    return value


def clamp_limit(value: Any, high: int = MAX_LIST, name: str = "limit") -> int:
    """A listing ``limit``: an integer, clamped to ``[1, high]``."""
    return max(1, min(high, int(check_int(name, value, lo=-MAX_SAFE_INT))))


def redact_text(text: str, rules: Any, *, json_as_canonical: bool = False) -> str:
    """The one redaction of free text (memory content, approval summaries, cron error messages).

    The string rules of the kernels apply (a secret-looking value becomes ``<redacted>``; JSON
    text inside the string is redacted member by member and re-serialized only when something
    changed). With ``json_as_canonical`` (memory content, docs/memory.md), text that parses as a JSON
    object or array always becomes its redacted canonical text. ``text`` must already have passed
    :func:`check_text` (no lone surrogate).
    """
    from . import kernels
    if json_as_canonical and text[:1] in ("{", "["):
        try:
            return str(kernels.canonicalize_text(text, rules=rules)[0])
        except InvalidPayloadError:
            pass  # not JSON after all: treated as prose below
    return str(json.loads(kernels.canonicalize(text, rules=rules)[0]))


def canonical_within_limit(value: Any, what: str, *, rules: Any, redact: bool, limit: int) -> str:
    """Canonical JSON of ``value`` (redacted when asked) whose UTF-8 size is at most ``limit``.

    The common step of every domain that stores a JSON document (canvas states and patches,
    approval snapshots and prompts): one size rule, one error with both numbers.
    """
    from . import kernels
    text, _ = kernels.canonicalize(value, rules=rules, redact=redact)
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    if size > limit:
        raise PayloadTooLargeError(
            f"{what}: canonical size {size} bytes exceeds max_payload_bytes {limit}", size, limit)
    return str(text)
