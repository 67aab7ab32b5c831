"""The PostgreSQL engine's own rules: error translation, the missing extra, placeholders, schema
creation and advisory-locked migrations, a lost connection, and identical bytes across engines.

The tests that need a server take ``pg``: an empty database of their own on the session's
throwaway cluster (tests/conftest.py ``postgres_url``); the store lives in its default schema
``palyra``.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys

import pytest

import palyra_journal as pj
from palyra_journal.engines import is_server_url, postgresql as pg_engine
from palyra_journal.errors import (
    ConcurrencyError, DuplicateIdError, EngineUnavailableError, IntegrityError,
    InvalidPayloadError, NotAJournalError, StorageError,
)
from palyra_journal.postgres_errors import translate_postgres_error

psycopg = pytest.importorskip("psycopg")

@pytest.fixture
def pg(postgres_url) -> str:
    """The URL of an empty database of this test's own."""
    return postgres_url


def _admin(url: str, sql: str, params=None):
    """Run ``sql`` on the test's database from a connection of its own."""
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else None


# ---------------------------------------------------------------------------------------- no server
@pytest.mark.parametrize("target, expected", [
    ("postgresql://u@h/db", True), ("postgres://h/db", True), ("POSTGRESQL://h/db", True),
    ("journal.db", False), ("postgresql.db", False), (":memory:", False), (b"postgres://x", False),
])
def test_the_engine_is_selected_by_the_url_scheme(target, expected):
    assert is_server_url(target) is expected


def test_a_url_without_the_extra_raises_a_journal_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(EngineUnavailableError, match=r"palyra-journal\[postgres\]") as info:
        pj.JournalStore.open("postgresql://nobody@127.0.0.1:1/none")
    assert isinstance(info.value, pj.JournalError)


@pytest.mark.parametrize("sql, expected", [
    ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = %s AND c = %s"),
    ("INSERT INTO t VALUES (:id, :name)", "INSERT INTO t VALUES (%(id)s, %(name)s)"),
    ("SELECT x::jsonb, '?', 'a:b' FROM t WHERE y LIKE '10%' AND z = ?",
     "SELECT x::jsonb, '?', 'a:b' FROM t WHERE y LIKE '10%%' AND z = %s"),
    ('SELECT "we?ird" FROM t -- what?\nWHERE a % 2 = ?',
     'SELECT "we?ird" FROM t -- what?\nWHERE a %% 2 = %s'),
])
def test_placeholders_are_rewritten_outside_literals(sql, expected):
    assert pg_engine.pg_sql(sql) == expected


@pytest.mark.parametrize("cls, expected", [
    (psycopg.errors.UniqueViolation, DuplicateIdError),
    (psycopg.errors.SerializationFailure, ConcurrencyError),
    (psycopg.errors.DeadlockDetected, ConcurrencyError),
    (psycopg.errors.LockNotAvailable, ConcurrencyError),
    (psycopg.errors.AdminShutdown, ConcurrencyError),
    (psycopg.OperationalError, ConcurrencyError),
    (psycopg.errors.DiskFull, pj.StorageFullError),
    (psycopg.errors.ReadOnlySqlTransaction, pj.ReadOnlyError),
    (psycopg.errors.UndefinedTable, StorageError),
    (psycopg.errors.DivisionByZero, StorageError),
])
def test_psycopg_errors_become_journal_errors(cls, expected):
    err = translate_postgres_error(cls("the server's words"), "db")
    assert type(err) is expected
    assert str(err).startswith("db: ") and "the server's words" in str(err)


def test_other_exceptions_pass_through_translation():
    exc = ValueError("not a driver error")
    assert translate_postgres_error(exc) is exc


def test_a_lost_connection_says_nothing_was_written():
    err = translate_postgres_error(psycopg.OperationalError("server closed the connection"))
    assert isinstance(err, ConcurrencyError) and "nothing of it was written" in str(err)


@pytest.mark.parametrize("url, shown", [
    ("postgresql://alice:s3cret@db.example:5433/app", "postgresql://alice@db.example:5433/app"),
    ("postgresql://alice@db/app", "postgresql://alice@db/app"),
])
def test_the_password_never_appears_in_the_store_path(url, shown):
    assert pg_engine.redact_url(url) == shown


