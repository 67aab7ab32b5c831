"""The canvas patch language: parsing and atomic application of the two accepted patch forms.

Kept apart from canvas.py because it knows nothing of storage: it turns a caller's patch into a
list of :class:`Op` (checking its shape) and applies such a list to a JSON document. Both steps
raise :class:`InvalidPatchError` naming the operation's index and path, so an agent that sent a bad
patch can tell which operation to fix.

Forms (docs/canvas.md, "The patch language"):

* the agent form ``{"v": 1, "ops": [...]}`` with ``add`` / ``replace`` / ``remove`` only, a
  non-empty list, ``v`` the integer 1, ``value`` required for add/replace and refused for remove;
* an RFC 6902 JSON Patch array with ``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``.

Paths are RFC 6901 JSON Pointers: ``""`` is the root, ``~0`` is ``~``, ``~1`` is ``/``, any other
``~`` is an error. Array indexes are canonical decimals (``0``, ``12``; never ``01`` or ``+1``);
``-`` (one past the end) is valid only where something is added: the path of ``add``, and the
target of ``move``/``copy``, which RFC 6902 defines as an ``add``. Removing the root is an error.

Application is atomic: :func:`apply_patch` works on a private copy and returns it, so a patch that
fails half-way leaves the caller's document untouched.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from .errors import InvalidPatchError

AGENT_OPS = frozenset({"add", "replace", "remove"})
RFC6902_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_AGENT_KEYS = frozenset({"v", "ops"})
_AGENT_OP_KEYS = frozenset({"op", "path", "value"})
_MISSING = object()


class Op:
    """One parsed operation: ``tokens``/``from_tokens`` are the decoded pointer reference tokens.

    A plain slotted class rather than a frozen dataclass: ``state_at`` parses up to
    ``interval - 1`` stored patches per call, and a frozen dataclass's ``__init__`` costs several
    times more.
    """

    __slots__ = ("index", "op", "path", "tokens", "value", "from_path", "from_tokens")

    def __init__(self, index: int, op: str, path: str, tokens: tuple[str, ...], value: Any = None,
                 from_path: str | None = None, from_tokens: tuple[str, ...] | None = None):
        self.index = index
        self.op = op
        self.path = path
        self.tokens = tokens
        self.value = value
        self.from_path = from_path
        self.from_tokens = from_tokens

    def __repr__(self) -> str:
        return f"Op({self.index}, {self.op!r}, {self.path!r})"

    def where(self) -> str:
        return f"op {self.index} ({self.op}) at path {self.path!r}"


def _fail(index: int, op: Any, path: Any, reason: str) -> InvalidPatchError:
    label = f" ({op})" if isinstance(op, str) else ""
    return InvalidPatchError(f"patch op {index}{label} at path {path!r}: {reason}")


def parse_pointer(pointer: Any, *, index: int = 0, op: Any = None,
                  field: str = "path") -> tuple[str, ...]:
    """Decode an RFC 6901 pointer into its reference tokens (``""`` -> ``()``)."""
    if not isinstance(pointer, str):
        raise _fail(index, op, pointer, f"{field} must be a string JSON Pointer, "
                                        f"got {type(pointer).__name__}")
    if pointer == "":
        return ()
    if pointer[0] == "/" and "~" not in pointer:  # the common case: nothing to unescape
        return tuple(pointer[1:].split("/"))
    if pointer[0] != "/":
        raise _fail(index, op, pointer, f"{field} {pointer!r} must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    out = []
    for tok in tokens:
        if "~" in tok:
            pos = 0
            while True:
                pos = tok.find("~", pos)
                if pos < 0:
                    break
                if pos + 1 >= len(tok) or tok[pos + 1] not in "01":
                    raise _fail(index, op, pointer,
                                f"{field} {pointer!r} has an invalid escape in token {tok!r} "
                                "(only ~0 and ~1 are allowed)")
                pos += 2
            tok = tok.replace("~1", "/").replace("~0", "~")
        out.append(tok)
    return tuple(out)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_patch(patch: Any) -> tuple[str, list[Op]]:
    """Check a patch's shape; returns ``("agent" | "rfc6902", ops)``."""
    if isinstance(patch, dict):
        return "agent", _parse_agent(patch)
    if isinstance(patch, (list, tuple)):
        return "rfc6902", _parse_rfc6902(patch)
    raise InvalidPatchError(
        "patch must be an agent-form object {\"v\": 1, \"ops\": [...]} or an RFC 6902 array, "
        f"got {type(patch).__name__}")


