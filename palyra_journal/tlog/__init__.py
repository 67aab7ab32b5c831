"""The verifiable journal (docs/verifiable.md): an RFC 9162 Merkle tree over the events, inclusion
and consistency proofs, C2SP signed checkpoints and the tlog-tiles export.

Store methods (``store.tree_head``, ``store.inclusion_proof``, ``store.consistency_proof``,
``store.sign_checkpoint``, ``store.verify(checkpoint=..., verifier_key=...)``) serve the log's side;
the functions here are the auditor's side and need nothing but a proof, a root and a key.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import InvalidPayloadError
from .hashing import EMPTY_ROOT
from .log import InclusionProof, TreeHead
from .proofs import verify_consistency, verify_inclusion
from .tiles import build_tiles

# Loaded on first use: signing pulls in pyca/cryptography (~50 ms), which appending never needs.
_LAZY = {"Checkpoint": ".notes", "generate_key": ".notes", "open_checkpoint": ".notes",
         "export_tiles": ".export"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'palyra_journal.tlog' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

_ROW_FIELDS = ("seq", "event_id", "kind", "actor", "session_id", "run_id", "principal",
               "device_id", "channel", "timestamp_unix_ms")


def leaf_hash(event: Any) -> bytes:
    """The leaf hash of one event (an EventRecord, or its ``to_dict()``): SHA-256(0x00 || the
    UTF-8 of its chain v1 envelope). Nothing else is needed to compute it."""
    from .. import kernels
    from .hashing import leaf_hashes
    if isinstance(event, tuple) and hasattr(event, "payload_json"):
        row = tuple(event)[:11]
    elif isinstance(event, dict):
        missing = [k for k in _ROW_FIELDS if k not in event and k not in
                   ("session_id", "run_id", "principal", "device_id", "channel")]
        if missing:
            raise InvalidPayloadError(f"event is missing {', '.join(missing)}")
        if "payload_json" in event:
            payload_json = event["payload_json"]
        else:  # a stored payload is already redacted: canonicalize it as it is
            payload_json = kernels.canonicalize(event.get("payload", {}), redact=False)[0]
        row = (*(event.get(k) for k in _ROW_FIELDS), payload_json)
    else:
        raise InvalidPayloadError(f"event must be an EventRecord or a dict, got "
                                  f"{type(event).__name__}")
    return leaf_hashes([row])


__all__ = ["EMPTY_ROOT", "Checkpoint", "InclusionProof", "TreeHead", "build_tiles",
           "export_tiles", "generate_key", "leaf_hash", "open_checkpoint", "verify_consistency",
           "verify_inclusion"]
