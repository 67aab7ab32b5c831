"""Redaction rules v2 during canonicalization (docs/canonical-json.md), both backends, native == pure."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal.kernels import pure_jcs
from palyra_journal.kernels import rules as R
from palyra_journal.kernels.rules import RedactionRules

HYPO = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def both(kernel, value, **kw):
    """Canonicalize ``value`` as a Python value and as JSON text; both must agree."""
    a = kernel.canonicalize(value, **kw)
    b = kernel.canonicalize_text(json.dumps(value), **kw)
    assert a == b
    return a


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# The worked cases of the journal's redaction rules, each exactly as written there.
WORKED = [
    ({"token": "x", "nested": {"password": "1"}, "safe": "ok"},
     '{"nested":{"password":"<redacted>"},"safe":"ok","token":"<redacted>"}', True),
    ({"pin": 1, "pinCode": 2, "pincode": 3, "pinpoint_id": "r1", "pinpointId": "r2"},
     '{"pin":"<redacted>","pinCode":"<redacted>","pincode":"<redacted>","pinpointId":"r2",'
     '"pinpoint_id":"r1"}', True),
    ({"max_tokens": 5, "usage": {"prompt_tokens": 7}, "token_count": 3},
     '{"max_tokens":5,"token_count":3,"usage":{"prompt_tokens":7}}', False),
    ({"x-api-key": "k", "csrftoken": "c", "accessKey": "a"},
     '{"accessKey":"<redacted>","csrftoken":"<redacted>","x-api-key":"<redacted>"}', True),
    ({"note": "curl -H 'Authorization: Bearer abc123xyz' https://x.io"},
     '{"note":"curl -H \'Authorization: <redacted>\' https://x.io"}', True),
    ({"log": "login ok token=abc123 user=bob"}, '{"log":"login ok token=<redacted> user=bob"}', True),
    ({"db": "postgres://app:hunter2@db:5432/main"},
     '{"db":"postgres://app:<redacted>@db:5432/main"}', True),
    ({"details": '{"cookie":"sid=1","a":1}'},
     '{"details":"{\\"a\\":1,\\"cookie\\":\\"<redacted>\\"}"}', True),
]


@pytest.mark.parametrize("value,expected,changed", WORKED)
def test_worked_cases(kernel, value, expected, changed):
    assert both(kernel, value) == (expected, changed)


# ------------------------------------------------------------------------------ keys

@pytest.mark.parametrize("key,sensitive", [
    # word endings
    ("token", True), ("csrftoken", True), ("clientsecret", True), ("dbpassword", True),
    ("refreshToken", True), ("X-Auth-Token", True), ("client_secret", True), ("PASSPHRASE", True),
    ("aws_credentials", True), ("userCredential", True), ("privatekey", True), ("APIKey", True),
    ("OAuth2Token", True), ("db_passwd", True),
    # whole words
    ("pin", True), ("PIN", True), ("user-pin", True), ("pin_code", True), ("myPinCode", True),
    ("otp", True), ("Cookie", True), ("authorization", True), ("signature_v2", True),
    ("OAuthProof", True), ("proof", True), ("zk_proof", True),
    # pairs
    ("x-api-key", True), ("api_key", True), ("accessKey", True), ("private_key", True),
    ("secret-key", True), ("session_id", True), ("sessionId", True), ("SESSION_ID", True),
    # kept
    ("tokens", False), ("max_tokens", False), ("prompt_tokens", False), ("tokenizer", False),
    ("pinpoint_id", False), ("pinpointId", False), ("spin", False), ("pinned", False),
    ("name", False), ("pín", False), ("x\u00e9pin", True), ("key", False), ("session", False),
    ("api", False), ("idSession", False), ("cookies", False), ("signatures", False),
])
def test_sensitive_keys(kernel, key, sensitive):
    text, changed = both(kernel, {key: "v"})
    assert changed is sensitive
    assert (text == compact({key: "<redacted>"})) is sensitive


@pytest.mark.parametrize("key", ["token_count", "token_limit", "tokenUsage", "password_length",
                                 "api_key_count", "secret_size", "session_id_len", "pin_remaining",
                                 "cookie_total", "token_budget"])
def test_counting_word_keeps_numbers_only(kernel, key):
    for number in (0, 5, -3, 4096, 2.5):
        assert both(kernel, {key: number}) == (compact({key: number}), False)
    for other in ("5", None, [1], {"a": 1}, True):
        assert both(kernel, {key: other}) == (compact({key: "<redacted>"}), True)


@pytest.mark.parametrize("key", ["token_count_secret", "token_secret_count_x", "count_token"])
def test_counting_word_exempts_only_its_own_match(kernel, key):
    assert both(kernel, {key: 5}) == (compact({key: "<redacted>"}), True)


def test_usage_figures_survive(kernel):
    usage = {"usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
             "tokens": {"in": 10, "out": 20}, "max_tokens": 1024, "token_count": 3,
             "token_limit": 4096}
    assert both(kernel, usage) == (compact(usage), False)


def test_any_type_under_sensitive_key(kernel):
    value = {"secret": {"a": [1, 2.5, None]}, "token": [], "password": None, "apikey": 0}
    text, changed = both(kernel, value)
    assert changed
    assert text == ('{"apikey":"<redacted>","password":"<redacted>","secret":"<redacted>",'
                    '"token":"<redacted>"}')


# ------------------------------------------------------------------------------ text

@pytest.mark.parametrize("prose", [
    "a basic plan", "token count: 5", "the cookie jar", "bearer of bad news", "the sk-1 form",
    "see http://example.com/a:b@c", "mailto:x@y", "ftp://host:21/", "x://:@h", "1http://u:p@h",
    "sk is short for sketch", "basic 12345", "Bearer abcdefghij", "tokens: 5", "max_tokens=5",
    "AKIA is a prefix", "AKIAABCDEFGHIJKLMNOPQ", "xAKIAABCDEFGHIJKLMNOP", "a-sk-abcdefghijklmnopqrstu",
    "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "token=", "password: ''",
    "cookie:", "Set-Cookie:   \nnext", "", "<redacted>",
])
def test_prose_survives(kernel, prose):
    assert both(kernel, {"text": prose}) == (compact({"text": prose}), False)


@pytest.mark.parametrize("text,masked", [
    # header markers: the rest of the line, up to a quote
    ("Authorization: Bearer abc123xyz", "Authorization: <redacted>"),
    ("PROXY-AUTHORIZATION: Basic Zm9vOmJhcg==\r\nHost: x", "PROXY-AUTHORIZATION: <redacted>\r\nHost: x"),
    ("Cookie: sid=1; theme=dark\nnext line", "Cookie: <redacted>\nnext line"),
    ("set-cookie: a=b", "set-cookie: <redacted>"),
    ('h = "Authorization: xyz" ok', 'h = "Authorization: <redacted>" ok'),
    ("cookie:x`y", "cookie: <redacted>`y"),
    # assignments, = or :, optional spaces, quoted or a run
    ("login ok token=abc123 user=bob", "login ok token=<redacted> user=bob"),
    ("DB_PASSWORD=x", "DB_PASSWORD=<redacted>"), ("mytoken=x", "mytoken=<redacted>"),
    ("api_key = 'k 1' rest", "api_key = '<redacted>' rest"),
    ('password: "hunter 2", next', 'password: "<redacted>", next'),
    ("secret:`abc", "secret:`<redacted>"), ('passwd="abc', 'passwd="<redacted>'),
    ("?access_token=a.b-c&x=1", "?access_token=<redacted>&x=1"),
    ("refresh_token:\tq1;r", "refresh_token:\t<redacted>;r"),
    ("client_secret=s,apikey=k", "client_secret=<redacted>,apikey=<redacted>"),
    ("Password=x", "Password=<redacted>"), ("x-api_key=1", "x-api_key=<redacted>"),
    # bearer / basic followed by a credential-looking run with a digit
    ("Bearer abc12345", "Bearer <redacted>"), ("use basic dXNlcjoxMjM0NTY= now", "use basic <redacted> now"),
    ("BEARER eyJhbGciOiJIUzI1NiJ9.e30.x-y_z~+/=", "BEARER <redacted>"),
    # token prefixes and AWS key ids: the whole word
    ("key sk-abcdefghijklmnop1234 end", "key <redacted> end"),
    ("ghp_0123456789abcdefABCDEF", "<redacted>"), ("(gho_0123456789abcdef)", "(<redacted>)"),
    ("github_pat_11ABCDEFG0123456789_abcdef", "<redacted>"), ("xoxb-1234-5678-abcdefgh", "<redacted>"),
    ("xoxp-1234567890123456", "<redacted>"), ("SK-LIVE-0123456789abcdef", "<redacted>"),
    ("id AKIAIOSFODNN7EXAMPLE.", "id <redacted>."),
    # PEM private-key blocks, label optional, unterminated to the end
    ("a -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- b", "a <redacted> b"),
    ("-----BEGIN PRIVATE KEY-----xyz\n-----END PRIVATE KEY-----", "<redacted>"),
    ("x -----begin openssh private key-----\nabc", "x <redacted>"),
    ("-----BEGIN ENCRYPTED PRIVATE KEY-----a-----END PRIVATE KEY-----\n-----END PRIVATE KEY-----",
     "<redacted>\n-----END PRIVATE KEY-----"),
    # URLs with a password
    ("postgres://app:hunter2@db:5432/main", "postgres://app:<redacted>@db:5432/main"),
    ("see HTTPS://u:p@host/x", "see HTTPS://u:<redacted>@host/x"),
    ("git+ssh://me:pw:2@h", "git+ssh://me:<redacted>@h"), ("x://:secret@h", "x://:<redacted>@h"),
    # several in one string, everything else kept
    ("token=a then Bearer zz123456 and redis://:pw@r",
     "token=<redacted> then Bearer <redacted> and redis://:<redacted>@r"),
])
def test_secrets_masked_in_place(kernel, text, masked):
    assert both(kernel, [text]) == (json.dumps([masked], ensure_ascii=False, separators=(",", ":")), True)
    assert both(kernel, [masked]) == (json.dumps([masked], ensure_ascii=False, separators=(",", ":")), False)


def test_already_redacted_is_not_a_change(kernel):
    assert both(kernel, {"token": "<redacted>"}) == ('{"token":"<redacted>"}', False)
    assert both(kernel, {"x": "Authorization: <redacted>"}) == ('{"x":"Authorization: <redacted>"}', False)


def test_idempotent(kernel):
    value = {"a": {"token": 1}, "b": '[{"secret": 2}, "Bearer z1234567"]', "c": "Bearer q1234567",
             "d": "ok", "n": 1e20}
    once, changed = both(kernel, value)
    assert changed
    assert kernel.canonicalize(pure_jcs.loads_canonical(once)) == (once, False)


def test_json_string_kept_verbatim_when_nothing_inside_changes(kernel):
    value = {"doc": '  [1, {"b": 2, "a": "x"}]  ', "broken": '{"a": 1,', "dup": '{"a":1,"a":2}'}
    assert both(kernel, value) == (compact(value), False)


def test_json_string_not_json_falls_back_to_masking(kernel):
    assert both(kernel, {"x": "[not json] token=abc"}) == ('{"x":"[not json] token=<redacted>"}', True)


def test_json_string_with_a_large_integral_double_is_still_redacted(kernel):
    inner = '{"n":100000000000000000000,"token":"x"}'
    assert both(kernel, {"s": inner}) == (
        compact({"s": '{"n":100000000000000000000,"token":"<redacted>"}'}), True)


def test_nested_json_strings(kernel):
    inner = json.dumps({"k": json.dumps({"password": "p", "z": 1})})
    text, changed = both(kernel, {"outer": inner})
    assert changed
    assert json.loads(json.loads(json.loads(text)["outer"])["k"]) == {"password": "<redacted>", "z": 1}


def test_redact_false_changes_nothing(kernel):
    value = {"token": "Bearer x1234567", "d": '{"password": 1}'}
    assert kernel.canonicalize(value, redact=False) == (compact(value), False)
    assert kernel.canonicalize_text(json.dumps(value), redact=False)[1] is False


# ------------------------------------------------------------------------- extension points

def test_extra_rules(kernel):
    rules = RedactionRules(extra_key_fragments=("Ssn",), extra_value_markers=("INTERNAL-",))
    value = {"user_ssn": "1", "note": "internal-42 is here", "plain": "ok", "ssn_count": 4}
    expected = '{"note":"<redacted>","plain":"ok","ssn_count":"<redacted>","user_ssn":"<redacted>"}'
    assert both(kernel, value, rules=rules) == (expected, True)
    assert kernel.canonicalize(value) == (compact(value), False)


def test_extra_marker_matching_the_placeholder(kernel):
    rules = RedactionRules(extra_value_markers=("redacted",))
    assert kernel.canonicalize(["<redacted>"], rules=rules) == ('["<redacted>"]', False)
    assert kernel.canonicalize(["was redacted"], rules=rules) == ('["<redacted>"]', True)


def test_extra_rules_keep_the_builtin_ones(kernel):
    rules = RedactionRules(extra_key_fragments=("ssn",))
    assert both(kernel, {"token": "a", "max_tokens": 3, "s": "token=z"}, rules=rules) == (
        '{"max_tokens":3,"s":"token=<redacted>","token":"<redacted>"}', True)


def test_rules_version():
    assert R.RULES_VERSION == 2
    assert RedactionRules().version == "2"
    assert RedactionRules(extra_key_fragments=("ssn",)).version == "2+custom"


# ---------------------------------------------------------------------------- generated

_fragments = (R.KEY_WORD_ENDINGS + R.KEY_WORDS + tuple(" ".join(p) for p in R.KEY_WORD_PAIRS)
              + R.COUNTING_WORDS + ("tokens", "spin", "pinpoint", "Id", "Key", "API"))
_key = st.lists(st.sampled_from(_fragments) | st.text(max_size=4), min_size=1, max_size=4).flatmap(
    lambda words: st.sampled_from(["_", "-", "", " ", "."]).map(lambda sep: sep.join(words)))
_pieces = (R.HEADER_MARKERS + R.ASSIGNMENT_MARKERS + R.SCHEME_MARKERS + R.TOKEN_PREFIXES
           + ("AKIA", "-----BEGIN ", "-----END ", "PRIVATE KEY-----", "RSA ", "://", "u:p@", ":", "=",
              " ", "\n", "'", '"', "`", "&", ";", ",", "@", "/", "abc123XYZ", "0123456789abcdef",
              "ABCDEFGHIJ012345", "<redacted>", "é", "http", "x"))
_text = (st.lists(st.sampled_from(_pieces) | st.text(max_size=3), max_size=10).map("".join)
         .map(lambda s: s.upper() if len(s) % 3 == 0 else s))
_scalar = (st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | _text)
_json = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(_key, inner, max_size=4), max_leaves=16)
_value = st.one_of(_json, _json.map(lambda v: {"embedded": json.dumps(v)}))


@HYPO
@given(value=_value)
def test_native_equals_pure_with_redaction(value):
    from palyra_journal.kernels import native
    expected = pure_jcs.canonicalize(value)
    assert native.canonicalize(value) == expected
    assert native.canonicalize_text(json.dumps(value)) == expected
    assert pure_jcs.canonicalize_text(json.dumps(value)) == expected
    again = pure_jcs.loads_canonical(expected[0])
    assert pure_jcs.canonicalize(again) == (expected[0], False)
    assert native.canonicalize(again) == (expected[0], False)


@HYPO
@given(text=_text)
def test_masking_native_equals_pure(text):
    from palyra_journal.kernels import native
    expected = pure_jcs.canonicalize([text])
    assert native.canonicalize([text]) == expected
    assert native.canonicalize_text(json.dumps([text])) == expected


@HYPO
@given(value=_value)
def test_flag_set_exactly_when_something_changed(kernel, value):
    redacted, changed = kernel.canonicalize(value)
    plain, _ = kernel.canonicalize(value, redact=False)
    assert changed is (redacted != plain)
