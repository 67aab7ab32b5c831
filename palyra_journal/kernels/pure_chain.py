"""Hash chain v1 (JOURNAL.md) in Python: the reference for ``csrc/chain.c``.

The envelope's members are already in RFC 8785 order, and JCS of a nested value is its own JCS, so
the canonical envelope is assembled by splicing the stored ``payload_json`` between the other
members. ``json.dumps(s, ensure_ascii=False)`` writes a string exactly as RFC 8785 does (minimal
escapes, lowercase ``\\u00xx`` for other controls, everything else raw); a lone surrogate fails at
UTF-8 encoding, as it must.
"""

from __future__ import annotations

import hashlib
from json import dumps as _dumps
from typing import Sequence

from ..errors import InvalidPayloadError

_ENVELOPE = ('{"actor":%s,"channel":%s,"device_id":%s,"event_id":%s,"kind":%s,"payload":%s,'
             '"principal":%s,"run_id":%s,"seq":%d,"session_id":%s,"timestamp_unix_ms":%d}')


def _s(value: str | None) -> str:
    return "null" if value is None else _dumps(value, ensure_ascii=False)


def envelope_text(row: Sequence) -> str:
    """The canonical envelope of one row given in ``CHAIN_FIELDS`` order."""
    seq, event_id, kind, actor, session_id, run_id, principal, device_id, channel, ts, payload = row[:11]
    return _ENVELOPE % (_s(actor), _s(channel), _s(device_id), _s(event_id), _s(kind), payload,
                        _s(principal), _s(run_id), seq, _s(session_id), ts)


def _hash(prev_hash: str, row: Sequence) -> str:
    try:
        pre = prev_hash.encode("ascii") + b"\n" + envelope_text(row).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayloadError(f"event seq {row[0]}: text is not valid Unicode ({exc.reason})") from exc
    return hashlib.sha256(pre).hexdigest()


def chain_hashes(prev_hash: str, rows: Sequence[Sequence]) -> list[str]:
    """Each row's hash, chaining from ``prev_hash``."""
    out = []
    p = prev_hash
    for row in rows:
        p = _hash(p, row)
        out.append(p)
    return out


def verify_chain(prev_hash: str, first_seq: int, rows: Sequence[Sequence]) -> tuple[int, str] | None:
    """Check rows (``VERIFY_FIELDS`` order) that should start at ``first_seq`` after ``prev_hash``.

    Returns ``(index, reason)`` of the first bad row, checking per row, in this order: ``seq_gap``
    (seq is not the previous + 1), ``unchained_row`` (NULL hash), ``prev_link_mismatch``,
    ``hash_mismatch``. ``None`` when every row is good.
    """
    p = prev_hash
    expect = first_seq
    for i, row in enumerate(rows):
        if row[0] != expect:
            return i, "seq_gap"
        stored, prev = row[11], row[12]
        if stored is None:
            return i, "unchained_row"
        if prev != p:
            return i, "prev_link_mismatch"
        try:
            if _hash(p, row) != stored:
                return i, "hash_mismatch"
        except InvalidPayloadError:
            return i, "hash_mismatch"
        p = stored
        expect += 1
    return None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
