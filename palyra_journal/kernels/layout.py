"""The layout of journal rows as the kernels see them: one definition, in Python.

The hash chain's field order and the event-line keys are named here once. The pure backend builds
its envelope from these names; the native backend (``csrc/chain.c``, ``csrc/jcs.c``) has the same
order compiled in, and :mod:`.native` checks it against these definitions when it is imported
(one known-answer row and one event line), so a drift between C and Python fails loudly instead
of writing hashes nobody can verify.

This module imports nothing from the package, so any kernel module can import it first.
"""

from __future__ import annotations

#: Envelope fields of hash chain v1, in the order rows are passed to ``chain_hashes``.
CHAIN_FIELDS = (
    "seq", "event_id", "kind", "actor", "session_id", "run_id", "principal", "device_id",
    "channel", "timestamp_unix_ms", "payload_json",
)
#: ``CHAIN_FIELDS`` plus the stored hash and prev_hash, the row form ``verify_chain`` reads.
VERIFY_FIELDS = CHAIN_FIELDS + ("hash", "prev_hash")
#: The integer fields of a chain row; every other field but the payload is text (or None).
CHAIN_INT_FIELDS = ("seq", "timestamp_unix_ms")
#: The member name of each chain field in the hashed envelope (the stored payload is "payload").
ENVELOPE_NAMES = tuple("payload" if f == "payload_json" else f for f in CHAIN_FIELDS)
#: The ``prev_hash`` of seq 1.
GENESIS_HASH = "0" * 64

#: The keys of an event line (an ``append_many`` dict), in the order ``event_lines`` returns its
#: columns; the payload column comes back as canonical texts plus their redacted flags.
EVENT_LINE_KEYS = (
    "kind", "actor", "event_id", "session_id", "run_id", "principal", "device_id", "channel",
    "timestamp_unix_ms", "payload",
)
#: Keys ``export_jsonl`` writes that an ingested line may carry and that are ignored.
EVENT_LINE_IGNORED_KEYS = ("seq", "hash", "prev_hash", "redacted", "created_at_unix_ms")
