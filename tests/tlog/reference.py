"""An independent RFC 9162 tree and C2SP tlog-tiles reader, written from the RFC and the C2SP text
for the tests only: recursive, with hashlib and the rfc8785 package, sharing no code with
palyra_journal's tree (the oracle of tests/tlog)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import rfc8785


def leaf_data(event) -> bytes:
    """JCS of the chain v1 envelope of an EventRecord, by the rfc8785 package."""
    return rfc8785.dumps({
        "actor": event.actor, "channel": event.channel, "device_id": event.device_id,
        "event_id": event.event_id, "kind": event.kind, "payload": event.payload,
        "principal": event.principal, "run_id": event.run_id, "seq": event.seq,
        "session_id": event.session_id, "timestamp_unix_ms": event.timestamp_unix_ms})


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, over leaf hashes."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _k(n)
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    n = len(leaves)
    if n <= 1:
        return []
    k = _k(n)
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def proof(m: int, leaves: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1."""
    def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = _k(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]
    if m == 0 or m == len(leaves):
        return []
    return subproof(m, leaves, True)


# ---------------------------------------------------------------------------- C2SP tiles reader
def tile_name(n: int) -> str:
    """c2sp.org/tlog-tiles: 3-digit groups, all but the last prefixed with x."""
    s = str(n)
    s = "0" * (-len(s) % 3) + s
    groups = [s[i:i + 3] for i in range(0, len(s), 3)]
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def read_tile(root: Path, level, n: int, width: int) -> bytes:
    name = tile_name(n) + ("" if width == 256 else f".p/{width}")
    return (root / "tile" / str(level) / name).read_bytes()


def read_tiles_tree(root: Path, size: int) -> tuple[list[bytes], bytes]:
    """Read every level-0 tile and entry bundle of a tree of ``size``, check every entry against
    its bundle and every higher tile against the tiles below; returns (leaf hashes, root)."""
    leaves: list[bytes] = []
    for n in range((size + 255) // 256):
        width = min(256, size - n * 256)
        hashes = read_tile(root, 0, n, width)
        bundle = read_tile(root, "entries", n, width)
        entries, pos = [], 0
        while pos < len(bundle):
            ln = int.from_bytes(bundle[pos:pos + 2], "big")
            entries.append(bundle[pos + 2:pos + 2 + ln])
            pos += 2 + ln
        assert len(entries) == width and len(hashes) == 32 * width
        for j, e in enumerate(entries):
            assert leaf(e) == hashes[32 * j:32 * j + 32], f"entry {n * 256 + j}"
        leaves += [hashes[32 * j:32 * j + 32] for j in range(width)]
    below = leaves
    level = 1
    while size >> (8 * level):
        count = size >> (8 * level)
        got = b"".join(read_tile(root, level, n, min(256, count - n * 256))
                       for n in range((count + 255) // 256))
        assert len(got) == 32 * count
        for i in range(count):
            assert got[32 * i:32 * i + 32] == mth(below[256 * i:256 * i + 256]), \
                f"tile level {level} entry {i}"
        below = [got[32 * i:32 * i + 32] for i in range(count)]
        level += 1
    return leaves, mth(leaves)
