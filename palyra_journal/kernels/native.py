"""The native backend: thin wrappers over the compiled cffi module ``palyra_journal._native``.

Importing this module fails with ModuleNotFoundError when the extension is not built; the kernel
layer then falls back to the pure backend. On import it checks that the C code agrees with the
Python definitions of :mod:`.layout` (chain field order, event-line keys): a mismatch raises
:class:`LayoutMismatchError`, which the kernel layer reports loudly.
"""

from __future__ import annotations

import json

from . import pure_chain
from .layout import CHAIN_FIELDS, EVENT_LINE_IGNORED_KEYS, EVENT_LINE_KEYS, GENESIS_HASH
from .native_chain import chain_columns, chain_hashes, chain_row, sha256, verify_chain, verify_joined
from .native_cpu import cpu_info
from .native_jcs import canonicalize, canonicalize_many, canonicalize_text, event_lines
from .native_vector import int8_candidates, quantize_int8, topk, topk_int8, topk_int8_many, topk_rows
from .native_ulid import ulids


class LayoutMismatchError(ImportError):
    """The compiled C code orders chain fields or names event-line keys unlike kernels/layout.py."""


def _check_layout() -> None:
    """One known-answer row and one event line, each field holding a value of its own."""
    row = tuple(i + 1 if f in ("seq", "timestamp_unix_ms") else
                ('{"n":%d}' % i if f == "payload_json" else f"v{i}")
                for i, f in enumerate(CHAIN_FIELDS))
    if chain_hashes(GENESIS_HASH, [row]) != pure_chain.chain_hashes(GENESIS_HASH, [row]):
        raise LayoutMismatchError(
            f"csrc/chain.c hashes a row in another field order than CHAIN_FIELDS {CHAIN_FIELDS}")
    values = {k: (7 if k == "timestamp_unix_ms" else {"n": i} if k == "payload" else f"v{i}")
              for i, k in enumerate(EVENT_LINE_KEYS)}
    line = json.dumps({**values, **{k: None for k in EVENT_LINE_IGNORED_KEYS}}).encode()
    cols = event_lines([line])
    if cols is None:
        raise LayoutMismatchError("csrc/jcs.c refuses an event line holding exactly "
                                  "EVENT_LINE_KEYS and EVENT_LINE_IGNORED_KEYS")
    got = {k: cols[i][0] for i, k in enumerate(EVENT_LINE_KEYS)}
    got["payload"] = json.loads(got["payload"])
    if got != values:
        raise LayoutMismatchError(f"csrc/jcs.c returns event-line columns {got} for {values}")
    if event_lines([json.dumps({"kind": "k", "unexpected_key": 1}).encode()]) is not None:
        raise LayoutMismatchError("csrc/jcs.c accepts an event-line key outside EVENT_LINE_KEYS")


_check_layout()

__all__ = ["canonicalize", "canonicalize_text", "canonicalize_many", "event_lines", "sha256",
           "chain_hashes", "chain_columns", "chain_row", "verify_chain", "verify_joined", "topk",
           "quantize_int8", "topk_int8",
           "topk_int8_many", "int8_candidates", "topk_rows", "ulids", "cpu_info"]
