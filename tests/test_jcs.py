"""Canonical JSON (RFC 8785): spec vectors, ES6 numbers, strict parsing, refusals, both backends."""

from __future__ import annotations

import datetime
import decimal
import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal.errors import InvalidPayloadError
from palyra_journal.kernels import pure_jcs

rfc8785 = pytest.importorskip("rfc8785")

MAX = 2**53 - 1
HYPO = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _native():
    from palyra_journal.kernels import native
    return native


# ------------------------------------------------------------------------- spec vectors

def _vector_names(test_vectors):
    return sorted(p.name for p in (test_vectors / "jcs" / "input").iterdir())


def test_spec_vectors_text_and_value(kernel, test_vectors):
    names = _vector_names(test_vectors)
    assert names
    for name in names:
        raw = (test_vectors / "jcs" / "input" / name).read_bytes()
        expected = (test_vectors / "jcs" / "output" / name).read_bytes().decode("utf-8")
        assert kernel.canonicalize_text(raw, redact=False) == (expected, False), name
        assert kernel.canonicalize_text(raw.decode("utf-8"), redact=False)[0] == expected, name
        assert kernel.canonicalize(json.loads(raw), redact=False) == (expected, False), name


def _vector_doubles(test_vectors):
    for line in (test_vectors / "jcs" / "es6-numbers-20k.txt").read_text().split():
        hexbits, expected = line.split(",")
        yield hexbits, struct.unpack(">d", bytes.fromhex(hexbits.zfill(16)))[0], expected


def test_es6_numbers(kernel, test_vectors):
    """Every double of the 20 000 vectors is accepted and written as ECMAScript writes it."""
    vectors = list(_vector_doubles(test_vectors))
    assert len(vectors) == 20000
    wrong = [(h, want, got) for h, x, want in vectors if (got := kernel.canonicalize(x)[0]) != want]
    assert wrong == []
    assert kernel.canonicalize([x for _, x, _ in vectors]) == (
        "[" + ",".join(want for _, _, want in vectors) + "]", False)


def test_es6_numbers_formatter(test_vectors):
    """The formatters themselves (the C one is csrc/dtoa.c) write every double of the vectors."""
    from palyra_journal.kernels import native_jcs
    wrong = []
    for hexbits, x, expected in _vector_doubles(test_vectors):
        got = (pure_jcs.format_number(x), native_jcs.format_number(x))
        if got != (expected, expected):
            wrong.append((hexbits, expected, got))
    assert wrong == []


