"""paging.page_query: the one listing query (filters given, keyset order, clamped limit)."""

from __future__ import annotations

import sqlite3

from palyra_journal.paging import page_query


def test_only_given_filters_narrow_and_the_limit_is_clamped():
    sql, params = page_query("SELECT id FROM t", [("a = ?", None), ("b > ?", 3),
                                                   ("c IS NULL", True), ("d IS NULL", None)],
                             order_by="id", limit=5000)
    assert sql == "SELECT id FROM t WHERE b > ? AND c IS NULL ORDER BY id LIMIT ?"
    assert params == [3, 1000]
    sql, params = page_query("SELECT id FROM t", [("a = ?", None)], order_by="id", limit=0)
    assert (sql, params) == ("SELECT id FROM t ORDER BY id LIMIT ?", [1])


def test_pages_cover_every_row_once():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, owner TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(f"{i:03d}", "a" if i % 3 else "b")
                                                     for i in range(50)])
    seen, after = [], None
    while True:
        sql, params = page_query("SELECT id FROM t", [("id > ?", after), ("owner = ?", "a")],
                                 order_by="id", limit=7)
        page = [r[0] for r in conn.execute(sql, params)]
        if not page:
            break
        seen += page
        after = page[-1]
    assert seen == [f"{i:03d}" for i in range(50) if i % 3]
