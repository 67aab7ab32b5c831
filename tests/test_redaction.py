"""Redaction during canonicalization (JOURNAL.md "Redaction"), both backends, native == pure."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal.errors import InvalidPayloadError
from palyra_journal.kernels import pure_jcs
from palyra_journal.kernels.rules import KEY_FRAGMENTS, VALUE_MARKERS, RedactionRules

HYPO = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def both(kernel, value):
    """Canonicalize ``value`` as a Python value and as JSON text; both must agree."""
    a = kernel.canonicalize(value)
    b = kernel.canonicalize_text(json.dumps(value))
    assert a == b
    return a


WORKED = [
    ({"token": "x", "nested": {"password": "1"}, "safe": "ok"},
     '{"nested":{"password":"<redacted>"},"safe":"ok","token":"<redacted>"}'),
    ({"pin": 1, "pinCode": 2, "pincode": 3, "pinpoint_id": "r1", "pinpointId": "r2"},
     '{"pin":"<redacted>","pinCode":"<redacted>","pincode":"<redacted>","pinpointId":"r2",'
     '"pinpoint_id":"r1"}'),
    ({"max_tokens": 5}, '{"max_tokens":"<redacted>"}'),
    ({"note": "Authorization: Bearer abc"}, '{"note":"<redacted>"}'),
    ({"details": '{"cookie":"sid=1","a":1}'}, '{"details":"{\\"a\\":1,\\"cookie\\":\\"<redacted>\\"}"}'),
]


@pytest.mark.parametrize("value,expected", WORKED)
def test_worked_cases(kernel, value, expected):
    assert both(kernel, value) == (expected, True)


@pytest.mark.parametrize("prose", ["a basic plan", "token count: 5", "the cookie jar",
                                   "see http://example.com/a:b@c", "mailto:x@y", "ftp://host:21/",
                                   "x://:@h", "1http://u:p@h", "sk is short for sketch"])
def test_prose_survives(kernel, prose):
    assert both(kernel, {"text": prose}) == (json.dumps({"text": prose}, separators=(",", ":")), False)


@pytest.mark.parametrize("secret", ["Bearer abc", "x-api_key=1", "SET-COOKIE: a", "sk-live-123",
                                    "postgres://admin:hunter2@db", "see HTTPS://u:p@host/x",
                                    "a refresh_token here", "Password=x", "git+ssh://me:pw@h"])
def test_secret_values(kernel, secret):
    assert both(kernel, [secret]) == ('["<redacted>"]', True)


@pytest.mark.parametrize("key,sensitive", [
    ("X-Auth-Token", True), ("client_secret", True), ("Cookie", True), ("PIN", True),
    ("user-pin", True), ("pin_code", True), ("myPinCode", True), ("pinpoint", False),
    ("spinner", False), ("pinned", False), ("OAuthProof", True), ("signature_v2", True),
    ("name", False), ("pín", False), ("x\u00e9pin", True),
])
def test_sensitive_keys(kernel, key, sensitive):
    text, changed = both(kernel, {key: "v"})
    assert changed is sensitive
    assert (text == json.dumps({key: "<redacted>"}, separators=(",", ":"), ensure_ascii=False)) is sensitive


def test_any_type_under_sensitive_key(kernel):
    value = {"secret": {"a": [1, 2.5, None]}, "token": [], "password": None, "apikey": 0}
    text, changed = both(kernel, value)
    assert changed
    assert text == ('{"apikey":"<redacted>","password":"<redacted>","secret":"<redacted>",'
                    '"token":"<redacted>"}')


def test_already_redacted_is_not_a_change(kernel):
    assert both(kernel, {"token": "<redacted>"}) == ('{"token":"<redacted>"}', False)


def test_idempotent(kernel):
    value = {"a": {"token": 1}, "b": '[{"secret": 2}, "Bearer z"]', "c": "Bearer q", "d": "ok"}
    once, changed = both(kernel, value)
    assert changed
    twice = kernel.canonicalize_text(once)
    assert twice == (once, False)
    assert kernel.canonicalize(json.loads(once)) == (once, False)


def test_json_string_kept_verbatim_when_nothing_inside_changes(kernel):
    value = {"doc": '  [1, {"b": 2, "a": "x"}]  ', "broken": '{"a": 1,', "dup": '{"a":1,"a":2}'}
    assert both(kernel, value) == (json.dumps(value, separators=(",", ":"), sort_keys=True), False)


def test_json_string_not_json_falls_back_to_secret_rules(kernel):
    assert both(kernel, {"x": "[not json] token=abc"}) == ('{"x":"<redacted>"}', True)


def test_nested_json_strings(kernel):
    inner = json.dumps({"k": json.dumps({"password": "p", "z": 1})})
    text, changed = both(kernel, {"outer": inner})
    assert changed
    assert json.loads(json.loads(json.loads(text)["outer"])["k"]) == {"password": "<redacted>", "z": 1}


def test_redact_false_changes_nothing(kernel):
    value = {"token": "Bearer x", "d": '{"password": 1}'}
    assert kernel.canonicalize(value, redact=False) == (
        json.dumps(value, separators=(",", ":"), sort_keys=True), False)
    assert kernel.canonicalize_text(json.dumps(value), redact=False)[1] is False


def test_extra_rules(kernel):
    rules = RedactionRules(extra_key_fragments=("Ssn",), extra_value_markers=("INTERNAL-",))
    value = {"user_ssn": "1", "note": "internal-42", "plain": "ok"}
    expected = '{"note":"<redacted>","plain":"ok","user_ssn":"<redacted>"}'
    assert kernel.canonicalize(value, rules=rules) == (expected, True)
    assert kernel.canonicalize_text(json.dumps(value), rules=rules) == (expected, True)
    assert kernel.canonicalize(value) == ('{"note":"internal-42","plain":"ok","user_ssn":"1"}', False)


def test_extra_marker_matching_the_placeholder(kernel):
    rules = RedactionRules(extra_value_markers=("redacted",))
    assert kernel.canonicalize(["<redacted>"], rules=rules) == ('["<redacted>"]', False)
    assert kernel.canonicalize(["was redacted"], rules=rules) == ('["<redacted>"]', True)


# ---------------------------------------------------------------------------- generated

_key = (st.sampled_from(KEY_FRAGMENTS + ("pin", "PinCode", "a", "b", "max_Tokens", "pinpoint", "x-y"))
        | st.text(max_size=6))
_str = (st.text(max_size=12)
        | st.sampled_from(VALUE_MARKERS + ("sk-1", "SK-x", "a://u:p@h", "<redacted>", "plan"))
        .map(lambda m: "x " + m if len(m) % 2 else m))
_float = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not 2.0**53 <= abs(x) < 1e21)
_scalar = st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | _float | _str
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_key, inner, max_size=4),
                     max_leaves=20)
_value = st.one_of(_json, _json.map(lambda v: {"embedded": json.dumps(v)}))


@HYPO
@given(value=_value)
def test_native_equals_pure_with_redaction(value):
    from palyra_journal.kernels import native
    expected = pure_jcs.canonicalize(value)
    assert native.canonicalize(value) == expected
    assert native.canonicalize_text(json.dumps(value)) == expected
    assert pure_jcs.canonicalize_text(expected[0]) == (expected[0], False)
    assert native.canonicalize_text(expected[0]) == (expected[0], False)


def test_large_integral_double_is_refused_so_every_text_reads_back(kernel):
    """1e16 would be written as an integer literal out of range: refused on input instead."""
    with pytest.raises(InvalidPayloadError, match="beyond"):
        kernel.canonicalize({"api_key": 1e16})
    assert kernel.canonicalize({"api_key": 1e21}) == ('{"api_key":"<redacted>"}', True)
