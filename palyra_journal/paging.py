"""Listing queries, written once: optional filters, a keyset page, a clamped limit.

Every ``list``-style call of the domains (cron jobs and runs, approvals) is the same query: the
domain's SELECT, narrowed by the filters the caller gave (each already checked by fields.py),
ordered by the record's id so that ``after_id`` = the last id of a page gives the next one
without gaps or repeats, and cut to a limit clamped to [1, 1000].
"""

from __future__ import annotations

from typing import Any, Iterable

from .fields import MAX_LIST, clamp_limit


def page_query(select: str, conditions: Iterable[tuple[str, Any]], *, order_by: str,
               limit: Any) -> tuple[str, list[Any]]:
    """``(sql, params)`` of ``select`` narrowed by each condition whose value is not None.

    A condition is SQL with at most one ``?``, bound to its value (``("channel = ?", channel)``);
    one without ``?`` (``("decision IS NULL", True)``) only needs a value that is not None.
    """
    where: list[str] = []
    params: list[Any] = []
    for condition, value in conditions:
        if value is None:
            continue
        where.append(condition)
        if "?" in condition:
            params.append(value)
    sql = select + (f" WHERE {' AND '.join(where)}" if where else "")
    params.append(clamp_limit(limit, MAX_LIST))
    return f"{sql} ORDER BY {order_by} LIMIT ?", params
