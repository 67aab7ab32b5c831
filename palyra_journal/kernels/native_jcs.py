"""Canonical JSON with redaction on the native kernel (csrc/jcs.c): same results as pure_jcs.

The C code walks JSON text, or the Python objects themselves (through the CPython API: the module
makes no limited-API claim, and this backend is only chosen on CPython with the GIL), and writes
the canonical text into a per-thread context; it is decoded to ``str`` once here. A bad value comes
back as a locator (array indexes and dict positions from the root), never as an object address:
the object is found again from the root here, and the message is written by the reference's own
formatters, so that both backends raise the very same text.
"""

from __future__ import annotations

import itertools
import threading

from .._native import ffi, lib
from ..errors import InvalidPayloadError
from . import pure_jcs
from . import rules as R
from .rules import DEFAULT_RULES, RedactionRules

_VALUE_KINDS = {
    lib.PJ_JCS_V_TYPE: "type",
    lib.PJ_JCS_V_KEY_TYPE: "key_type",
    lib.PJ_JCS_V_KEY_SURROGATE: "key_surrogate",
    lib.PJ_JCS_V_SURROGATE: "surrogate",
    lib.PJ_JCS_V_INT_RANGE: "int_range",
    lib.PJ_JCS_V_FLOAT: "float",
    lib.PJ_JCS_V_DEPTH: "depth",
}

_VOIDP = ffi.typeof("void *")
_cast = ffi.cast
_local = threading.local()
_rules_cache: dict = {}
_rules_lock = threading.Lock()


def _state():
    """This thread's (context, result): C writes into them, so threads never share one."""
    st = getattr(_local, "state", None)
    if st is None:
        ctx = lib.pj_jcs_ctx_new()
        if ctx == ffi.NULL:
            raise MemoryError("canonical JSON context")
        st = (ffi.gc(ctx, lib.pj_jcs_ctx_free), ffi.new("pj_jcs_result *"))
        _local.state = st
    return st


def _pack(items) -> bytes:
    return b"".join(i.encode("utf-8", "surrogatepass") + b"\0" for i in items)


def _rule_lists(rules: RedactionRules) -> list[bytes]:
    """The lists of csrc/redact.h, in its order (markers in the order the reference tries them)."""
    return [_pack(R.KEY_WORD_ENDINGS), _pack(R.KEY_WORDS),
            _pack(" ".join(p) for p in R.KEY_WORD_PAIRS), _pack(R.COUNTING_WORDS),
            _pack(R.match_order(R.HEADER_MARKERS)), _pack(R.match_order(R.ASSIGNMENT_MARKERS)),
            _pack(R.match_order(R.SCHEME_MARKERS)), _pack(R.match_order(R.TOKEN_PREFIXES)),
            _pack((R.AWS_KEY_PREFIX,)), _pack(rules.extra_key_fragments),
            _pack(rules.extra_value_markers)]


def _c_rules(rules):
    """The C form of ``rules`` (a RedactionRules, or None for the defaults), built once per object.

    Keyed by ``id``, the entry holding the rules object itself (so the id stays its own): a
    dataclass hash costs a Python-level call, this lookup does not.
    """
    entry = _rules_cache.get(id(rules))
    if entry is not None and entry[0] is rules:
        return entry[1]
    with _rules_lock:
        coerced = RedactionRules.coerce(rules)
        entry = _rules_cache.get(id(coerced))
        if entry is None or entry[0] is not coerced:
            lists = _rule_lists(coerced)
            blob = b"".join(lists)
            lens = ffi.new("size_t[]", [len(x) for x in lists])
            raw = lib.pj_jcs_rules_new(blob, len(blob), lens, len(lists), R.SCHEME_MIN_RUN,
                                       R.TOKEN_PREFIX_MIN_RUN, R.AWS_KEY_RUN)
            if raw == ffi.NULL:
                raise MemoryError("redaction rules")
            entry = (coerced, ffi.gc(raw, lib.pj_jcs_rules_free))
            _rules_cache[id(coerced)] = entry
        _rules_cache[id(rules)] = (rules, entry[1])
        return entry[1]


def format_number(x: float) -> str:
    """ECMAScript Number.prototype.toString of a finite double, from the C formatter (dtoa.c)."""
    buf = ffi.new("char[40]")
    return ffi.unpack(buf, lib.pj_format_double(float(x), buf)).decode("ascii")


def _locate(value, loc, on_key):
    """The path segments and the object that ``loc`` (from the C walk) designates in ``value``.

    Each entry is an array index, or the position of a member in its dict's iteration order (the
    order ``PyDict_Next`` walks); with ``on_key`` the last entry designates a dict's key, and the
    path stops at that dict, as the reference reports bad keys.
    """
    segments: list = []
    obj = value
    last = len(loc) - 1
    for depth, i in enumerate(loc):
        if isinstance(obj, dict):
            k, v = next(itertools.islice(dict.items(obj), i, None))
            if on_key and depth == last:
                return segments, k
            segments.append(k)
            obj = v
        else:
            segments.append(i)
            obj = (list.__getitem__ if isinstance(obj, list) else tuple.__getitem__)(obj, i)
    return segments, obj


