"""Export the tree as a static C2SP tlog-tiles directory, readable by any tlog client or witness.

Layout (``c2sp.org/tlog-tiles``): ``tile/<L>/<N>`` holds the 256 tree level 8L hashes of a full
tile, ``tile/<L>/<N>.p/<W>`` the W hashes of the partial tile at the right edge;
``tile/entries/<N>[.p/<W>]`` holds the leaf data (the events' chain v1 envelopes) of the same
leaves, each entry prefixed by its length as a big-endian uint16; ``checkpoint`` is the signed
checkpoint of the exported size (or its unsigned note text when no signer key is given). ``N`` is
written in 3-digit groups, every group but the last prefixed with ``x``: 1234067 → ``x001/x234/067``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InvalidPathError, InvalidPayloadError
from ..kernels.pure_merkle import leaf_data
from . import log, notes, tiles

MAX_ENTRY_BYTES = 0xFFFF


def tile_path(n: int, width: int = tiles.TILE_WIDTH) -> str:
    """The path elements of tile index ``n`` (with ``.p/<width>`` for a partial tile)."""
    digits = f"{n:03d}"
    groups: list[str] = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits.rjust(3, "0"))
    path = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    return path if width == tiles.TILE_WIDTH else f"{path}.p/{width}"


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _bundle(rows: list[tuple]) -> bytes:
    out = bytearray()
    for i, row in enumerate(rows):
        data = leaf_data(i, row)
        if len(data) > MAX_ENTRY_BYTES:
            raise InvalidPayloadError(
                f"event seq {row[0]} has {len(data)} bytes of leaf data; a C2SP entry bundle holds "
                f"at most {MAX_ENTRY_BYTES}")
        out += len(data).to_bytes(2, "big") + data
    return bytes(out)


def export_tiles(store: Any, directory: Any, *, size: int | None = None,
                 signer_key: str | None = None, origin: str | None = None,
                 progress: bool = False) -> log.TreeHead:
    """Write the tree of ``size`` events (None: all) under ``directory`` in the C2SP layout;
    returns the exported head. ``signer_key`` and ``origin`` sign the ``checkpoint`` file."""
    if (signer_key is None) != (origin is None):
        raise InvalidPayloadError("export_tiles signs the checkpoint with signer_key and origin "
                                  "together; give both or neither")
    if not isinstance(directory, (str, os.PathLike)):
        raise InvalidPathError(f"directory must be a path, got {type(directory).__name__}")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise InvalidPathError(f"{str(root)!r} exists and is not a directory")
    head = log.tree_head(store, size)
    n = head.size
    from ..progress import Progress
    with Progress("export tiles", n, enabled=progress) as bar:
        level = 0
        while n >> (tiles.TILE_HEIGHT * level):
            width_total = n >> (tiles.TILE_HEIGHT * level)
            for idx in range((width_total + tiles.TILE_WIDTH - 1) >> tiles.TILE_HEIGHT):
                width = min(tiles.TILE_WIDTH, width_total - (idx << tiles.TILE_HEIGHT))
                with store.read() as conn:
                    node = tiles.reader(store).nodes_source(conn, n)
                    hashes = b"".join(node(tiles.TILE_HEIGHT * level, (idx << tiles.TILE_HEIGHT) + j)
                                      for j in range(width))
                    if level == 0:
                        rows = tiles.leaf_rows(conn, idx << tiles.TILE_HEIGHT, width)
                _write(root, f"tile/{level}/{tile_path(idx, width)}", hashes)
                if level == 0:
                    _write(root, f"tile/entries/{tile_path(idx, width)}", _bundle(rows))
                    bar.update(width)
            level += 1
    text = notes.checkpoint_text(origin or "palyra-journal", head.size, head.root)
    note = text if signer_key is None else notes.sign_note(text, signer_key)
    _write(root, "checkpoint", note.encode("utf-8"))
    return head
