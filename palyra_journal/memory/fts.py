"""The FTS5 query builder: user text in, a query FTS5 always accepts out.

Only runs of Unicode letters, digits and combining marks survive (so non-ASCII words still match
the ``unicode61`` index); every FTS5 operator, quote, bracket, column filter or keyword is
dropped or neutralized by quoting each term as a string, and the terms are joined with ``OR``.
An FTS5 string holding only letters and digits cannot be a syntax error, whatever the input.
"""

from __future__ import annotations

import unicodedata

from ..engines import SQLITE

#: Upper bound on the number of terms in one query, to bound the FTS work per search.
MAX_TERMS = 64
#: Longest term kept (longer runs are cut); FTS5 would not match anything longer usefully.
MAX_TERM_CHARS = 128

_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Mn", "Mc", "Me", "Co"})


def _is_word_char(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum()
    return unicodedata.category(ch) in _WORD_CATEGORIES


def query_terms(text: str) -> list[str]:
    """The distinct search terms of ``text`` (case-insensitively distinct), in order of appearance."""
    terms: list[str] = []
    seen: set[str] = set()
    run: list[str] = []

    def flush() -> None:
        if run:
            term = "".join(run)[:MAX_TERM_CHARS]
            run.clear()
            # a term of combining marks only has no letter for the tokenizer to index
            if any(not unicodedata.category(c).startswith("M") for c in term):
                key = term.casefold()
                if key not in seen:
                    seen.add(key)
                    terms.append(term)

    for ch in text:
        if _is_word_char(ch):
            run.append(ch)
        else:
            flush()
        if len(terms) >= MAX_TERMS:
            break
    flush()
    return terms[:MAX_TERMS]


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for user ``text`` (None: no searchable term); the engines build
    theirs from :func:`query_terms` (``Dialect.fts_match``)."""
    return SQLITE.fts_match(query_terms(text))
