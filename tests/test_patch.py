"""The canvas patch language: both forms, pointer and index rules, errors, atomicity."""

from __future__ import annotations

import pytest

from palyra_journal.errors import InvalidPatchError
from palyra_journal.patch import (
    StalePatchError, apply_patch, apply_stored, json_equal, parse_patch, parse_pointer,
)


DOC = {"title": "plan", "items": [{"id": "a"}, {"id": "b"}], "a/b": 1, "m~n": 2, "": 3}


def test_agent_form_applies_add_replace_remove():
    patch = {"v": 1, "ops": [
        {"op": "add", "path": "/items/-", "value": {"id": "c"}},
        {"op": "replace", "path": "/title", "value": None},
        {"op": "remove", "path": "/items/0"},
    ]}
    out = apply_patch(DOC, patch)
    assert out["items"] == [{"id": "b"}, {"id": "c"}]
    assert out["title"] is None


def test_rfc6902_form_applies_every_operation():
    patch = [
        {"op": "test", "path": "/title", "value": "plan"},
        {"op": "copy", "from": "/items/0", "path": "/items/-"},
        {"op": "move", "from": "/items/0", "path": "/first"},
        {"op": "replace", "path": "/items/1/id", "value": "a2"},
        {"op": "remove", "path": "/a~1b"},
        {"op": "add", "path": "/m~0n", "value": [1, 2]},
    ]
    out = apply_patch(DOC, patch)
    assert out == {"title": "plan", "items": [{"id": "b"}, {"id": "a2"}], "first": {"id": "a"},
                   "m~n": [1, 2], "": 3}


