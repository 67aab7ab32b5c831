"""SQLite errors are classified by their result code (``sqlite_errorcode``), not their wording."""

from __future__ import annotations

import sqlite3

import pytest

import palyra_journal as pj
from palyra_journal.sqlite_errors import is_unique_violation, translate_sqlite_error


def _error(cls, message: str, code: int | None):
    exc = cls(message)
    if code is not None:
        exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize("code,expected", [
    (5, pj.ConcurrencyError), (6, pj.ConcurrencyError), (13, pj.StorageFullError),
    (8, pj.ReadOnlyError), (8 | (1 << 8), pj.ReadOnlyError), (26, pj.NotADatabaseError),
    (11, pj.NotADatabaseError),
])
def test_result_codes_decide_whatever_the_message_says(code, expected):
    err = translate_sqlite_error(_error(sqlite3.OperationalError, "some wording", code), "db")
    assert type(err) is expected and "some wording" in str(err) and str(err).startswith("db: ")


def test_a_message_that_looks_like_busy_with_another_code_is_not_busy():
    exc = _error(sqlite3.OperationalError, "database is locked", 1)  # SQLITE_ERROR
    err = translate_sqlite_error(exc)
    assert type(err) is pj.StorageError and "database is locked" in str(err)


def test_other_exceptions_pass_through():
    exc = ValueError("not sqlite")
    assert translate_sqlite_error(exc) is exc


def test_without_a_code_the_message_is_read():
    exc = sqlite3.OperationalError("database is locked")
    assert not isinstance(getattr(exc, "sqlite_errorcode", None), int)
    assert isinstance(translate_sqlite_error(exc), pj.ConcurrencyError)


def test_real_errors_carry_codes_and_are_classified(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (k TEXT UNIQUE, n NOT NULL)")
    conn.execute("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(sqlite3.IntegrityError) as dup:
        conn.execute("INSERT INTO t VALUES ('a', 2)")
    with pytest.raises(sqlite3.IntegrityError) as null:
        conn.execute("INSERT INTO t VALUES ('b', NULL)")
    assert is_unique_violation(dup.value) and not is_unique_violation(null.value)
    assert isinstance(translate_sqlite_error(dup.value), pj.DuplicateIdError)
    assert type(translate_sqlite_error(null.value)) is pj.StorageError
    conn.commit()
    other = sqlite3.connect(tmp_path / "x.db", timeout=0)
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as busy:
        other.execute("BEGIN IMMEDIATE")
    assert getattr(busy.value, "sqlite_errorcode", 5) & 0xFF == 5
    assert isinstance(translate_sqlite_error(busy.value), pj.ConcurrencyError)