@pytest.mark.parametrize("x,text", [
    (1e21, "1e+21"), (-1e21, "-1e+21"), (0.000001, "0.000001"), (1e-7, "1e-7"),
    (9.999999999999997e-7, "9.999999999999997e-7"), (-0.0, "0"), (5.0, "5"), (-2.5, "-2.5"),
    (2.0**53 - 1, "9007199254740991"), (-(2.0**53 - 1), "-9007199254740991"), (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"), (1e15, "1000000000000000"),
    (1e20, "100000000000000000000"), (1.5e16, "15000000000000000"), (2.0**53, "9007199254740992"),
    (-(2.0**60), "-1152921504606847000"), (9.999999999999999e20, "999999999999999900000"),
    (2.0**56 + 16, "72057594037927950"), (1e16, "10000000000000000"),
])
def test_number_layout(kernel, x, text):
    assert kernel.canonicalize(x) == (text, False)
    assert kernel.canonicalize_text(repr(x).encode()) == (text, False)


@pytest.mark.parametrize("x", [1e20, 1.5e16, 2.0**53, -(2.0**53), 2.0**53 + 2, 1e16, -1.5e17,
                               9.999999999999999e20])
def test_every_finite_double_is_accepted(kernel, x):
    """The cases a user hit in phase 1: ordinary doubles, written exactly (RFC 8785)."""
    assert kernel.canonicalize({"n": x}) == ('{"n":' + pure_jcs.format_number(x) + "}", False)
    assert kernel.canonicalize_text(f'{{"n": {x!r}}}') == ('{"n":' + pure_jcs.format_number(x) + "}", False)
    assert kernel.canonicalize({"token": x}) == ('{"token":"<redacted>"}', True)


def test_json_text_exponents_are_doubles(kernel):
    assert kernel.canonicalize_text(b'{"n": 1e20, "m": 1.5E16, "k": 9007199254740993.0}') == (
        '{"k":9007199254740992,"m":15000000000000000,"n":100000000000000000000}', False)


@pytest.mark.parametrize("text,literal,at", [
    (b"[9007199254740992]", "9007199254740992", 1),
    (b'{"n": 100000000000000000000}', "100000000000000000000", 6),
    (b"-9007199254740992", "-9007199254740992", 0),
    (b'{"token": 12345678901234567890}', "12345678901234567890", 10),
])
def test_integer_literals_beyond_the_range_are_refused(kernel, text, literal, at):
    """An integer literal (no fraction, no exponent) beyond ±(2**53-1) is refused, with its offset."""
    with pytest.raises(InvalidPayloadError) as exc:
        kernel.canonicalize_text(text)
    assert str(exc.value) == f"payload: integer {literal} at byte {at} is outside ±(2**53-1)"


@pytest.mark.parametrize("n", [2**53, -(2**53), 10**20, 2**64])
def test_python_ints_beyond_the_range_are_refused(kernel, n):
    with pytest.raises(InvalidPayloadError) as exc:
        kernel.canonicalize({"x": [n]})
    assert str(exc.value) == f"payload.x[0]: integer {n} is outside ±(2**53-1)"


def test_canonical_text_reads_back_without_revalidation(kernel):
    """Stored text of a large integral double reads back as that double (loads_canonical)."""
    value = {"n": 1e20, "m": [-1.5e16, 2.0**53], "i": 7}
    text, _ = kernel.canonicalize(value)
    back = pure_jcs.loads_canonical(text)
    assert back == value and type(back["n"]) is float and type(back["i"]) is int
    assert kernel.canonicalize(back) == (text, False)


@HYPO
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_over_the_whole_range_both_backends(x):
    """Any finite double: both backends write the same shortest text, and it reads back as x."""
    native = _native()
    text = pure_jcs.format_number(x)
    assert float(text) == x
    assert native.canonicalize(x) == (text, False) == pure_jcs.canonicalize(x)
    assert native.canonicalize_text(repr(x)) == (text, False)


@HYPO
@given(bits=st.integers(0, 2**64 - 1))
def test_double_bit_patterns_both_backends(bits):
    x = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
    if not math.isfinite(x):
        return
    from palyra_journal.kernels import native_jcs
    assert native_jcs.format_number(x) == pure_jcs.format_number(x)
    assert float(pure_jcs.format_number(x)) == x


def test_integers_and_literals(kernel):
    assert kernel.canonicalize([MAX, -MAX, 0, True, False, None]) == (
        f"[{MAX},{-MAX},0,true,false,null]", False)
    assert kernel.canonicalize_text(b" [ -0 , 1E2, 1.50, 0.0 ] ")[0] == "[0,100,1.5,0]"


def test_key_order_is_utf16(kernel):
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3, "": 4, "\u00e9": 5, "aa": 6, "\x7f": 7}
    expected = rfc8785.dumps(value).decode()
    assert kernel.canonicalize(value, redact=False)[0] == expected
    assert kernel.canonicalize_text(json.dumps(value), redact=False)[0] == expected
    assert expected.index("\ufb01") > expected.index("\U0001f600")


def test_string_escapes(kernel):
    s = "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f\u2028é😀"
    expected = '"q\\"b\\\\s/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f\u2028é😀"'
    assert kernel.canonicalize(s)[0] == expected
    assert kernel.canonicalize_text(json.dumps(s))[0] == expected
    assert kernel.canonicalize_text(b'"\\u00e9\\ud83d\\ude00\\/"')[0] == '"é😀/"'


def test_subclasses_accepted(kernel):
    class S(str):
        pass

    class Int(int):
        pass

    class F(float):
        pass

    class D(dict):
        pass

    class L(list):
        pass

    value = D({S("k"): L([Int(3), F(1.5), (1, 2), S("x")])})
    assert kernel.canonicalize(value) == ('{"k":[3,1.5,[1,2],"x"]}', False)


def test_tuple_is_array_and_none_is_null(kernel):
    assert kernel.canonicalize((1, "a", None))[0] == '[1,"a",null]'


# ----------------------------------------------------------------------- refusals (values)