def _parse_agent(patch: dict) -> list[Op]:
    extra = sorted(str(k) for k in patch if k not in _AGENT_KEYS)
    if extra:
        raise InvalidPatchError(f"patch has unknown member(s) {extra}: the agent form holds only "
                                "'v' and 'ops'")
    v = patch.get("v", _MISSING)
    if v is _MISSING:
        raise InvalidPatchError("patch.v is missing: the agent form needs \"v\": 1")
    if not _is_int(v) or v != 1:
        raise InvalidPatchError(f"patch.v must be the integer 1, got {v!r}")
    ops = patch.get("ops", _MISSING)
    if ops is _MISSING:
        raise InvalidPatchError("patch.ops is missing: the agent form needs a list of operations")
    if not isinstance(ops, (list, tuple)):
        raise InvalidPatchError(f"patch.ops must be a list, got {type(ops).__name__}")
    if not ops:
        raise InvalidPatchError("patch.ops is empty: the agent form needs at least one operation")
    out = []
    for i, raw in enumerate(ops):
        name, path = _op_and_path(i, raw, AGENT_OPS, "the agent form's")
        extra = sorted(str(k) for k in raw if k not in _AGENT_OP_KEYS)
        if extra:
            raise _fail(i, name, path, f"unknown member(s) {extra} in an agent-form operation")
        tokens = parse_pointer(path, index=i, op=name)
        has_value = "value" in raw
        if name == "remove" and has_value:
            raise _fail(i, name, path, "'remove' must not carry a 'value'")
        if name != "remove" and not has_value:
            raise _fail(i, name, path, f"'{name}' needs a 'value' (null is allowed)")
        out.append(Op(i, name, path, tokens, raw.get("value")))
    return out


def _op_and_path(i: int, raw: Any, allowed: Any, form: str) -> tuple[Any, Any]:
    """The checked ``op`` and ``path`` members of operation ``i`` (both patch forms)."""
    if not isinstance(raw, dict):
        raise _fail(i, None, None, f"operation must be an object, got {type(raw).__name__}")
    name = raw.get("op", _MISSING)
    path = raw.get("path", _MISSING)
    if name is _MISSING:
        raise _fail(i, None, path if path is not _MISSING else None, "member 'op' is missing")
    if name not in allowed:
        raise _fail(i, name if isinstance(name, str) else None,
                    path if path is not _MISSING else None,
                    f"op {name!r} is not one of {form} {sorted(allowed)}")
    if path is _MISSING:
        raise _fail(i, name, None, "member 'path' is missing")
    return name, path


def _parse_rfc6902(patch: Sequence[Any]) -> list[Op]:
    out = []
    for i, raw in enumerate(patch):
        name, path = _op_and_path(i, raw, RFC6902_OPS, "RFC 6902's")
        tokens = parse_pointer(path, index=i, op=name)
        value = None
        if name in ("add", "replace", "test"):
            if "value" not in raw:
                raise _fail(i, name, path, f"'{name}' needs a 'value' (null is allowed)")
            value = raw["value"]
        from_path = from_tokens = None
        if name in ("move", "copy"):
            if "from" not in raw:
                raise _fail(i, name, path, f"'{name}' needs a 'from' pointer")
            from_path = raw["from"]
            from_tokens = parse_pointer(from_path, index=i, op=name, field="from")
        out.append(Op(i, name, path, tokens, value, from_path, from_tokens))
    return out


# --------------------------------------------------------------------------- application

