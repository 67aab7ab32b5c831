"""The pure-Python backend (Python + numpy): the reference every native kernel must match."""

from __future__ import annotations

import hashlib

from .pure_chain import chain_hashes, sha256, verify_chain
from .pure_merkle import chain_columns, chain_row
from .pure_chain_joined import verify_joined
from .pure_jcs import canonicalize, canonicalize_many, canonicalize_text, event_lines
from .pure_vector import int8_candidates, quantize_int8, topk, topk_int8, topk_int8_many, topk_rows
from .pure_ulid import ulids


def cpu_info() -> dict:
    return {"backend": "python", "simd": "numpy", "sha": f"hashlib ({hashlib.sha256().name})",
            "threads": 1}


__all__ = ["canonicalize", "canonicalize_text", "canonicalize_many", "event_lines", "sha256",
           "chain_hashes", "chain_columns", "chain_row", "verify_chain", "verify_joined", "topk",
           "quantize_int8", "topk_int8",
           "topk_int8_many",
           "int8_candidates", "topk_rows", "ulids", "cpu_info"]
