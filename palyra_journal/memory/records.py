"""The frozen records memory calls return: MemoryItem, MemoryHit, MaintenanceReport."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence


@dataclass(frozen=True)
class MemoryItem:
    memory_id: str
    principal: str
    channel: str | None
    session_id: str | None
    source: str
    content: str
    content_hash: str
    tags: tuple[str, ...]
    confidence: float | None
    ttl_unix_ms: int | None
    created_at_unix_ms: int
    updated_at_unix_ms: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d


_ITEM_FIELDS = tuple(f.name for f in fields(MemoryItem))
#: Columns of ``memory_items`` read into a MemoryItem: its fields, ``tags`` stored as JSON.
ITEM_COLUMNS = ", ".join("tags_json" if name == "tags" else name for name in _ITEM_FIELDS)


_TAGS = _ITEM_FIELDS.index("tags")


def item_from_row(row: Sequence[Any]) -> MemoryItem:
    """A MemoryItem from a row selected with :data:`ITEM_COLUMNS` (its columns are the fields in
    order; search builds one per hit, so no dict of names and no JSON parse of an empty list)."""
    tags = row[_TAGS]
    return MemoryItem(*row[:_TAGS], () if tags == "[]" else tuple(json.loads(tags)),  # type: ignore[call-arg]
                      *row[_TAGS + 1:])


@dataclass(frozen=True)
class MemoryHit:
    """One search result. ``score = wL·lexical_score + wV·vector_score + wR·recency_score``.

    ``lexical_score`` is ``−bm25`` over the best lexical candidate's (0..1), ``vector_score`` the
    cosine over the best vector candidate's (0..1), ``recency_score`` ``1 / (1 + age_days)``.
    """

    item: MemoryItem
    score: float
    lexical_score: float
    vector_score: float
    recency_score: float
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {"item": self.item.to_dict(), "score": self.score,
                "lexical_score": self.lexical_score, "vector_score": self.vector_score,
                "recency_score": self.recency_score, "snippet": self.snippet}


@dataclass(frozen=True)
class MaintenanceReport:
    """What one ``maintain()`` run did; the same figures are kept in ``memory_maintenance_state``.

    ``bytes_after`` counts the UTF-8 content plus the vector blobs of the remaining items, the
    measure ``max_bytes`` caps.
    """

    ran_at_unix_ms: int
    deleted_expired: int
    deleted_ttl: int
    deleted_for_entries: int
    deleted_for_bytes: int
    entries_after: int
    bytes_after: int
    vacuumed: bool
    duration_ms: int

    @property
    def deleted(self) -> int:
        return (self.deleted_expired + self.deleted_ttl + self.deleted_for_entries
                + self.deleted_for_bytes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["deleted"] = self.deleted
        return d
