"""fields.py: the one place of every field rule. Oracles: a regex for the bad characters, and the
per-value check for the batch (column) check."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from palyra_journal import InvalidPayloadError, InvalidScheduleError
from palyra_journal.fields import (
    MAX_ID_CHARS, MAX_SAFE_INT, bad_char_at, check_bool, check_choice, check_int, check_number,
    check_text, check_texts, clamp_limit, redact_text,
)
from palyra_journal.kernels import DEFAULT_RULES

_ORACLE = re.compile("[\x00\ud800-\udfff]")
# text that is mostly fine, with the occasional NUL or lone surrogate
_chars = st.characters(blacklist_categories=()) | st.sampled_from(["\x00", "\ud800", "\udfff", "é"])
_texts = st.text(_chars, max_size=40)


@given(_texts)
def test_bad_char_at_finds_the_first_nul_or_lone_surrogate(text):
    m = _ORACLE.search(text)
    assert bad_char_at(text) == (-1 if m is None else m.start())


@given(_texts)
def test_check_text_accepts_exactly_the_acceptable_text(text):
    ok = bool(text) and _ORACLE.search(text) is None
    if ok:
        assert check_text("f", text) == text
    else:
        with pytest.raises(InvalidPayloadError, match="^f "):
            check_text("f", text)


@given(st.lists(st.none() | _texts | st.integers(), max_size=8))
def test_the_column_check_refuses_what_the_value_check_refuses_first(values):
    first_error = None
    for i, v in enumerate(values):
        try:
            check_text(f"events[{i}].kind", v, nullable=True)
        except InvalidPayloadError as exc:
            first_error = str(exc)
            break
    if first_error is None:
        check_texts("kind", values, lambda i: f"events[{i}]", nullable=True)
    else:
        with pytest.raises(InvalidPayloadError) as info:
            check_texts("kind", values, lambda i: f"events[{i}]", nullable=True)
        assert str(info.value) == first_error


def test_text_rules_and_their_messages():
    assert check_text("f", None, nullable=True) is None
    assert check_text("f", "", empty_ok=True) == ""
    assert check_text("f", "x" * MAX_ID_CHARS) == "x" * MAX_ID_CHARS
    for value, message in [
        (None, "f is required"), (3, "f must be a string, got int 3"),
        ("", "f must be a non-empty string"),
        ("x" * (MAX_ID_CHARS + 1), f"f is {MAX_ID_CHARS + 1} characters long; the limit is 1024"),
        ("ab\x00", "f holds a NUL character at index 2"),
        ("a\ud800", "f holds a lone surrogate at index 1"),
    ]:
        with pytest.raises(InvalidPayloadError, match=re.escape(message)):
            check_text("f", value)


def test_int_rules():
    assert check_int("n", MAX_SAFE_INT) == MAX_SAFE_INT
    assert check_int("n", np.int64(5)) == 5 and type(check_int("n", np.int64(5))) is int
    assert check_int("n", None, nullable=True) is None
    for bad in (True, 1.0, "1", None, MAX_SAFE_INT + 1, -1):
        with pytest.raises(InvalidPayloadError, match="n must be an integer in"):
            check_int("n", bad)
    with pytest.raises(InvalidScheduleError, match=r"jitter_ms must be an integer in \[0, 10\]"):
        check_int("jitter_ms", 11, hi=10, error=InvalidScheduleError)


def test_number_rules():
    assert check_number("c", 1, lo=0.0, hi=1.0) == 1.0 and check_number("c", np.float32(0.5)) == 0.5
    assert check_number("c", None, nullable=True) is None
    for bad in (True, "0.5", float("nan"), float("inf"), -0.1, 1.5, None):
        with pytest.raises(InvalidPayloadError, match=r"c must be a finite number in \[0, 1\]"):
            check_number("c", bad, lo=0.0, hi=1.0)
    with pytest.raises(InvalidPayloadError, match=r"ttl_days must be a finite number in \(0, inf\]"):
        check_number("ttl_days", 0, lo=0.0, lo_open=True)


def test_choices_flags_and_limits():
    assert check_choice("scope", "once", ("once", "session")) == "once"
    with pytest.raises(InvalidPayloadError, match="scope must be one of once, session; got 'x'"):
        check_choice("scope", "x", ("once", "session"))
    with pytest.raises(InvalidPayloadError, match="scope must be one of"):
        check_choice("scope", ["once"], ("once",))
    assert check_bool("b", False) is False and check_bool("b", None, nullable=True) is None
    with pytest.raises(InvalidPayloadError, match="b must be True or False"):
        check_bool("b", 1)
    assert [clamp_limit(v) for v in (-5, 0, 1, 10**9)] == [1, 1, 1, 1000]
    assert clamp_limit(50, 20) == 20
    with pytest.raises(InvalidPayloadError, match="limit must be an integer"):
        clamp_limit(2.5)


def test_free_text_redaction_is_one_function(backend):
    prose = "run `make release` (env has oauth_refresh_token=abc123)"
    assert "abc123" not in redact_text(prose, DEFAULT_RULES)
    assert redact_text("nothing secret here", DEFAULT_RULES) == "nothing secret here"
    plain = '{"b": 1, "a": "ok"}'
    assert redact_text(plain, DEFAULT_RULES) == plain  # unchanged JSON text is kept as given
    assert redact_text(plain, DEFAULT_RULES, json_as_canonical=True) == '{"a":"ok","b":1}'
    leaked = '{"password": "hunter2", "user": "ada"}'
    for canonical in (False, True):
        out = redact_text(leaked, DEFAULT_RULES, json_as_canonical=canonical)
        assert "hunter2" not in out and "ada" in out
