"""The vector index snapshot beside the database (``<db>-vectors``): instant open.

Reading a million vectors through SQLite takes seconds; mapping a file takes microseconds. The
snapshot holds everything a ``VectorIndex`` needs (float32 rows, the int8 tier, scope columns, ids,
tags), each section aligned to a page, behind a JSON header. It is a rebuildable cache, like
SQLite's ``-wal`` and ``-shm``: mode 0600, written to a temporary file and renamed into place, so a
reader sees the old file or the new one, never a mix; a process that has it mapped keeps reading
its pages if it is deleted or replaced.

Validation (``open_snapshot``) checks the magic, the header's SHA-256, the format, the index key,
the file size, every section's bounds and length, and the SHA-256 of the id list; the caller then
compares the recorded ``generation`` and ``rewrites`` counters with the database's. Anything that
fails makes the index load from SQLite and write a new snapshot: a bad snapshot costs time, never
an answer. Float32 rows and int8 codes stay in the map (only the pages a search reads become
resident); the small per-row columns are copied, because writes change them in place.

Layout: ``MAGIC`` (8 bytes), header length (uint32 LE), SHA-256 of the header (32 bytes), the
header (UTF-8 JSON), then the sections at the offsets the header lists.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import weakref
from typing import Iterable, Iterator, NamedTuple

import numpy as np

MAGIC = b"PJVSNAP1"
FORMAT = 1
SUFFIX = "-vectors"
ALIGN = 4096
_PREFIX = struct.Struct("<8sI32s")

#: Sections: name -> (dtype, columns per row: None for 1-D, "dims" for the row width).
SECTIONS: dict[str, tuple[str, str | None]] = {
    "matrix": ("<f4", "dims"), "codes": ("i1", "dims"), "scale": ("<f4", None),
    "norm": ("<f4", None), "err": ("<f4", None), "principal": ("<i4", None),
    "channel": ("<i4", None), "session": ("<i4", None), "source": ("i1", None),
    "expiry": ("<i8", None), "created": ("<i8", None), "id_ends": ("<i8", None),
    "tag_ends": ("<i8", None),
}
_BLOBS = ("id_blob", "tag_blob")


class TextColumn:
    """A list of str kept as UTF-8 bytes with end offsets (in the map): a row is decoded when it is
    read, so a million ids cost nothing until one is used. Appends and replacements live here."""

    def __init__(self, ends: np.ndarray, blob):
        self._ends = ends
        self._blob = blob
        self._base = int(ends.shape[0])
        self._extra: list[str] = []
        self._changed: dict[int, str] = {}
        self._text: str | None = None  # the whole blob, decoded once when it is ASCII
        self._ascii: bool | None = None

    def _row(self, i: int) -> str:
        if self._ascii is None:  # ids are usually ASCII (ULIDs): then byte offsets are str offsets
            raw = bytes(self._blob)
            self._ascii = raw.isascii()
            self._text = raw.decode("ascii") if self._ascii else None
        ends = self._ends
        start = int(ends[i - 1]) if i else 0
        if self._text is not None:
            return self._text[start:int(ends[i])]
        return str(self._blob[start:int(ends[i])], "utf-8")

    def __len__(self) -> int:
        return self._base + len(self._extra)

    def __getitem__(self, i: int) -> str:
        if i < 0:
            i += len(self)
        if i >= self._base:
            return self._extra[i - self._base]
        if i < 0:
            raise IndexError(i)
        changed = self._changed.get(i)
        if changed is not None:
            return changed
        return self._row(i)

    def __setitem__(self, i: int, value: str) -> None:
        if i >= self._base:
            self._extra[i - self._base] = value
        else:
            self._changed[i] = value

    def append(self, value: str) -> None:
        self._extra.append(value)

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


def encode_texts(texts: Iterable[str]) -> tuple[np.ndarray, bytes]:
    parts = [t.encode("utf-8") for t in texts]
    ends = np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), dtype=np.int64)
    return ends, b"".join(parts)


def id_digest(ends: np.ndarray, blob) -> str:
    h = hashlib.sha256(np.ascontiguousarray(ends, dtype="<i8").tobytes())
    h.update(blob)
    return h.hexdigest()


def path_for(db_path: str) -> str:
    return db_path + SUFFIX


class RowReader:
    """Float32 rows of the snapshot read with ``pread`` instead of through the map.

    Why: the page cache keeps a file in large folios, and a fault maps a whole folio (up to 2 MB)
    into the process, so rescoring a few hundred rows through the map made a gigabyte of float32
    resident. Reading those rows with ``pread`` maps nothing. Consecutive rows are read at once;
    the descriptor stays valid if the file is deleted or replaced, like the map."""

    def __init__(self, fd: int, offset: int, n: int, dims: int):
        self._fd, self._offset, self.shape = fd, offset, (n, dims)
        self._close = weakref.finalize(self, os.close, fd)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        n, dims = self.shape
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.shape[0], dims), dtype="<f4")
        if rows.shape[0] and (rows.min() < 0 or rows.max() >= n):
            raise IndexError("row out of range")
        width = dims * 4
        starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)  # runs of consecutive rows
        ends = np.append(starts[1:], rows.shape[0])
        for a, b in zip(starts.tolist(), ends.tolist()):
            want = (b - a) * width
            got = os.preadv(self._fd, [memoryview(out[a:b]).cast("B")],
                            self._offset + int(rows[a]) * width)
            if got != want:
                raise OSError(f"short read of the vector snapshot ({got} of {want} bytes)")
        return out


class Snapshot(NamedTuple):
    """A validated snapshot: its header, its arrays (in the map), its text columns, and a reader
    of its float32 rows that does not map them."""

    header: dict
    arrays: dict[str, np.ndarray]
    ids: TextColumn
    tags: TextColumn
    rows: RowReader


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN


def write_snapshot(path: str, header: dict, arrays: dict[str, np.ndarray], ids: Iterable[str],
                   tags: Iterable[str]) -> None:
    """Write a snapshot atomically (temporary file, fsync-free rename: it is a cache)."""
    id_ends, id_blob = encode_texts(ids)
    tag_ends, tag_blob = encode_texts(tags)
    data = dict(arrays, id_ends=id_ends, tag_ends=tag_ends)
    payloads: list[tuple[str, bytes | np.ndarray]] = [
        (name, np.ascontiguousarray(data[name], dtype=SECTIONS[name][0])) for name in SECTIONS]
    payloads += [("id_blob", id_blob), ("tag_blob", tag_blob)]
    head = dict(header, format=FORMAT, ids_sha256=id_digest(id_ends, id_blob), sections={})
    # offsets depend on the header's length, which depends on the offsets: reserve a page or more
    reserve = _align(_PREFIX.size + len(json.dumps(head)) + 64 * len(payloads) + 512)
    offset = reserve
    for name, body in payloads:
        size = body.nbytes if isinstance(body, np.ndarray) else len(body)
        head["sections"][name] = [offset, size]
        offset = _align(offset + size)
    head["file_size"] = offset
    text = json.dumps(head, separators=(",", ":")).encode("utf-8")
    if _PREFIX.size + len(text) > reserve:
        raise AssertionError("snapshot header outgrew its reserved space")
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_PREFIX.pack(MAGIC, len(text), hashlib.sha256(text).digest()))
            f.write(text)
            for name, body in payloads:
                f.seek(head["sections"][name][0])
                f.write(body.data if isinstance(body, np.ndarray) else body)
            f.truncate(offset)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class InvalidSnapshot(Exception):
    """Why a snapshot cannot be used (the index then loads from SQLite and rewrites it)."""


def open_snapshot(path: str, key: tuple[str, int, int]) -> Snapshot:
    """Map and validate the snapshot at ``path`` for index ``key`` (model, dims, version).

    Raises :class:`InvalidSnapshot` naming the first check that failed (``missing`` when there is
    no file); the generation and rewrite counters are the caller's to compare."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise InvalidSnapshot("missing") from None
    except OSError as exc:
        raise InvalidSnapshot(f"unreadable ({exc.strerror})") from None
    try:
        size = os.fstat(fd).st_size
        if size < _PREFIX.size:
            raise InvalidSnapshot(f"truncated: {size} bytes")
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except BaseException:
        os.close(fd)
        raise
    try:
        return _validate(mm, fd, size, key)
    except BaseException:
        os.close(fd)
        raise