def canonicalize(value, *, rules=DEFAULT_RULES, redact=True, root="payload"):
    """RFC 8785 text of the (redacted) Python ``value`` and whether redaction changed anything."""
    cr = _c_rules(rules)
    ctx, res = _state()
    out: list = []  # C appends the text (a str) and the flag: no buffer object, no decode here
    rc = lib.pj_jcs_value(ctx, cr, id(value), 1 if redact else 0, id(out), res)
    if rc == 0:
        return out[0], out[1]
    if rc == lib.PJ_JCS_NO_MEMORY:
        raise MemoryError("canonical JSON: out of memory")
    loc = [res.err_loc[i] for i in range(res.err_loc_len)]
    segments, obj = _locate(value, loc, bool(res.err_on_key))
    raise InvalidPayloadError(pure_jcs.value_error_message(
        pure_jcs.format_path(root, segments), _VALUE_KINDS[rc], obj))


def _one_payload(value, *, rules, redact, root):
    return pure_jcs.canonicalize_payload(value, rules=rules, redact=redact, root=root,
                                         text=canonicalize_text, obj=canonicalize)


def _batch_error(rc, res, values, rules, redact, max_bytes, root, payloads):
    """The exception for item ``res.err_index`` of a failed batch, as its single call raises it."""
    if rc == lib.PJ_JCS_NO_MEMORY:
        return MemoryError("canonical JSON: out of memory")
    i = res.err_index
    where = root(i)
    if rc == lib.PJ_JCS_TOO_LARGE:
        exc = pure_jcs.too_large_error(where, res.out_len, max_bytes)
    else:
        one = _one_payload if payloads else canonicalize
        try:
            one(values[i], rules=rules, redact=redact, root=where)
        except InvalidPayloadError as e:
            exc = e
        else:  # pragma: no cover - the batch and the single call disagree: a kernel bug
            exc = InvalidPayloadError(f"{where}: refused by the batch kernel (code {rc})")
    exc.index = i
    return exc


def canonicalize_many(values, *, rules=DEFAULT_RULES, redact=True, max_bytes=None, root=None,
                      payloads=False, pack=False):
    """Canonicalize a batch in one native call (see pure_jcs.canonicalize_many for the contract).

    ``pack``: a third item, the texts as the chain kernel's payload column (each NUL-ended UTF-8,
    written by C beside the texts), so that ``chain_columns`` does not encode them again."""
    rules = rules if type(rules) is RedactionRules else RedactionRules.coerce(rules)
    cr = _c_rules(rules)
    vals = values if type(values) is list else list(values)
    if payloads:
        types = set(map(type, vals))
        if bytearray in types or memoryview in types:
            vals = [bytes(v) if type(v) is bytearray or type(v) is memoryview else v for v in vals]
    ctx, res = _state()
    texts: list = []
    flags: list = []
    rc = lib.pj_jcs_many(ctx, cr, _cast(_VOIDP, id(vals)), 1 if redact else 0,
                         1 if payloads else 0, -1 if max_bytes is None else max_bytes,
                         1 if pack else 0, _cast(_VOIDP, id(texts)), _cast(_VOIDP, id(flags)), res)
    if rc:
        raise _batch_error(rc, res, vals, rules, redact, max_bytes,
                           root or pure_jcs.default_batch_root, payloads)
    if pack:
        return texts, flags, ffi.unpack(res.packed, res.packed_len)
    return texts, flags


def event_lines(lines, *, rules=DEFAULT_RULES, redact=True, max_bytes=None, pack=False):
    """Columns of a batch of JSON event lines (bytes), or None when the reference path is needed.

    Returns ``(kinds, actors, event_ids, session_ids, run_ids, principals, device_ids, channels,
    timestamps, texts, redacted)``: envelope fields as parsed (None when absent or null, actor
    "system" when absent), payloads canonical and redacted. Only plain lines take this path; any
    doubt (an error, an unknown or repeated key, a field of another type, a payload over
    ``max_bytes``) returns None, and the caller's reference path decides, error messages included.
    ``pack``: a twelfth item, the payload texts packed as in :func:`canonicalize_many`.
    """
    rules = rules if type(rules) is RedactionRules else RedactionRules.coerce(rules)
    cr = _c_rules(rules)
    ls = lines if type(lines) is list else list(lines)
    cols = [[] for _ in range(11)]
    ctx, res = _state()
    rc = lib.pj_jcs_event_lines(ctx, cr, _cast(_VOIDP, id(ls)), 1 if redact else 0,
                                -1 if max_bytes is None else max_bytes, 1 if pack else 0,
                                _cast(_VOIDP, id(cols)), res)
    if rc == 0:
        if pack:
            return (*cols, ffi.unpack(res.packed, res.packed_len))
        return tuple(cols)
    if rc == lib.PJ_JCS_NO_MEMORY:
        raise MemoryError("canonical JSON: out of memory")
    return None


def canonicalize_text(text, *, rules=DEFAULT_RULES, redact=True, root="payload"):
    """RFC 8785 text of the (redacted) JSON ``text`` and whether redaction changed anything."""
    cr = _c_rules(rules)
    b = text if type(text) is bytes else pure_jcs.text_to_bytes(text, root)
    ctx, res = _state()
    rc = lib.pj_jcs_text(ctx, cr, b, len(b), 1 if redact else 0, res)
    if rc == 0:
        return str(ffi.buffer(res.out, res.out_len), "utf-8"), bool(res.changed)
    if rc == lib.PJ_JCS_NO_MEMORY:
        raise MemoryError("canonical JSON: out of memory")
    raise InvalidPayloadError(
        pure_jcs.text_error_message(root, b, rc, res.err_offset, res.err_end))


__all__ = ["canonicalize", "canonicalize_text", "canonicalize_many", "event_lines",
           "format_number"]