@pytest.mark.parametrize("schema", ["Palyra", "1abc", "a-b", "x" * 64, "", 'p"; DROP'])
def test_a_schema_name_must_be_a_plain_identifier(schema):
    with pytest.raises(InvalidPayloadError, match="schema must be"):
        pj.JournalStore.open("postgresql://nobody@127.0.0.1:1/none", schema=schema)


# ---------------------------------------------------------------------------------------- a server
def test_open_creates_the_schema_and_migrates_it(pg):
    with pj.JournalStore.open(pg) as store:
        assert store.engine == "postgresql"
        assert store.path.endswith("(schema palyra)")
        store.append("k", {"a": 1})
    versions = _admin(pg, "SELECT version, name FROM palyra.schema_migrations ORDER BY version")
    from palyra_journal import schema
    assert [(v, n) for v, n in versions] == [(m.version, m.name) for m in schema.MIGRATIONS]


def _open_and_append(url: str, barrier, n: int) -> None:
    barrier.wait()
    with pj.JournalStore.open(url) as store:
        store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(n)])


def test_many_processes_opening_a_fresh_schema_migrate_it_once(pg):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_and_append, args=(pg, barrier, 50))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    rows = _admin(pg, "SELECT version, count(*) FROM palyra.schema_migrations GROUP BY version")
    assert all(count == 1 for _, count in rows) and len(rows) == len(pj.schema.MIGRATIONS)
    with pj.JournalStore.open(pg) as store:
        report = store.verify()
        assert report.ok and report.checked == 200 and store.head().seq == 200


def test_a_read_only_open_of_a_missing_schema_creates_nothing(pg):
    with pytest.raises(NotAJournalError, match="no such schema"):
        pj.JournalStore.open(pg, read_only=True)
    assert _admin(pg, "SELECT 1 FROM pg_namespace WHERE nspname = 'palyra'") == []


def test_a_schema_of_another_application_is_left_untouched(pg):
    _admin(pg, "CREATE SCHEMA palyra; CREATE TABLE palyra.orders (id int)")
    with pytest.raises(NotAJournalError, match="PostgreSQL schema of another application"):
        pj.JournalStore.open(pg)
    tables = _admin(pg, "SELECT tablename FROM pg_tables WHERE schemaname = 'palyra'")
    assert tables == [("orders",)]


def test_the_journal_is_append_only_and_a_dropped_guard_refuses_writing(pg):
    with pj.JournalStore.open(pg) as store:
        store.append("k")
        for sql in ("UPDATE journal_events SET kind = 'x'", "DELETE FROM journal_events",
                    "TRUNCATE journal_events"):
            with pytest.raises(StorageError, match="journal_events is append-only"):
                with store.write() as conn:
                    conn.execute(sql)
        assert store.verify().ok
    _admin(pg, "DROP TRIGGER journal_events_no_update ON palyra.journal_events")
    with pytest.raises(IntegrityError, match="journal_events_no_update"):
        pj.JournalStore.open(pg)
    with pj.JournalStore.open(pg, read_only=True) as store:
        assert store.verify().reason == "triggers_missing"


def test_a_duplicate_event_id_names_the_event_and_writes_nothing(pg):
    with pj.JournalStore.open(pg) as store:
        first = store.append("k", event_id="e-1")
        with pytest.raises(DuplicateIdError, match=r"events\[1\]\.event_id 'e-1' already exists"):
            store.append_many([{"kind": "k", "event_id": "e-2"}, {"kind": "k", "event_id": "e-1"}])
        with pytest.raises(DuplicateIdError, match="'e-1' already exists"):
            store.append("k", event_id="e-1")
        big = [{"kind": "k", "event_id": f"b-{i}"} for i in range(pg_engine.COPY_MIN_ROWS * 2)]
        big[100]["event_id"] = "e-1"  # a batch this large is sent as one COPY
        with pytest.raises(DuplicateIdError, match=r"events\[100\]\.event_id 'e-1' already exists"):
            store.append_many(big)
        assert store.head() == (first.seq, first.hash)
        assert store.append("k").seq == 2  # the aborted transactions left the store usable