def test_pointer_escapes_and_root():
    assert parse_pointer("") == ()
    assert parse_pointer("/") == ("",)
    assert parse_pointer("/a~1b/m~0n/~01") == ("a/b", "m~n", "~1")
    assert apply_patch(DOC, [{"op": "replace", "path": "/", "value": 4}])[""] == 4
    assert apply_patch(DOC, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert apply_patch(DOC, [{"op": "add", "path": "", "value": {"x": 1}}]) == {"x": 1}


@pytest.mark.parametrize("pointer", ["/a~2", "/a~", "/~x", "a/b", "/items/~"])
def test_bad_pointers_are_refused_with_op_index_and_path(pointer):
    with pytest.raises(InvalidPatchError) as info:
        apply_patch(DOC, [{"op": "add", "path": "/ok", "value": 1},
                          {"op": "add", "path": pointer, "value": 1}])
    assert "op 1" in str(info.value) and repr(pointer) in str(info.value)


@pytest.mark.parametrize("index", ["01", "+1", "-1", " 1", "1.0", "1e0", "٣", "x"])
def test_array_indexes_must_be_canonical_decimals(index):
    path = f"/items/{index}"
    with pytest.raises(InvalidPatchError) as info:
        apply_patch(DOC, {"v": 1, "ops": [{"op": "replace", "path": path, "value": 0}]})
    assert "op 0" in str(info.value) and repr(path) in str(info.value)


def test_index_bounds_for_add_and_for_the_others():
    assert apply_patch(DOC, [{"op": "add", "path": "/items/2", "value": 9}])["items"][2] == 9
    for op in ({"op": "add", "path": "/items/3", "value": 9},
               {"op": "replace", "path": "/items/2", "value": 9},
               {"op": "remove", "path": "/items/2"}):
        with pytest.raises(InvalidPatchError, match="out of range"):
            apply_patch(DOC, [op])


@pytest.mark.parametrize("op", [
    {"op": "remove", "path": "/items/-"},
    {"op": "replace", "path": "/items/-", "value": 1},
    {"op": "test", "path": "/items/-", "value": 1},
    {"op": "copy", "from": "/items/-", "path": "/x"},
    {"op": "move", "from": "/items/-", "path": "/x"},
])
def test_dash_is_valid_only_where_a_value_is_added(op):
    with pytest.raises(InvalidPatchError, match="'-'"):
        apply_patch(DOC, [op])


def test_dash_appends_for_add_and_for_move_copy_targets():
    assert apply_patch(DOC, [{"op": "add", "path": "/items/-", "value": 1}])["items"][-1] == 1
    out = apply_patch(DOC, [{"op": "copy", "from": "/title", "path": "/items/-"}])
    assert out["items"][-1] == "plan"


def test_removing_the_root_is_an_error():
    with pytest.raises(InvalidPatchError, match="root") as info:
        apply_patch(DOC, {"v": 1, "ops": [{"op": "remove", "path": ""}]})
    assert "op 0" in str(info.value)


def test_move_into_own_child_is_an_error():
    with pytest.raises(InvalidPatchError, match="own child"):
        apply_patch(DOC, [{"op": "move", "from": "/items", "path": "/items/0/x"}])


def test_move_to_itself_is_a_noop_but_the_source_must_exist():
    assert apply_patch(DOC, [{"op": "move", "from": "/title", "path": "/title"}]) == DOC
    with pytest.raises(InvalidPatchError, match="does not exist"):
        apply_patch(DOC, [{"op": "move", "from": "/nope", "path": "/nope"}])


def test_missing_targets_and_scalar_parents():
    for op, msg in (({"op": "remove", "path": "/nope"}, "does not exist"),
                    ({"op": "replace", "path": "/nope", "value": 1}, "does not exist"),
                    ({"op": "add", "path": "/nope/x", "value": 1}, "does not exist"),
                    ({"op": "add", "path": "/title/x", "value": 1}, "string")):
        with pytest.raises(InvalidPatchError, match=msg):
            apply_patch(DOC, [op])


def test_failed_test_op_names_index_and_path():
    with pytest.raises(InvalidPatchError) as info:
        apply_patch(DOC, [{"op": "add", "path": "/x", "value": 1},
                          {"op": "test", "path": "/title", "value": "other"}])
    assert "op 1 (test)" in str(info.value) and "'/title'" in str(info.value)


def test_application_is_atomic():
    doc = {"a": [1, 2], "b": {"c": 1}}
    before = {"a": [1, 2], "b": {"c": 1}}
    with pytest.raises(InvalidPatchError):
        apply_patch(doc, [{"op": "add", "path": "/a/-", "value": 3},
                          {"op": "replace", "path": "/b/c", "value": 2},
                          {"op": "remove", "path": "/missing"}])
    assert doc == before


def test_values_are_not_aliased_into_the_document():
    value = {"x": [1]}
    out = apply_patch({}, [{"op": "add", "path": "/a", "value": value},
                           {"op": "add", "path": "/b", "value": value},
                           {"op": "add", "path": "/a/x/-", "value": 2}])
    assert out == {"a": {"x": [1, 2]}, "b": {"x": [1]}}
    assert value == {"x": [1]}


@pytest.mark.parametrize("patch,msg", [
    ({"v": 2, "ops": [{"op": "add", "path": "/a", "value": 1}]}, "patch.v"),
    ({"v": True, "ops": [{"op": "add", "path": "/a", "value": 1}]}, "patch.v"),
    ({"v": 1.0, "ops": [{"op": "add", "path": "/a", "value": 1}]}, "patch.v"),
    ({"ops": [{"op": "add", "path": "/a", "value": 1}]}, "patch.v"),
    ({"v": 1}, "patch.ops"),
    ({"v": 1, "ops": []}, "patch.ops"),
    ({"v": 1, "ops": {}}, "patch.ops"),
    ({"v": 1, "ops": [], "extra": 1}, "extra"),
    ({"v": 1, "ops": [{"op": "move", "from": "/a", "path": "/b"}]}, "op 0"),
    ({"v": 1, "ops": [{"op": "remove", "path": "/a", "value": 1}]}, "must not carry"),
    ({"v": 1, "ops": [{"op": "add", "path": "/a"}]}, "needs a 'value'"),
    ({"v": 1, "ops": [{"op": "replace", "path": "/a"}]}, "needs a 'value'"),
    ({"v": 1, "ops": [{"op": "add", "value": 1}]}, "'path' is missing"),
    ({"v": 1, "ops": [{"op": "add", "path": 5, "value": 1}]}, "string JSON Pointer"),
    ({"v": 1, "ops": ["add"]}, "must be an object"),
    ([{"op": "add", "path": "/a"}], "needs a 'value'"),
    ([{"op": "copy", "path": "/a"}], "needs a 'from'"),
    ([{"op": "frobnicate", "path": "/a"}], "frobnicate"),
    ([{"path": "/a"}], "'op' is missing"),
    ("[]", "patch must be"),
    (None, "patch must be"),
])
def test_malformed_patches_are_refused(patch, msg):
    with pytest.raises(InvalidPatchError, match=msg):
        parse_patch(patch)


def test_agent_form_accepts_null_values():
    assert apply_patch({"a": 1}, {"v": 1, "ops": [{"op": "replace", "path": "/a", "value": None},
                                                  {"op": "add", "path": "/b", "value": None}]}) \
        == {"a": None, "b": None}


def test_rfc6902_accepts_an_empty_patch_and_ignores_unknown_members():
    assert apply_patch({"a": 1}, []) == {"a": 1}
    assert apply_patch({"a": 1}, [{"op": "remove", "path": "/a", "note": "x"}]) == {}


def test_json_equal_distinguishes_booleans_from_numbers():
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal({"a": 0}, {"a": False})
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal([1], [1, 2])
    with pytest.raises(InvalidPatchError):
        apply_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])


@pytest.mark.parametrize("patch", [
    [{"op": "remove", "path": "/missing"}],
    [{"op": "remove", "path": ""}],
    [{"op": "replace", "path": "/items/7", "value": 1}],
    [{"op": "add", "path": "/title/x", "value": 1}],
    [{"op": "move", "from": "/items", "path": "/items/0/x"}],
    [{"op": "test", "path": "/title", "value": "other"}],
    [{"op": "frobnicate", "path": "/title"}],
    {"v": 1},
])
def test_the_stored_fast_path_refuses_what_does_not_apply(patch):
    with pytest.raises(StalePatchError):
        apply_stored(json_copy(DOC), patch)


def json_copy(value):
    import json
    return json.loads(json.dumps(value))