@pytest.mark.parametrize("value,message", [
    ({"items": [0, 1, 2, {"when": datetime.datetime(2024, 1, 1)}]},
     "payload.items[3].when: datetime is not JSON"),
    ({"a": 2**53}, "payload.a: integer 9007199254740992 is outside ±(2**53-1)"),
    ({"a": -(2**53)}, "payload.a: integer -9007199254740992 is outside ±(2**53-1)"),
    ({"a": 10**400}, "payload.a: integer of 1329 bits is outside ±(2**53-1)"),
    ({"b": [b"x"]}, "payload.b[0]: bytes is not JSON"),
    ({"s": {1, 2}}, "payload.s: set is not JSON"),
    ({"d": decimal.Decimal("1.5")}, "payload.d: Decimal is not JSON"),
    ({1: "x"}, "payload: key 1 is int, not str"),
    ({"o": {(1, 2): 3}}, "payload.o: key (1, 2) is tuple, not str"),
    ({"a b": [math.nan]}, 'payload["a b"][0]: float nan is not finite'),
    ({"x": [math.inf]}, "payload.x[0]: float inf is not finite"),
    ({"x": -math.inf}, "payload.x: float -inf is not finite"),
    ({"s": "ok\ud800"}, "payload.s: string has a lone surrogate U+D800 at index 2"),
    ({"k": {"\udc00": 1}}, "payload.k: key '\\udc00' has a lone surrogate"),
    (b"raw", "payload: bytes is not JSON"),
    (object(), "payload: object is not JSON"),
])
def test_value_refusals_name_the_path(kernel, value, message):
    with pytest.raises(InvalidPayloadError) as exc:
        kernel.canonicalize(value)
    assert str(exc.value) == message


def test_validation_covers_redacted_values(kernel):
    with pytest.raises(InvalidPayloadError, match=r"payload\.token\.x: date is not JSON"):
        kernel.canonicalize({"token": {"x": datetime.date(2024, 1, 1)}})
    with pytest.raises(InvalidPayloadError, match="duplicate key"):
        kernel.canonicalize_text(b'{"password": {"a": 1, "a": 2}}')


def test_depth_limit_values(kernel):
    ok = []
    for _ in range(127):
        ok = [ok]
    assert kernel.canonicalize(ok)[0] == "[" * 128 + "]" * 128
    with pytest.raises(InvalidPayloadError, match=r"nesting deeper than 128"):
        kernel.canonicalize([ok])
    loop: list = []
    loop.append(loop)
    with pytest.raises(InvalidPayloadError, match=r"nesting deeper than 128"):
        kernel.canonicalize({"a": loop})


def test_root_names_the_place(kernel):
    with pytest.raises(InvalidPayloadError, match=r"^args\.x: set is not JSON$"):
        kernel.canonicalize({"x": set()}, root="args")
    with pytest.raises(InvalidPayloadError, match=r"^args: invalid JSON at byte 1"):
        kernel.canonicalize_text(b"[,]", root="args")


# ------------------------------------------------------------------------- refusals (text)

@pytest.mark.parametrize("text,message", [
    (b'{"a": 1, "a": 2}', 'payload: duplicate key "a" at byte 9'),
    (b'{"a":1,"\\u0061":2}', 'payload: duplicate key "a" at byte 7'),
    (b"[1,2", "payload: invalid JSON at byte 4: unexpected end of input"),
    (b"", "payload: invalid JSON at byte 0: unexpected end of input"),
    (b"\xef\xbb\xbf[]", "payload: invalid JSON at byte 0: byte order mark (UTF-8 without BOM only)"),
    (b"[NaN]", "payload: invalid JSON at byte 1: NaN and Infinity are not JSON"),
    (b"Infinity", "payload: invalid JSON at byte 0: NaN and Infinity are not JSON"),
    (b"[-Infinity]", "payload: invalid JSON at byte 1: -Infinity is not JSON"),
    (b'["\\ud800"]', "payload: lone surrogate \\ud800 at byte 2"),
    (b'"\\udc00\\ud800"', "payload: lone surrogate \\udc00 at byte 1"),
    (b'"\\ud800\\u0041"', "payload: lone surrogate \\ud800 at byte 1"),
    (b"[9007199254740992]", "payload: integer 9007199254740992 at byte 1 is outside ±(2**53-1)"),
    (b"-123456789012345678901", "payload: integer -123456789012345678901 at byte 0 is outside ±(2**53-1)"),
    (b"[1e999]", "payload: number 1e999 at byte 1 is not a finite double"),
    (b"[1] x", "payload: invalid JSON at byte 4: unexpected data after the value"),
    (b'{"a":tru}', "payload: invalid JSON at byte 5: invalid literal tru}"),
    (b'"a\xff"', "payload: invalid UTF-8 at byte 2"),
    (b'"\xed\xa0\x80"', "payload: invalid UTF-8 at byte 1"),
    (b'["\x01"]', "payload: invalid JSON at byte 2: raw control character U+0001 in a string"),
    (b"[01]", "payload: invalid JSON at byte 2: unexpected character '1'"),
    (b'"\\x"', "payload: invalid JSON at byte 1: invalid escape \\x"),
    (b'"\\u12g4"', "payload: invalid JSON at byte 1: invalid escape \\u12g4"),
    (b"[1.]", "payload: invalid JSON at byte 1: invalid number 1."),
    (b"-", "payload: invalid JSON at byte 0: invalid number -"),
    (b"[1,]", "payload: invalid JSON at byte 3: unexpected character ']'"),
    (b'{"a" 1}', "payload: invalid JSON at byte 5: unexpected character '1'"),
    (b"{'a':1}", "payload: invalid JSON at byte 1: unexpected character \"'\""),
    (b'"abc', "payload: invalid JSON at byte 4: unexpected end of input"),
    ("[\"\ud800\"]", "payload: lone surrogate U+D800 at byte 2"),
])
def test_text_refusals_name_the_offset(kernel, text, message):
    with pytest.raises(InvalidPayloadError) as exc:
        kernel.canonicalize_text(text)
    assert str(exc.value) == message


