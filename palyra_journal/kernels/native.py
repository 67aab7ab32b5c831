"""The native backend: thin wrappers over the compiled cffi module ``palyra_journal._native``.

Importing this module fails with ImportError when the extension is not built; the kernel layer
then falls back to the pure backend.
"""

from __future__ import annotations

from .native_chain import chain_hashes, sha256, verify_chain
from .native_cpu import cpu_info
from .native_jcs import canonicalize, canonicalize_many, canonicalize_text, event_lines
from .native_vector import int8_candidates, quantize_int8, topk, topk_int8, topk_int8_many, topk_rows

__all__ = ["canonicalize", "canonicalize_text", "canonicalize_many", "event_lines", "sha256", "chain_hashes", "verify_chain", "topk", "quantize_int8", "topk_int8", "topk_int8_many", "int8_candidates", "topk_rows",
           "cpu_info"]