def clone(value: Any) -> Any:
    """Deep copy of a JSON value (dicts and lists rebuilt, scalars shared): faster than deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality for ``test``: numbers by value (1 == 1.0), but booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return False


def _array_index(op: Op, tok: str, length: int, *, allow_end: bool, pointer: str) -> int:
    """An array index token: canonical decimal; ``-`` (= length) only when ``allow_end``."""
    if tok == "-":
        if allow_end:
            return length
        raise _fail(op.index, op.op, pointer,
                    "'-' (past the end of an array) is valid only where a value is added")
    if not tok or not tok.isdigit() or not tok.isascii() or (len(tok) > 1 and tok[0] == "0"):
        raise _fail(op.index, op.op, pointer,
                    f"array index {tok!r} is not a canonical decimal (like 0 or 12)")
    idx = int(tok)
    limit = length if allow_end else length - 1
    if idx > limit:
        raise _fail(op.index, op.op, pointer,
                    f"array index {idx} is out of range for an array of length {length}")
    return idx


def _parent(doc: Any, op: Op, tokens: tuple[str, ...], pointer: str) -> Any:
    """The container holding the last token of ``tokens`` (which must be non-empty)."""
    node = doc
    for depth, tok in enumerate(tokens[:-1]):
        if isinstance(node, dict):
            if tok not in node:
                raise _fail(op.index, op.op, pointer,
                            f"member {tok!r} does not exist (at token {depth})")
            node = node[tok]
        elif isinstance(node, list):
            node = node[_array_index(op, tok, len(node), allow_end=False, pointer=pointer)]
        else:
            raise _fail(op.index, op.op, pointer,
                        f"cannot descend into a {_type_name(node)} at token {depth} ({tok!r})")
    if not isinstance(node, (dict, list)):
        raise _fail(op.index, op.op, pointer,
                    f"the parent of the target is a {_type_name(node)}, not an object or array")
    return node


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return type(v).__name__


def _get(doc: Any, op: Op, tokens: tuple[str, ...], pointer: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, op, tokens, pointer)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise _fail(op.index, op.op, pointer, f"member {tok!r} does not exist")
        return parent[tok]
    return parent[_array_index(op, tok, len(parent), allow_end=False, pointer=pointer)]


def _add(doc: Any, op: Op, tokens: tuple[str, ...], pointer: str, value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, op, tokens, pointer)
    tok = tokens[-1]
    if isinstance(parent, dict):
        parent[tok] = value
    else:
        parent.insert(_array_index(op, tok, len(parent), allow_end=True, pointer=pointer), value)
    return doc


def _remove(doc: Any, op: Op, tokens: tuple[str, ...], pointer: str) -> Any:
    """Remove and return the value at ``tokens`` (never the root)."""
    if not tokens:
        raise _fail(op.index, op.op, pointer, "removing the root is not allowed")
    parent = _parent(doc, op, tokens, pointer)
    tok = tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise _fail(op.index, op.op, pointer, f"member {tok!r} does not exist")
        return parent.pop(tok)
    return parent.pop(_array_index(op, tok, len(parent), allow_end=False, pointer=pointer))


def _replace(doc: Any, op: Op, value: Any) -> Any:
    if not op.tokens:
        return value
    parent = _parent(doc, op, op.tokens, op.path)
    tok = op.tokens[-1]
    if isinstance(parent, dict):
        if tok not in parent:
            raise _fail(op.index, op.op, op.path, f"member {tok!r} does not exist")
        parent[tok] = value
    else:
        parent[_array_index(op, tok, len(parent), allow_end=False, pointer=op.path)] = value
    return doc


def apply_ops_in_place(doc: Any, ops: Sequence[Op]) -> Any:
    """Apply parsed ops to ``doc``, mutating it; returns the new root (which may be a new value).

    Use only on a document nobody else holds (a freshly parsed one): a failing op leaves ``doc``
    half-patched. :func:`apply_patch` is the atomic entry point.
    """
    for op in ops:
        name = op.op
        if name == "add":
            doc = _add(doc, op, op.tokens, op.path, clone(op.value))
        elif name == "replace":
            doc = _replace(doc, op, clone(op.value))
        elif name == "remove":
            _remove(doc, op, op.tokens, op.path)
        elif name == "test":
            actual = _get(doc, op, op.tokens, op.path)
            if not json_equal(actual, op.value):
                raise _fail(op.index, op.op, op.path, "test failed: the value differs")
        elif name == "copy":
            value = clone(_get(doc, op, op.from_tokens, op.from_path))
            doc = _add(doc, op, op.tokens, op.path, value)
        elif name == "move":
            src, dst = op.from_tokens, op.tokens
            if len(src) < len(dst) and dst[:len(src)] == src:
                raise _fail(op.index, op.op, op.path,
                            f"cannot move {op.from_path!r} into its own child {op.path!r}")
            if src == dst:
                _get(doc, op, src, op.from_path)  # must exist; otherwise a no-op
                continue
            value = _remove(doc, op, src, op.from_path)
            doc = _add(doc, op, dst, op.path, value)
        else:  # parse_patch admits nothing else
            raise _fail(op.index, name, op.path, "unknown operation")
    return doc


class StalePatchError(Exception):
    """:func:`apply_stored` met a patch that does not apply; rerun the checked path for the
    error message (internal: never escapes the package)."""


_TOKEN_CACHE: dict[str, tuple[str, ...]] = {}
_TOKEN_CACHE_MAX = 4096


def _tokens(pointer: str) -> tuple[str, ...]:
    """The unescaped tokens of a stored pointer; memoized, since a document's paths recur from
    patch to patch (the cache is cleared when full, so it stays small)."""
    toks = _TOKEN_CACHE.get(pointer)
    if toks is None:
        parts = pointer.split("/")
        del parts[0]  # "" -> [] (the root); "/a/b" -> ["a", "b"]
        if "~" in pointer:
            parts = [t.replace("~1", "/").replace("~0", "~") for t in parts]
        toks = tuple(parts)
        if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
            _TOKEN_CACHE.clear()
        _TOKEN_CACHE[pointer] = toks
    return toks


def _at(doc: Any, toks: tuple[str, ...]) -> Any:
    """The value at ``toks`` (every token walked)."""
    for t in toks:
        doc = doc[int(t)] if type(doc) is list else doc[t]
    return doc


def _put(doc: Any, toks: tuple[str, ...], value: Any) -> Any:
    """``add`` without checks; returns the new root."""
    if not toks:
        return value
    parent = _at(doc, toks[:-1]) if len(toks) > 1 else doc
    last = toks[-1]
    kind = type(parent)
    if kind is dict:
        parent[last] = value
    elif kind is list:
        if last == "-":
            parent.append(value)
        else:
            idx = int(last)
            if idx > len(parent):
                raise IndexError(idx)
            parent.insert(idx, value)
    else:
        raise TypeError(kind.__name__)
    return doc


def _take(doc: Any, toks: tuple[str, ...]) -> Any:
    if not toks:
        raise KeyError("")
    parent = _at(doc, toks[:-1]) if len(toks) > 1 else doc
    kind = type(parent)
    if kind is dict:
        return parent.pop(toks[-1])
    if kind is list:
        return parent.pop(int(toks[-1]))
    raise TypeError(kind.__name__)


def apply_stored_all(doc: Any, patches: Iterable[Any]) -> Any:
    """Apply patches that were checked and applied when they were stored, in order, to the
    document version the first one was made against, mutating ``doc``; returns the new root.

    The time-travel fast path: it skips the shape checks and the :class:`Op` objects that
    :func:`apply_ops_in_place` builds, walks all the patches in one loop (no call per patch) with
    ``replace``, the commonest op, inlined, and raises :class:`StalePatchError` on anything
    unexpected so the caller can rerun the checked path for a precise error. For every valid patch
    the result equals :func:`apply_ops_in_place`'s (a differential test checks it).
    """
    tokens, cached = _tokens, _TOKEN_CACHE.get
    try:
        for patch in patches:
            for op in (patch["ops"] if type(patch) is dict else patch):
                name = op["op"]
                path = op["path"]
                toks = cached(path) or tokens(path)
                if name == "replace":
                    value = op["value"]
                    kind = type(value)
                    if kind is dict or kind is list:
                        value = clone(value)
                    if not toks:
                        doc = value
                        continue
                    parent = doc
                    if len(toks) > 1:
                        for t in toks[:-1]:
                            parent = parent[int(t)] if type(parent) is list else parent[t]
                    last = toks[-1]
                    kind = type(parent)
                    if kind is dict and last in parent:
                        parent[last] = value
                    elif kind is list:
                        parent[int(last)] = value
                    else:
                        raise KeyError(last)
                elif name == "add":
                    value = op["value"]
                    kind = type(value)
                    doc = _put(doc, toks, clone(value) if kind is dict or kind is list else value)
                elif name == "remove":
                    _take(doc, toks)
                elif name == "move":
                    src = tokens(op["from"])
                    if src == toks:
                        _at(doc, src)  # the source must exist
                        continue
                    if not src or toks[:len(src)] == src:
                        raise KeyError(op["path"])
                    doc = _put(doc, toks, _take(doc, src))
                elif name == "copy":
                    doc = _put(doc, toks, clone(_at(doc, tokens(op["from"]))))
                elif name == "test":
                    if not json_equal(_at(doc, toks), op["value"]):
                        raise ValueError(op["path"])
                else:
                    raise KeyError(name)
    except Exception as exc:  # noqa: BLE001  (any surprise means: use the checked path)
        raise StalePatchError(repr(exc)) from exc
    return doc


def apply_stored(doc: Any, patch: Any) -> Any:
    """:func:`apply_stored_all` for one patch."""
    return apply_stored_all(doc, (patch,))


def apply_patch(doc: Any, patch: Any) -> Any:
    """Apply ``patch`` (either form) to a copy of ``doc``; all operations or none."""
    _, ops = parse_patch(patch)
    return apply_ops_in_place(clone(doc), ops)


__all__ = ["Op", "parse_patch", "parse_pointer", "apply_patch", "apply_ops_in_place",
           "apply_stored", "apply_stored_all", "StalePatchError", "clone",
           "json_equal", "AGENT_OPS", "RFC6902_OPS"]