def _backend_pid(store) -> int:
    with store.read() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_lost_connection_mid_transaction_raises_concurrency_error_and_writes_nothing(pg):
    with pj.JournalStore.open(pg) as store:
        store.append("before")
        head = store.head()
        pid = _backend_pid(store)
        with pytest.raises(ConcurrencyError, match="connection to PostgreSQL was lost"):
            with store.write():
                store.append("half", {"n": 1})
                store.append_many([{"kind": "half", "payload": {"n": 2}}])
                _admin(pg, "SELECT pg_terminate_backend(%s)", (pid,))
                store.append("half", {"n": 3})
        assert store.head() == head  # nothing of the transaction is stored
        assert [e.kind for e in store.events()] == ["before"]
        after = store.append("after")  # the store reconnected
        assert after.seq == head.seq + 1 and after.prev_hash == head.hash
        assert store.verify().ok


def test_a_connection_lost_while_idle_is_replaced_before_the_next_call(pg):
    with pj.JournalStore.open(pg) as store:
        store.append("one")
        _admin(pg, "SELECT pg_terminate_backend(%s)", (_backend_pid(store),))
        assert store.append("two").seq == 2
        assert [e.kind for e in store.events()] == ["one", "two"]


def _fixed_events(n: int) -> list[dict]:
    return [{"kind": f"kind.{i % 3}", "event_id": f"ev-{i:05d}", "timestamp_unix_ms": 1_700_000_000_000 + i,
             "actor": "tester", "session_id": f"s{i % 2}" if i % 4 else None,
             "payload": {"i": i, "text": "héllo ✓ " * (i % 3), "token": "sk-live-abcdef0123456789",
                         "nested": {"x": [1, 2.5, None, True]}}}
            for i in range(n)]


def _rows(store) -> list[tuple]:
    return [(e.seq, e.event_id, e.payload_json, e.redacted, e.hash, e.prev_hash)
            for e in store.iter_events()]


def test_the_same_events_give_the_same_bytes_and_head_on_both_engines(pg, tmp_path, backend):
    clock = lambda: 1_800_000_000_000  # noqa: E731 - the created_at column too
    with pj.JournalStore.open(tmp_path / "a.db", clock=clock) as lite, \
            pj.JournalStore.open(pg, clock=clock) as server:
        for store in (lite, server):
            store.append("single", {"password": "hunter2"}, event_id="one",
                         timestamp_unix_ms=1_700_000_000_000)
            store.append_many(_fixed_events(700))  # crosses two full Merkle tiles
        assert _rows(lite) == _rows(server)
        assert any(r[3] for r in _rows(server))  # redaction ran before hashing on both
        assert lite.head() == server.head()
        assert lite.tree_head() == server.tree_head()
        assert lite.inclusion_proof(300) == server.inclusion_proof(300)


@pytest.mark.parametrize("direction", ["sqlite_to_postgresql", "postgresql_to_sqlite"])
def test_an_export_ingested_into_the_other_engine_reproduces_the_head(pg, tmp_path,
                                                                      direction):
    lite = pj.JournalStore.open(tmp_path / "a.db")
    server = pj.JournalStore.open(pg)
    with lite, server:
        source, target = (lite, server) if direction == "sqlite_to_postgresql" else (server, lite)
        source.append_many(_fixed_events(300))
        export = tmp_path / "export.jsonl"
        assert source.export_jsonl(export) == 300
        assert target.ingest_jsonl(export) == 300
        assert target.head() == source.head()
        assert target.verify().ok
        # the stored payloads, hashes and links are the same; ``redacted`` says whether this
        # ingest changed the payload (it arrives redacted already), as on one engine alone
        assert [r[:3] + r[4:] for r in _rows(target)] == [r[:3] + r[4:] for r in _rows(source)]


def test_top_k_vector_hits_are_identical_on_both_engines(pg, tmp_path, backend):
    texts = [f"note {i} about {'deploys' if i % 3 else 'billing'} and item {i * 7 % 11}"
             for i in range(120)]
    with pj.JournalStore.open(tmp_path / "a.db") as lite, \
            pj.JournalStore.open(pg) as server:
        for store in (lite, server):
            store.memory.ingest_many([{"content": t, "principal": "p", "memory_id": f"m{i}",
                                       "tags": ["even"] if i % 2 == 0 else []}
                                      for i, t in enumerate(texts)])
        for query in ("deploys item 3", "billing", "note 42"):
            for tags in ((), ("even",)):
                a = lite.memory.search(query, principal="p", top_k=10, mode="vector", tags=tags)
                b = server.memory.search(query, principal="p", top_k=10, mode="vector", tags=tags)
                assert [(h.item.memory_id, h.vector_score) for h in a] == \
                       [(h.item.memory_id, h.vector_score) for h in b]
                assert a