def _validate(mm: mmap.mmap, fd: int, size: int, key: tuple[str, int, int]) -> Snapshot:
    magic, hlen, digest = _PREFIX.unpack_from(mm, 0)
    if magic != MAGIC:
        raise InvalidSnapshot("bad magic")
    if _PREFIX.size + hlen > size:
        raise InvalidSnapshot("truncated header")
    text = mm[_PREFIX.size:_PREFIX.size + hlen]
    if hashlib.sha256(text).digest() != digest:
        raise InvalidSnapshot("header checksum mismatch")
    head = json.loads(text)
    if head.get("format") != FORMAT:
        raise InvalidSnapshot(f"format {head.get('format')!r}, expected {FORMAT}")
    if (head["model"], head["dims"], head["version"]) != tuple(key):
        raise InvalidSnapshot("another embedding model")
    if head["file_size"] != size:
        raise InvalidSnapshot(f"size {size} bytes, header says {head['file_size']}")
    n, dims = head["n"], head["dims"]
    arrays: dict[str, np.ndarray] = {}
    for name, (dtype, cols) in SECTIONS.items():
        off, nbytes = head["sections"][name]
        shape = (n, dims) if cols == "dims" else (n,)
        want = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if nbytes != want or off + nbytes > size or off % ALIGN:
            raise InvalidSnapshot(f"section {name} is {nbytes} bytes at {off}, expected {want}")
        arrays[name] = np.frombuffer(mm, dtype=dtype, count=int(np.prod(shape)),
                                     offset=off).reshape(shape)
    blobs = {}
    for name in _BLOBS:
        off, nbytes = head["sections"][name]
        if off + nbytes > size:
            raise InvalidSnapshot(f"section {name} runs past the end of the file")
        blobs[name] = memoryview(mm)[off:off + nbytes]
    for ends, blob in (("id_ends", "id_blob"), ("tag_ends", "tag_blob")):
        e = arrays[ends]
        if n and (int(e[-1]) != len(blobs[blob]) or (np.diff(e) < 0).any() or int(e[0]) < 0):
            raise InvalidSnapshot(f"section {ends} does not match {blob}")
    if id_digest(arrays["id_ends"], blobs["id_blob"]) != head["ids_sha256"]:
        raise InvalidSnapshot("id list checksum mismatch")
    return Snapshot(head, arrays, TextColumn(arrays["id_ends"], blobs["id_blob"]),
                    TextColumn(arrays["tag_ends"], blobs["tag_blob"]),
                    RowReader(fd, head["sections"]["matrix"][0], n, dims))
