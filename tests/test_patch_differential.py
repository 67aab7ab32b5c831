"""Differential test: random valid RFC 6902 patches give the same result here and in `jsonpatch`."""

from __future__ import annotations

import copy

import jsonpatch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal.patch import apply_patch, apply_stored

KEYS = st.sampled_from(["a", "b", "c", "x/y", "m~n", "~1", "", "0", "10"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                    st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=5))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
CONTAINER_DOCS = st.one_of(st.dictionaries(KEYS, DOCS, max_size=4), st.lists(DOCS, max_size=4))


def _escape(tok: str) -> str:
    return tok.replace("~", "~0").replace("/", "~1")


def _pointer(tokens) -> str:
    return "".join("/" + _escape(str(t)) for t in tokens)


def _nodes(doc, tokens=()):
    """Every (tokens, value) in ``doc``, the root first."""
    yield tokens, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, tokens + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, tokens + (i,))


def _add_targets(doc):
    """Every location where a value can be added: new or existing keys, array slots, '-'.

    The root is left out: jsonpatch 1.33 fails on an ``add`` at "" when the document is an array
    (test_patch.py covers root adds).
    """
    out = []
    for tokens, node in _nodes(doc):
        if isinstance(node, dict):
            out += [tokens + (k,) for k in list(node) + ["new", "x/y~"]]
        elif isinstance(node, list):
            out += [tokens + (i,) for i in range(len(node) + 1)] + [tokens + ("-",)]
    return out


@st.composite
def doc_and_patch(draw, allowed=("add", "replace", "copy", "remove", "move")):
    doc = draw(CONTAINER_DOCS)
    current = copy.deepcopy(doc)
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        nodes = list(_nodes(current))
        non_root = [t for t, _ in nodes if t]
        kinds = [k for k in ("add", "replace", "copy") if k in allowed]
        kinds += [k for k in ("remove", "move") if k in allowed and non_root]
        kind = draw(st.sampled_from(kinds))
        if kind in ("add", "copy", "move") and not _add_targets(current):
            continue  # the root was replaced by a scalar: nothing can be added
        if kind == "add":
            op = {"op": "add", "path": _pointer(draw(st.sampled_from(_add_targets(current)))),
                  "value": draw(DOCS)}
        elif kind == "replace":
            op = {"op": "replace", "path": _pointer(draw(st.sampled_from([t for t, _ in nodes]))),
                  "value": draw(DOCS)}
        elif kind == "remove":
            op = {"op": "remove", "path": _pointer(draw(st.sampled_from(non_root)))}
        elif kind == "copy":
            if not non_root:  # jsonpatch 1.33 cannot copy from the root ""
                continue
            src = draw(st.sampled_from(non_root))
            op = {"op": "copy", "from": _pointer(src),
                  "path": _pointer(draw(st.sampled_from(_add_targets(current))))}
        else:
            src = draw(st.sampled_from(non_root))
            targets = [t for t in _add_targets(current) if t[:len(src)] != src or t == src]
            # after removing src, a target in the same array may point one past the new end
            dst = draw(st.sampled_from(targets))
            trial = copy.deepcopy(current)
            try:
                jsonpatch.apply_patch(trial, [{"op": "move", "from": _pointer(src),
                                               "path": _pointer(dst)}])
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException):
                continue
            op = {"op": "move", "from": _pointer(src), "path": _pointer(dst)}
        # jsonpatch inserts op values without copying them: give it copies, so that later ops
        # cannot mutate the values recorded in ``ops``
        current = jsonpatch.apply_patch(current, copy.deepcopy([op]))
        ops.append(op)
    return doc, ops


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc_and_patch())
def test_random_valid_patches_match_jsonpatch(case):
    doc, ops = case
    original = copy.deepcopy(doc)
    expected = jsonpatch.apply_patch(copy.deepcopy(doc), copy.deepcopy(ops))
    assert apply_patch(doc, ops) == expected
    assert doc == original  # the input document is never mutated
    # the time-travel fast path gives the same result for every valid patch
    assert apply_stored(copy.deepcopy(doc), copy.deepcopy(ops)) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc_and_patch(allowed=("add", "replace", "remove")))
def test_agent_form_matches_jsonpatch_for_its_operations(case):
    doc, ops = case
    expected = jsonpatch.apply_patch(copy.deepcopy(doc), copy.deepcopy(ops))
    assert apply_patch(doc, {"v": 1, "ops": ops}) == expected
    assert apply_stored(copy.deepcopy(doc), {"v": 1, "ops": copy.deepcopy(ops)}) == expected