def test_another_hosts_memory_write_is_seen_by_the_next_search(pg):
    with pj.JournalStore.open(pg) as a, \
            pj.JournalStore.open(pg) as b:
        a.memory.ingest("the first note", principal="p", memory_id="one")
        assert [h.item.memory_id for h in b.memory.search("note", principal="p", mode="vector")] == ["one"]
        a.memory.ingest("a second note", principal="p", memory_id="two")
        a.memory.delete("one", principal="p")
        assert [h.item.memory_id for h in b.memory.search("note", principal="p", mode="vector")] == ["two"]
        assert [h.item.memory_id for h in b.memory.search("second", principal="p", mode="lexical")] == \
            ["two"]


def test_sqlite_files_are_still_plain_sqlite(tmp_path):
    with pj.JournalStore.open(tmp_path / "a.db") as store:
        assert store.engine == "sqlite"
        store.append("k")
    assert sqlite3.connect(tmp_path / "a.db").execute("SELECT count(*) FROM journal_events"
                                                      ).fetchone() == (1,)


_TOKEN_DOCS = {"b": "the foo-bar plan", "c": "mail alice@example.com today",
               "d": "pi is 3.14 exactly", "e": "snake_case_name here", "g": "don't stop",
               "h": "see https://example.org/docs/page now", "i": "Straße und Ärger",
               "j": "v2.0 release", "k": "ÉCOLE normale"}


def _lexical_hits(pg, tmp_path, query: str) -> list[list[str]]:
    """The lexical hits of ``query`` over :data:`_TOKEN_DOCS`: [SQLite's, PostgreSQL's]."""
    found = []
    with pj.JournalStore.open(tmp_path / "a.db") as lite, \
            pj.JournalStore.open(pg) as server:
        for store in (lite, server):
            store.memory.ingest_many([{"content": c, "principal": "p", "memory_id": k}
                                      for k, c in _TOKEN_DOCS.items()])
            found.append(sorted(h.item.memory_id
                                for h in store.memory.search(query, principal="p", mode="lexical")))
    return found


@pytest.mark.parametrize("query", ["foo-bar", "alice", "alice@example.com", "3.14", "14",
                                   "snake_case_name", "t", "example.org", "docs", "straße",
                                   "ärger", "v2", "0", "école", "Release"])
def test_lexical_hits_match_fts5_where_the_tokenizers_agree(pg, tmp_path, query):
    """Punctuation separates words on both engines (docs/memory.md "On PostgreSQL")."""
    lite, server = _lexical_hits(pg, tmp_path, query)
    assert lite == server and lite


@pytest.mark.parametrize("query, fts5_only", [("ecole", "k"), ("arger", "i")])
def test_diacritics_are_folded_by_fts5_only(pg, tmp_path, query, fts5_only):
    """The documented difference: unicode61 remove_diacritics folds them, 'simple' does not."""
    assert _lexical_hits(pg, tmp_path, query) == [[fts5_only], []]


def test_checkpoint_is_refused_with_a_reason_on_a_server(pg):
    with pj.JournalStore.open(pg) as store:
        with pytest.raises(pj.JournalError, match="PostgreSQL server checkpoints its own WAL"):
            store.checkpoint()


def test_a_head_lock_timeout_is_a_concurrency_error_and_the_store_stays_usable(pg):
    with pj.JournalStore.open(pg) as holder, \
            pj.JournalStore.open(pg, busy_timeout_ms=50) as waiter:
        holder.append("first")
        with holder.write():
            holder.append("held")  # the holder keeps the head row locked
            with pytest.raises(ConcurrencyError, match="held the lock"):
                waiter.append("blocked")
            with pytest.raises(ConcurrencyError):
                waiter.memory.ingest("blocked note", principal="p")
        assert waiter.append("after").seq == 3  # the failed BEGIN left no transaction behind
        assert [e.kind for e in waiter.events()] == ["first", "held", "after"]
        assert waiter.verify().ok
