"""Canonical JSON (RFC 8785) with redaction, in Python: the reference the native kernel matches.

Two front ends share one walker: :func:`canonicalize` takes JSON-compatible Python values and
names the *path* of a bad value in its errors; :func:`canonicalize_text` parses JSON text strictly
and names the *byte offset*. The rules (what is refused, how numbers are written, what is redacted)
are written down in docs/canonical-json.md; the message formatters at the bottom of this module
are shared with the native backend so that both raise the very same text.
"""

from __future__ import annotations

import functools
import json
import math
import re

from ..errors import InvalidPayloadError, PayloadTooLargeError
from . import rules as rules_mod
from .rules import DEFAULT_RULES, REDACTED, RedactionRules

#: Largest magnitude of an integer (I-JSON: every double-based reader gets the same number).
MAX_SAFE_INT = 2**53 - 1
#: Deepest nesting of arrays/objects; the top container is depth 1.
MAX_DEPTH = 128

_quote = json.encoder.encode_basestring  # minimal escaping, lowercase \u00xx: exactly RFC 8785
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_JSON_WS = " \t\n\r"


# ----------------------------------------------------------------------------------- numbers

def format_number(x: float) -> str:
    """ECMAScript Number.prototype.toString of a finite double (shortest round-trip digits)."""
    if x == 0.0:
        return "0"
    if x.is_integer() and abs(x) < 9007199254740992.0:
        return int.__repr__(int(x))
    r = float.__repr__(abs(x))
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    point = len(ip) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    s = stripped.rstrip("0")
    k = len(s)
    sign = "-" if x < 0 else ""
    if k <= point <= 21:
        return sign + s + "0" * (point - k)
    if 0 < point <= 21:
        return sign + s[:point] + "." + s[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + s
    e = point - 1
    es = f"e+{e}" if e >= 0 else f"e-{-e}"
    if k == 1:
        return sign + s + es
    return sign + s[0] + "." + s[1:] + es


# --------------------------------------------------------------------------------- redaction

def _ascii_lower(s: str) -> str:
    return s.lower() if s.isascii() else s.translate(_ASCII_LOWER)


#: Not sensitive / sensitive / sensitive unless the value is a number (a counting word follows).
KEY_PLAIN, KEY_SENSITIVE, KEY_UNLESS_NUMBER = 0, 1, 2

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_ENDINGS = tuple(rules_mod.KEY_WORD_ENDINGS)
_WORDS = frozenset(rules_mod.KEY_WORDS)
_PAIRS = frozenset(rules_mod.KEY_WORD_PAIRS)
_COUNTING = frozenset(rules_mod.COUNTING_WORDS)


def key_words(key: str) -> list[str]:
    """The words of ``key``: split at non-ASCII-alphanumerics and lower/digit-to-upper steps."""
    return [_ascii_lower(w) for w in _WORD_SPLIT.split(key) if w]


@functools.lru_cache(maxsize=8192)
def _builtin_key_class(key: str) -> int:
    words = key_words(key)
    found = KEY_PLAIN
    for j, w in enumerate(words):
        if w.endswith(_ENDINGS) or w in _WORDS or (j and (words[j - 1], w) in _PAIRS):
            if j + 1 < len(words) and words[j + 1] in _COUNTING:
                found = KEY_UNLESS_NUMBER
            else:
                return KEY_SENSITIVE
    return found


def _contains_any(s: str, items) -> bool:
    """Some of ``items`` (ASCII-lowercase) occurs in ``s``, ASCII-case-insensitively."""
    if not items:
        return False
    low = _ascii_lower(s)
    return any(item in low for item in items)


def key_class(key: str, rules: RedactionRules) -> int:
    """Rules v2 for a key: KEY_PLAIN, KEY_SENSITIVE or KEY_UNLESS_NUMBER (docs/canonical-json.md)."""
    if _contains_any(key, rules.extra_key_fragments):
        return KEY_SENSITIVE
    return _builtin_key_class(key)


def key_is_sensitive(key: str, rules: RedactionRules, value=None) -> bool:
    """Whether the value under ``key`` is redacted (``value`` decides the counting exemption)."""
    c = key_class(key, rules)
    return c == KEY_SENSITIVE or (c == KEY_UNLESS_NUMBER and not _is_number(value))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _alternatives(items) -> str:
    return "|".join(re.escape(i) for i in rules_mod.match_order(items))


_WS_CLASS = " \\t\\n\\r\\f\\v"
_CRED = r"A-Za-z0-9._~+/=\-"
_WORDCH = r"A-Za-z0-9_\-"
# One alternation, tried left to right at each position of the string (leftmost match first, then
# the first alternative that matches there): the native kernel scans in exactly this order.
_MASK = re.compile(
    r"(?P<pem>-----BEGIN (?:[A-Za-z0-9]+ )*PRIVATE KEY-----"
    r"(?:.*?-----END (?:[A-Za-z0-9]+ )*PRIVATE KEY-----|.*))"
    rf"|(?P<hdr>(?:{_alternatives(rules_mod.HEADER_MARKERS)}))(?P<hval>[^\r\n\"'`]*)"
    rf"|(?P<asg>(?:{_alternatives(rules_mod.ASSIGNMENT_MARKERS)})[ \t]*[=:][ \t]*)"
    rf"(?P<aval>\"[^\"]*\"?|'[^']*'?|`[^`]*`?|[^{_WS_CLASS}&,;\"'`]+)"
    rf"|(?P<sch>(?:{_alternatives(rules_mod.SCHEME_MARKERS)}))"
    rf"(?P<sval>(?=[{_CRED}]*[0-9])[{_CRED}]{{{rules_mod.SCHEME_MIN_RUN},}})"
    rf"|(?P<tok>(?<![{_WORDCH}])(?:{_alternatives(rules_mod.TOKEN_PREFIXES)})"
    rf"[{_WORDCH}]{{{rules_mod.TOKEN_PREFIX_MIN_RUN},}})"
    rf"|(?P<aws>(?<![{_WORDCH}])(?-i:{rules_mod.AWS_KEY_PREFIX}[A-Z0-9]{{{rules_mod.AWS_KEY_RUN}}})"
    rf"(?![{_WORDCH}]))"
    rf"|(?P<url>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^/?#@{_WS_CLASS}:]*:)"
    rf"(?P<upw>[^/?#@{_WS_CLASS}]+)@",
    re.IGNORECASE | re.ASCII | re.DOTALL)


def _mask_one(m: "re.Match[str]") -> str:
    kind = m.lastgroup
    if kind == "pem" or kind == "tok" or kind == "aws":
        return REDACTED
    if kind == "hval":
        rest = m.group("hval")
        if not rest.strip(" \t"):
            return m.group(0)  # nothing after the marker: nothing to hide
        return m.group("hdr") + " " + REDACTED
    if kind == "aval":
        val = m.group("aval")
        q = val[0]
        if q in "\"'`":
            inner_end = len(val) - 1 if len(val) > 1 and val[-1] == q else len(val)
            if inner_end == 1:
                return m.group(0)  # an empty quoted value hides nothing
            return m.group("asg") + q + REDACTED + val[inner_end:]
        return m.group("asg") + REDACTED
    if kind == "sval":
        return m.group("sch") + REDACTED
    return m.group("url") + REDACTED + "@"  # upw


def mask_text(s: str) -> str:
    """``s`` with the secrets inside it masked in place (rules v2); ``s`` itself when none."""
    return _MASK.sub(_mask_one, s)


def redact_text(s: str, rules: RedactionRules) -> str:
    """The stored form of a free-text string value: extra markers replace it whole, else masking."""
    if _contains_any(s, rules.extra_value_markers):
        return REDACTED
    return mask_text(s)


# ------------------------------------------------------------------------------------ walker

class _PathError(Exception):
    """A bad Python value: (path segments, kind, offending object)."""

    def __init__(self, segments, kind, obj):
        super().__init__(kind)
        self.segments = list(segments)
        self.kind = kind
        self.obj = obj


class _Walker:
    """Validate, redact and emit one value; ``changed`` says whether redaction replaced anything."""

    __slots__ = ("rules", "redact", "changed", "stack")

    def __init__(self, rules: RedactionRules, redact: bool):
        self.rules = rules
        self.redact = redact
        self.changed = False
        self.stack: list = []

    def fail(self, kind, obj):
        raise _PathError(self.stack, kind, obj)

    def string(self, s: str, out: list) -> None:
        try:
            str.encode(s, "utf-8")
        except UnicodeEncodeError:
            self.fail("surrogate", s)
        if self.redact:
            replaced = self.redact_string(s)
            if replaced is not None:
                out.append(_quote(replaced))
                return
        out.append(_quote(s))

    def redact_string(self, s: str) -> "str | None":
        """The replacement of string value ``s``, or None to keep it."""
        head = s.lstrip(_JSON_WS)[:1]
        if head == "{" or head == "[":
            inner = _parse_text_quiet(s)
            if inner is not _NOT_JSON:
                sub = _Walker(self.rules, True)
                parts: list = []
                try:
                    sub.value(inner, parts, 0)
                except _PathError:
                    pass  # escaped lone surrogate or too deep: not JSON text after all
                else:
                    if sub.changed:
                        self.changed = True
                        return "".join(parts)
                    return None
        masked = redact_text(s, self.rules)
        if masked is s or masked == s:
            return None
        self.changed = True
        return masked

    def value(self, v, out: list, depth: int) -> None:
        t = type(v)
        if t is str:
            self.string(v, out)
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif t is int or (isinstance(v, int) and not isinstance(v, bool)):
            if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                out.append(int.__repr__(v))
            else:
                self.fail("int_range", v)
        elif t is float or isinstance(v, float):
            x = float(v)
            if not math.isfinite(x):
                self.fail("float", v)
            out.append(format_number(x))
        elif t is dict or isinstance(v, dict):
            if depth >= MAX_DEPTH:
                self.fail("depth", v)
            self.members(v, out, depth + 1)
        elif t is list or t is tuple or isinstance(v, (list, tuple)):
            if depth >= MAX_DEPTH:
                self.fail("depth", v)
            out.append("[")
            stack = self.stack
            for i, item in enumerate(v):
                if i:
                    out.append(",")
                stack.append(i)
                self.value(item, out, depth + 1)
                stack.pop()
            out.append("]")
        elif isinstance(v, str):
            self.string(v, out)
        else:
            self.fail("type", v)

    def members(self, d: dict, out: list, depth: int) -> None:
        stack = self.stack
        items = []
        for k, v in dict.items(d):
            if type(k) is not str and not isinstance(k, str):
                self.fail("key_type", k)
            try:
                utf16 = str.encode(k, "utf-16-be")
                str.encode(k, "utf-8")
            except UnicodeEncodeError:
                self.fail("key_surrogate", k)
            parts: list = []
            stack.append(k)
            if self.redact and key_is_sensitive(k, self.rules, v):
                self.value(v, parts, depth)  # validated, then replaced
                if not (isinstance(v, str) and v == REDACTED):
                    self.changed = True
                parts = ['"<redacted>"']
            else:
                self.value(v, parts, depth)
            stack.pop()
            items.append((utf16, k, parts))
        items.sort(key=lambda m: m[0])
        out.append("{")
        first = True
        for _, k, parts in items:
            if not first:
                out.append(",")
            first = False
            out.append(_quote(k))
            out.append(":")
            out.extend(parts)
        out.append("}")


def canonicalize(value, *, rules=DEFAULT_RULES, redact=True, root="payload"):
    """RFC 8785 text of the (redacted) Python ``value`` and whether redaction changed anything."""
    rules = RedactionRules.coerce(rules)
    w = _Walker(rules, bool(redact))
    out: list = []
    try:
        w.value(value, out, 0)
    except _PathError as exc:
        raise InvalidPayloadError(
            value_error_message(format_path(root, exc.segments), exc.kind, exc.obj)) from None
    return "".join(out), w.changed


# ------------------------------------------------------------------------------- JSON text

# Error codes of the strict parser; the native parser uses the same numbers.
E_UTF8, E_BOM, E_CHAR, E_END, E_TRAILING, E_CONTROL, E_ESCAPE, E_SURROGATE, E_DEPTH, \
    E_INT_RANGE, E_NOT_FINITE, E_DUPLICATE, E_LITERAL, E_NUMBER = range(1, 15)


class _TextError(Exception):
    def __init__(self, code: int, offset: int, end: int):
        super().__init__(code)
        self.code, self.offset, self.end = code, offset, end


_NOT_JSON = object()


def _reject_constant(name):
    raise ValueError(name)


def _checked_int(lit: str) -> int:
    if len(lit) > 17:
        raise ValueError(lit)
    v = int(lit)
    if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
        raise ValueError(lit)
    return v


def _checked_float(lit: str) -> float:
    v = float(lit)
    if not math.isfinite(v):
        raise ValueError(lit)
    return v


def _lenient_int(lit: str):
    """An integer literal of canonical text: beyond ±(2**53-1) it can only be an integral double."""
    v = int(lit)
    return v if -MAX_SAFE_INT <= v <= MAX_SAFE_INT else float(lit)


def _pairs_no_duplicates(pairs):
    d = dict(pairs)
    if len(d) != len(pairs):
        raise ValueError("duplicate key")
    return d


def _fast_loads(s: str):
    """json.loads restricted by hooks; anything it lets through is re-checked by the walker."""
    return json.loads(s, object_pairs_hook=_pairs_no_duplicates, parse_int=_checked_int,
                      parse_float=_checked_float, parse_constant=_reject_constant)


def _parse_text_quiet(s: str):
    """The value of JSON text ``s`` (an object or array with optional whitespace), or _NOT_JSON.

    This reads JSON found inside a string for redaction, which may well be canonical text written
    by this module: an integer literal beyond ±(2**53-1) is read as the double it denotes rather
    than refused (redaction must not be dodged by one large number next to a secret).
    """
    try:
        return json.loads(s, object_pairs_hook=_pairs_no_duplicates, parse_int=_lenient_int,
                          parse_float=_checked_float, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _NOT_JSON


_LONG_DIGIT_RUN = re.compile(r"[0-9]{16}")


def loads_canonical(text: str):
    """Python values of stored canonical text, read back without validating it as input again.

    Canonical text writes integral doubles of magnitude in [2**53, 1e21) as integer literals
    (``1e20`` is ``100000000000000000000``); these are read as floats, so that the value can be
    appended again and canonicalizes to the same text. Everything else is ``json.loads``.
    """
    if _LONG_DIGIT_RUN.search(text) is None:
        return json.loads(text)
    return json.loads(text, parse_int=_lenient_int)


class _StrictParser:
    """The reference strict parser over UTF-8 bytes: exact error codes and byte offsets."""

    def __init__(self, b: bytes):
        self.b = b
        self.n = len(b)

    def ws(self, i: int) -> int:
        b, n = self.b, self.n
        while i < n and b[i] in b" \t\n\r":
            i += 1
        return i

    def unexpected(self, i: int):
        raise _TextError(E_END if i >= self.n else E_CHAR, i, i)

    def parse(self):
        i = self.ws(0)
        v, i = self.value(i, 0)
        i = self.ws(i)
        if i < self.n:
            raise _TextError(E_TRAILING, i, i)
        return v

    def value(self, i: int, depth: int):
        b = self.b
        if i >= self.n:
            raise _TextError(E_END, i, i)
        c = b[i]
        if c == 0x7B or c == 0x5B:  # { [
            if depth >= MAX_DEPTH:
                raise _TextError(E_DEPTH, i, i + 1)
            return (self.obj if c == 0x7B else self.arr)(i, depth + 1)
        if c == 0x22:
            return self.string(i)
        if c == 0x2D or 0x30 <= c <= 0x39:
            return self.number(i)
        for lit, val in ((b"true", True), (b"false", False), (b"null", None)):
            if c == lit[0]:
                if b.startswith(lit, i):
                    return val, i + len(lit)
                raise _TextError(E_LITERAL, i, i + 1)
        raise _TextError(E_CHAR, i, i)

    def arr(self, i: int, depth: int):
        out = []
        i = self.ws(i + 1)
        if i < self.n and self.b[i] == 0x5D:
            return out, i + 1
        while True:
            v, i = self.value(i, depth)
            out.append(v)
            i = self.ws(i)
            if i < self.n and self.b[i] == 0x2C:
                i = self.ws(i + 1)
                continue
            if i < self.n and self.b[i] == 0x5D:
                return out, i + 1
            self.unexpected(i)

    def obj(self, i: int, depth: int):
        members = []
        i = self.ws(i + 1)
        if i < self.n and self.b[i] == 0x7D:
            return {}, i + 1
        while True:
            if i >= self.n or self.b[i] != 0x22:
                self.unexpected(i)
            kstart = i
            k, i = self.string(i)
            i = self.ws(i)
            if i >= self.n or self.b[i] != 0x3A:
                self.unexpected(i)
            v, i = self.value(self.ws(i + 1), depth)
            members.append((kstart, i, k, v))
            i = self.ws(i)
            if i < self.n and self.b[i] == 0x2C:
                i = self.ws(i + 1)
                continue
            if i < self.n and self.b[i] == 0x7D:
                break
            self.unexpected(i)
        # duplicates are detected when the object closes: the first repeated key, in text order
        seen = set()
        for kstart, _, k, _ in members:
            if k in seen:
                raise _TextError(E_DUPLICATE, kstart, self.string_end(kstart))
            seen.add(k)
        return {k: v for _, _, k, v in members}, i + 1

    def string_end(self, i: int) -> int:
        return self.string(i)[1]

    def string(self, i: int):
        b, n = self.b, self.n
        start = i
        i += 1
        parts = []
        run = i
        while True:
            if i >= n:
                raise _TextError(E_END, n, n)
            c = b[i]
            if c == 0x22:
                parts.append(b[run:i].decode("utf-8"))
                return "".join(parts), i + 1
            if c < 0x20:
                raise _TextError(E_CONTROL, i, i + 1)
            if c != 0x5C:
                i += 1
                continue
            parts.append(b[run:i].decode("utf-8"))
            if i + 1 >= n:
                raise _TextError(E_END, n, n)
            e = b[i + 1]
            simple = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n",
                      0x72: "\r", 0x74: "\t"}.get(e)
            if simple is not None:
                parts.append(simple)
                i += 2
            elif e == 0x75:
                cp = self.hex4(i)
                if 0xDC00 <= cp <= 0xDFFF:
                    raise _TextError(E_SURROGATE, i, i + 6)
                if 0xD800 <= cp <= 0xDBFF:
                    lo = -1
                    if i + 12 <= n and b[i + 6] == 0x5C and b[i + 7] == 0x75:
                        try:
                            lo = self.hex4(i + 6)
                        except _TextError:
                            lo = -1
                    if not 0xDC00 <= lo <= 0xDFFF:
                        raise _TextError(E_SURROGATE, i, i + 6)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
                parts.append(chr(cp))
                i += 6
            else:
                raise _TextError(E_ESCAPE, i, i + 2)
            run = i
        del start

    def hex4(self, i: int) -> int:
        """The code unit of the ``\\uXXXX`` escape whose backslash is at ``i``."""
        if i + 6 > self.n:
            raise _TextError(E_END, self.n, self.n)
        h = self.b[i + 2:i + 6]
        if not all(c in b"0123456789abcdefABCDEF" for c in h):
            raise _TextError(E_ESCAPE, i, i + 6)
        return int(h, 16)

    def number(self, i: int):
        b, n = self.b, self.n
        start = i
        if b[i] == 0x2D:
            i += 1
        if i < n and b[i] == 0x30:
            i += 1
        elif i < n and 0x31 <= b[i] <= 0x39:
            while i < n and 0x30 <= b[i] <= 0x39:
                i += 1
        else:
            raise _TextError(E_NUMBER, start, i)
        is_int = True
        if i < n and b[i] == 0x2E:
            i += 1
            if not (i < n and 0x30 <= b[i] <= 0x39):
                raise _TextError(E_NUMBER, start, i)
            while i < n and 0x30 <= b[i] <= 0x39:
                i += 1
            is_int = False
        if i < n and b[i] in b"eE":
            i += 1
            if i < n and b[i] in b"+-":
                i += 1
            if not (i < n and 0x30 <= b[i] <= 0x39):
                raise _TextError(E_NUMBER, start, i)
            while i < n and 0x30 <= b[i] <= 0x39:
                i += 1
            is_int = False
        lit = b[start:i]
        if is_int:
            if len(lit) > 17 or not -MAX_SAFE_INT <= int(lit) <= MAX_SAFE_INT:
                raise _TextError(E_INT_RANGE, start, i)
            return int(lit), i
        x = float(lit)
        if not math.isfinite(x):
            raise _TextError(E_NOT_FINITE, start, i)
        return x, i


def text_to_bytes(text, root: str) -> bytes:
    """UTF-8 bytes of ``text`` (str or bytes-like); a lone surrogate in a str is refused here."""
    if isinstance(text, str):
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            at = len(text[:exc.start].encode("utf-8", "surrogatepass"))
            raise InvalidPayloadError(
                f"{root}: lone surrogate U+{ord(text[exc.start]):04X} at byte {at}") from None
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise InvalidPayloadError(f"{root}: JSON text must be str or bytes, not {type(text).__name__}")


def check_utf8(b: bytes, root: str) -> str:
    """Decode ``b`` strictly (UTF-8 only, no BOM); errors name the byte offset."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPayloadError(text_error_message(root, b, E_UTF8, exc.start, exc.start)) from None
    if s.startswith("\ufeff"):
        raise InvalidPayloadError(text_error_message(root, b, E_BOM, 0, 3))
    return s


def canonicalize_text(text, *, rules=DEFAULT_RULES, redact=True, root="payload"):
    """RFC 8785 text of the (redacted) JSON ``text`` and whether redaction changed anything."""
    rules = RedactionRules.coerce(rules)
    b = text_to_bytes(text, root)
    s = check_utf8(b, root)
    w = _Walker(rules, bool(redact))
    out: list = []
    try:
        value = _fast_loads(s)
        w.value(value, out, 0)
    except (ValueError, RecursionError, _PathError):
        # refused by the quick path: the reference parser finds the exact error and offset
        try:
            value = _StrictParser(b).parse()
        except _TextError as exc:
            raise InvalidPayloadError(
                text_error_message(root, b, exc.code, exc.offset, exc.end)) from None
        w = _Walker(rules, bool(redact))
        out = []
        w.value(value, out, 0)
    return "".join(out), w.changed


# ------------------------------------------------------------------------------- batches

def default_batch_root(i: int) -> str:
    return f"payload[{i}]"


def too_large_error(root: str, size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{root}: canonical payload is {size} bytes; max_payload_bytes is {limit}", size, limit)


def canonicalize_payload(value, *, rules=DEFAULT_RULES, redact=True, root="payload",
                         text=canonicalize_text, obj=canonicalize):
    """A journal payload: None is ``{}``, str and bytes-likes are JSON text, the rest a value."""
    if value is None:
        return "{}", False
    t = type(value)
    if t is str or t is bytes:
        return text(value, rules=rules, redact=redact, root=root)
    if t is bytearray or t is memoryview:
        return text(bytes(value), rules=rules, redact=redact, root=root)
    return obj(value, rules=rules, redact=redact, root=root)


def canonicalize_many(values, *, rules=DEFAULT_RULES, redact=True, max_bytes=None, root=None,
                      payloads=False, pack=False):
    """Canonicalize a batch: ``(texts, redacted_flags)``, two lists in the order of ``values``.

    ``pack=True`` adds a third item: the texts as the chain kernel's payload column, NUL-ended
    UTF-8 (what ``chain_columns`` takes as ``packed_payload``), or None where the backend does not
    write it (here: the reference chain packs nothing).

    With ``payloads=True`` the items are journal payloads (:func:`canonicalize_payload`). The first
    bad item raises InvalidPayloadError, or PayloadTooLargeError when its UTF-8 text is longer than
    ``max_bytes``, with the message of the single call for root ``root(i)`` (default
    ``payload[i]``) and the item's index in the exception's ``index`` attribute.
    """
    rules = RedactionRules.coerce(rules)
    root = root or default_batch_root
    texts: list = []
    flags: list = []
    one = canonicalize_payload if payloads else canonicalize
    for i, v in enumerate(values):
        try:
            text, red = one(v, rules=rules, redact=redact, root=root(i))
            if max_bytes is not None and len(text) * 4 > max_bytes:
                size = len(text.encode("utf-8"))
                if size > max_bytes:
                    raise too_large_error(root(i), size, max_bytes)
        except InvalidPayloadError as exc:
            exc.index = i
            raise
        texts.append(text)
        flags.append(red)
    if pack:
        return texts, flags, None
    return texts, flags


def event_lines(lines, *, rules=DEFAULT_RULES, redact=True, max_bytes=None, pack=False):
    """The native fast path of JSON-lines ingestion; the reference has none: always None.

    The native kernel turns a batch of event lines (bytes) into columns; None tells the caller to
    use its reference path (json.loads per line, then :func:`canonicalize_many`), which also finds
    the precise error of a bad line.
    """
    return None


# ------------------------------------------------------------------------ error messages

def _short_repr(obj, limit: int = 60) -> str:
    try:
        r = repr(obj)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        r = f"<{type(obj).__name__}>"
    return r if len(r) <= limit else r[:limit - 3] + "..."


def format_path(root: str, segments) -> str:
    """``root.key[3]["odd key"]``: identifier keys dotted, others quoted, indexes bracketed."""
    parts = [root]
    for seg in segments:
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif _IDENT.match(seg):
            parts.append("." + seg)
        else:
            parts.append("[" + _quote(seg) + "]")
    return "".join(parts)


def value_error_message(path: str, kind: str, obj) -> str:
    """The message for a bad Python value at ``path`` (for a bad key: the path of its dict)."""
    tname = type(obj).__name__
    if kind == "type":
        return f"{path}: {tname} is not JSON"
    if kind == "key_type":
        return f"{path}: key {_short_repr(obj)} is {tname}, not str"
    if kind == "key_surrogate":
        return f"{path}: key {_short_repr(obj)} has a lone surrogate"
    if kind == "surrogate":
        idx = next(i for i, ch in enumerate(obj) if 0xD800 <= ord(ch) <= 0xDFFF)
        return f"{path}: string has a lone surrogate U+{ord(obj[idx]):04X} at index {idx}"
    if kind == "int_range":
        if obj.bit_length() > 256:
            return f"{path}: integer of {obj.bit_length()} bits is outside ±(2**53-1)"
        return f"{path}: integer {int.__repr__(obj)} is outside ±(2**53-1)"
    if kind == "float":
        return f"{path}: float {float.__repr__(float(obj))} is not finite"
    if kind == "depth":
        return f"{path}: nesting deeper than {MAX_DEPTH}"
    return f"{path}: invalid value ({kind})"


def _literal(b: bytes, start: int, end: int, limit: int = 40) -> str:
    lit = b[start:end].decode("utf-8", "replace")
    return lit if len(lit) <= limit else lit[:limit - 3] + "..."


def text_error_message(root: str, b: bytes, code: int, offset: int, end: int) -> str:
    """The message for refused JSON text ``b``; ``offset``/``end`` delimit the offending token."""
    if code == E_UTF8:
        return f"{root}: invalid UTF-8 at byte {offset}"
    if code == E_SURROGATE:
        return f"{root}: lone surrogate {_literal(b, offset, end)} at byte {offset}"
    if code == E_DEPTH:
        return f"{root}: nesting deeper than {MAX_DEPTH} at byte {offset}"
    if code == E_INT_RANGE:
        return f"{root}: integer {_literal(b, offset, end)} at byte {offset} is outside ±(2**53-1)"
    if code == E_NOT_FINITE:
        return f"{root}: number {_literal(b, offset, end)} at byte {offset} is not a finite double"
    if code == E_DUPLICATE:
        key = json.loads(b[offset:end].decode("utf-8"))
        shown = _quote(key)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{root}: duplicate key {shown} at byte {offset}"
    if code == E_BOM:
        reason = "byte order mark (UTF-8 without BOM only)"
    elif code == E_END:
        reason = "unexpected end of input"
    elif code == E_TRAILING:
        reason = "unexpected data after the value"
    elif code == E_CONTROL:
        reason = f"raw control character U+{b[offset]:04X} in a string"
    elif code == E_ESCAPE:
        reason = f"invalid escape {_literal(b, offset, end)}"
    elif code == E_LITERAL:
        reason = f"invalid literal {_literal(b, offset, offset + 5)}"
    elif code == E_NUMBER:
        if b.startswith(b"-Infinity", offset):
            reason = "-Infinity is not JSON"
        else:
            reason = f"invalid number {_literal(b, offset, end)}"
    elif code == E_CHAR:
        if b.startswith(b"NaN", offset) or b.startswith(b"Infinity", offset):
            reason = "NaN and Infinity are not JSON"
        else:
            ch = b[offset:offset + 4].decode("utf-8", "ignore")[:1] or "?"
            reason = f"unexpected character {ch!r}"
    else:
        reason = f"error {code}"
    return f"{root}: invalid JSON at byte {offset}: {reason}"


__all__ = ["canonicalize", "canonicalize_text", "canonicalize_many", "canonicalize_payload",
           "event_lines", "format_number", "key_class", "key_is_sensitive", "mask_text",
           "redact_text", "loads_canonical", "MAX_SAFE_INT", "MAX_DEPTH"]