def test_depth_limit_text(kernel):
    assert kernel.canonicalize_text(b"[" * 128 + b"]" * 128)[0] == "[" * 128 + "]" * 128
    with pytest.raises(InvalidPayloadError, match="nesting deeper than 128 at byte 128"):
        kernel.canonicalize_text(b"[" * 129 + b"]" * 129)
    with pytest.raises(InvalidPayloadError, match="nesting deeper than 128 at byte 528"):
        kernel.canonicalize_text(b'{"a":' * 100 + b"[" * 29)


def test_any_top_level_value(kernel):
    for text, out in [(b"1", "1"), (b' "x" ', '"x"'), (b"null", "null"), (b"\t[]\n", "[]")]:
        assert kernel.canonicalize_text(text)[0] == out


# ---------------------------------------------------------------------------- generated

_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = (st.none() | st.booleans() | st.integers(-MAX, MAX)
            | _floats | st.text())
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=25,
)


@HYPO
@given(value=_json)
def test_matches_rfc8785_oracle(kernel, value):
    expected = rfc8785.dumps(value).decode("utf-8")
    assert kernel.canonicalize(value, redact=False) == (expected, False)
    assert kernel.canonicalize_text(json.dumps(value), redact=False) == (expected, False)


@HYPO
@given(x=_floats | st.integers(53, 70).map(lambda e: float(2**e)) | st.sampled_from([1e21, 2.0**53 - 1]))
def test_every_float_reads_back(kernel, x):
    """Whatever canonicalize writes for a double reads back as that double and the same text."""
    text = kernel.canonicalize([x])[0]
    back = pure_jcs.loads_canonical(text)
    assert back == [x] and float(json.loads(text)[0]) == x
    assert kernel.canonicalize(back) == (text, False)


@HYPO
@given(value=_json, indent=st.sampled_from([None, 0, 2, "\t"]), ascii_=st.booleans(),
       seps=st.sampled_from([None, (",", ":"), (" , ", " : ")]))
def test_text_native_equals_pure(value, indent, ascii_, seps):
    native = _native()
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_, separators=seps)
    for t in (text, text.encode("utf-8")):
        assert native.canonicalize_text(t) == pure_jcs.canonicalize_text(t)


@HYPO
@given(data=st.binary(max_size=40) | st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_garbage_text_same_outcome(data):
    native = _native()

    def outcome(fn):
        try:
            return fn(data)
        except InvalidPayloadError as exc:
            return str(exc)

    assert outcome(native.canonicalize_text) == outcome(pure_jcs.canonicalize_text)


# ------------------------------------------------------------------------------ batches

_payload_items = st.one_of(
    _json.filter(lambda v: v is not None and not isinstance(v, str)),
    st.none(),
    _json.map(json.dumps),
    _json.map(lambda v: json.dumps(v).encode("utf-8")),
    st.sampled_from([{"token": "x"}, '{"password": "p", "a": [1, 2]}', b'{"k": "Bearer abc"}']),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_payload_items, max_size=8), payloads=st.booleans())
def test_canonicalize_many_native_equals_pure(values, payloads):
    native = _native()
    if not payloads:  # plain values: bytes are not JSON, None is null
        values = [v for v in values if type(v) is not bytes]
    expected = pure_jcs.canonicalize_many(values, payloads=payloads)
    assert native.canonicalize_many(values, payloads=payloads) == expected
    one = pure_jcs.canonicalize_payload if payloads else pure_jcs.canonicalize
    assert expected == ([one(v)[0] for v in values], [one(v)[1] for v in values])
    texts, flags, packed = native.canonicalize_many(values, payloads=payloads, pack=True)
    assert (texts, flags) == expected  # the chain's payload column, written beside the texts
    assert packed == b"".join(t.encode("utf-8") + b"\0" for t in texts)
    assert pure_jcs.canonicalize_many(values, payloads=payloads, pack=True) == (*expected, None)


def test_a_failed_or_unpacked_batch_leaves_no_packed_column_behind():
    """The packed column is the last packing call's: a failed batch raises, and a call without
    ``pack`` after it returns two items; the next packing call starts empty."""
    native = _native()
    with pytest.raises(InvalidPayloadError):
        native.canonicalize_many([{"a": 1}, {"b": float("nan")}], pack=True)
    assert native.canonicalize_many([{"a": 1}]) == (['{"a":1}'], [False])
    assert native.canonicalize({"z": "é"}) == ('{"z":"é"}', False)
    assert native.canonicalize_many([{"b": "é"}, []], pack=True) == (
        ['{"b":"é"}', "[]"], [False, False], '{"b":"é"}\0[]\0'.encode())


def _batch_outcome(fn, values, **kw):
    try:
        return fn(values, **kw)
    except InvalidPayloadError as exc:
        return type(exc).__name__, str(exc), exc.index, getattr(exc, "size", None)


@pytest.mark.parametrize("values,message,index", [
    ([{}, {"x": {1}}], "events[1].payload.x: set is not JSON", 1),
    ([None, "[1,", {}], "events[1].payload: invalid JSON at byte 3: unexpected end of input", 1),
    (["{}", b"\xff"], "events[1].payload: invalid UTF-8 at byte 0", 1),
    (['"\ud800"'], "events[0].payload: lone surrogate U+D800 at byte 1", 0),
    ([{"a": 2**60}], "events[0].payload.a: integer 1152921504606846976 is outside ±(2**53-1)", 0),
    ([[1], {"s": "é" * 40}], "events[1].payload: canonical payload is 88 bytes; max_payload_bytes is 50", 1),
])
def test_canonicalize_many_errors_name_the_item(kernel, values, message, index):
    out = _batch_outcome(kernel.canonicalize_many, values, payloads=True, max_bytes=50,
                         root=lambda i: f"events[{i}].payload")
    assert out[1:3] == (message, index)
    if "max_payload_bytes" in message:
        assert out[0] == "PayloadTooLargeError" and out[3] == 88
    assert out == _batch_outcome(pure_jcs.canonicalize_many, values, payloads=True, max_bytes=50,
                                 root=lambda i: f"events[{i}].payload")


def test_canonicalize_many_payload_forms(kernel):
    values = [None, "[2, 1]", b'{"b":1,"a":2}', bytearray(b"[]"), memoryview(b"true"),
              {"token": "t"}, ("x",)]
    assert kernel.canonicalize_many(values, payloads=True) == (
        ["{}", "[2,1]", '{"a":2,"b":1}', "[]", "true", '{"token":"<redacted>"}', '["x"]'],
        [False, False, False, False, False, True, False])
    assert kernel.canonicalize_many(["[1]", None], redact=False) == (['"[1]"', "null"], [False, False])
    assert kernel.canonicalize_many([]) == ([], [])


class _Dict(dict):
    """A dict subclass whose own iteration lies: the walk must use the stored order."""

    def items(self):
        return reversed(list(super().items()))


@pytest.mark.parametrize("value", [
    {"a": [1, {"b": (2, datetime.date(2020, 1, 1))}]},
    {"a": {"x": 1, 7: "int key"}},
    {"a": [{"ok": 1}, {"k\ud800": 1}]},
    _Dict(first=1, second=[None, {"deep": {"deeper": [0, 1, 2, "\udfff"]}}]),
    {"z": 1, "odd key": [[[2**60]]]},
    [0] * 5 + [{"n": float("inf")}],
])
def test_native_errors_locate_the_value_from_the_root(value):
    """The C walk hands back a locator (indexes, dict positions), never an object address; the
    native message names the same path and value as the reference's."""
    with pytest.raises(InvalidPayloadError) as ref:
        pure_jcs.canonicalize(value, root="events[3].payload")
    with pytest.raises(InvalidPayloadError) as nat:
        _native().canonicalize(value, root="events[3].payload")
    assert str(nat.value) == str(ref.value)
