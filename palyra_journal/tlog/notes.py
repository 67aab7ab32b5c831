"""Signed checkpoints: C2SP tlog-checkpoint text, C2SP signed-note signatures, Go sumdb/note keys.

A checkpoint is the note text ``<origin>\\n<tree size>\\n<base64 root>\\n`` (optionally followed by
extension lines), then a blank line and signature lines ``— <key name> <base64(key id ||
signature)>``. The key id is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (0x01: Ed25519).
Key strings are those of ``golang.org/x/mod/sumdb/note``: verifier
``<name>+<8 hex key id>+<base64(0x01 || public key)>``, signer
``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>``, so Go tools and witnesses
read ours and we read theirs. Ed25519 itself comes from pyca/cryptography.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ProofError
from .hashing import HASH_SIZE

ALG_ED25519 = 0x01
SIGNATURE_DASH = "\u2014"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
MAX_SIZE = 2**63 - 1


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: the log's ``origin``, its tree ``size`` and ``root`` (32 bytes)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size,
                "root": base64.b64encode(self.root).decode("ascii"),
                "extensions": list(self.extensions)}


def _b64decode(what: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ProofError(f"{what} is not valid base64: {text!r:.80}") from None


def _check_name(name: Any) -> str:
    """Key names: non-empty UTF-8 text without spaces, controls or '+' (sumdb/note's rule)."""
    if not isinstance(name, str) or not name:
        raise ProofError(f"a key name must be a non-empty str, got {name!r:.60}")
    if "+" in name or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ProofError(f"key name {name!r:.60} must not hold spaces, control characters or '+'")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ProofError(f"key name {name!r:.60} is not valid Unicode") from None
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _public_bytes(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def generate_key(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair named ``name``: ``(signer key, verifier key)`` strings. Keep the
    signer key secret; hand the verifier key to whoever checks the checkpoints."""
    _check_name(name)
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = _public_bytes(private.public_key())
    kid = key_id(name, public).hex()
    alg = bytes([ALG_ED25519])
    signer = f"PRIVATE+KEY+{name}+{kid}+{base64.b64encode(alg + seed).decode('ascii')}"
    verifier = f"{name}+{kid}+{base64.b64encode(alg + public).decode('ascii')}"
    return signer, verifier


def _key_parts(what: str, text: Any, fields: int) -> list[str]:
    if not isinstance(text, str):
        raise ProofError(f"a {what} key must be a str, got {type(text).__name__}")
    parts = text.strip().split("+", fields - 1)  # the base64 key, last, may hold '+' itself
    if len(parts) != fields:
        raise ProofError(f"a {what} key has {fields} '+'-separated fields, got {len(parts)}")
    return parts


def _key_material(what: str, name: str, hex_id: str, b64: str) -> tuple[bytes, bytes]:
    """``(key id, 32 key bytes)`` from a key string's fields, checked."""
    _check_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise ProofError(f"{what} key {name!r}: key id {hex_id!r} is not 8 lowercase hex digits")
    raw = _b64decode(f"{what} key {name!r}", b64)
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise ProofError(f"{what} key {name!r}: expected an Ed25519 key (0x01 and 32 bytes), got "
                         f"{len(raw)} bytes starting {raw[:1].hex() or 'empty'}")
    return bytes.fromhex(hex_id), raw[1:]


@dataclass(frozen=True)
class Signer:
    name: str
    key_id: bytes
    private: Ed25519PrivateKey

    def sign(self, text: str) -> str:
        """The signature line for note ``text`` (without its trailing newline)."""
        sig = self.private.sign(text.encode("utf-8"))
        return f"{SIGNATURE_DASH} {self.name} {base64.b64encode(self.key_id + sig).decode('ascii')}"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public: Ed25519PublicKey


def parse_signer(text: Any) -> Signer:
    """A ``PRIVATE+KEY+name+id+key`` string; the id must match the key."""
    parts = _key_parts("signer", text, 5)
    if parts[:2] != ["PRIVATE", "KEY"]:
        raise ProofError("a signer key starts with PRIVATE+KEY+")
    kid, seed = _key_material("signer", *parts[2:])
    private = Ed25519PrivateKey.from_private_bytes(seed)
    if key_id(parts[2], _public_bytes(private.public_key())) != kid:
        raise ProofError(f"signer key {parts[2]!r}: key id {parts[3]} does not match the key")
    return Signer(parts[2], kid, private)


def parse_verifier(text: Any) -> Verifier:
    """A ``name+id+key`` string; the id must match the key."""
    parts = _key_parts("verifier", text, 3)
    kid, public = _key_material("verifier", *parts)
    if key_id(parts[0], public) != kid:
        raise ProofError(f"verifier key {parts[0]!r}: key id {parts[1]} does not match the key")
    try:
        key = Ed25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise ProofError(f"verifier key {parts[0]!r}: {exc}") from None
    return Verifier(parts[0], kid, key)


def check_origin(origin: Any) -> str:
    """A checkpoint origin: one non-empty line of printable text (e.g. ``example.com/log``)."""
    if not isinstance(origin, str) or not origin:
        raise ProofError(f"origin must be a non-empty str, got {origin!r:.60}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in origin) or origin != origin.strip():
        raise ProofError(f"origin {origin!r:.60} must be one line without control characters or "
                         "surrounding spaces")
    return origin


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The C2SP tlog-checkpoint note text (three lines)."""
    return f"{check_origin(origin)}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"


def sign_note(text: str, signer_key: str) -> str:
    """The signed note: ``text``, a blank line, one signature line."""
    signer = parse_signer(signer_key)
    return f"{text}\n{signer.sign(text)}\n"


def open_note(note: Any, verifier_key: str) -> str:
    """The text of a signed note once a signature by ``verifier_key`` verifies on it."""
    verifier = parse_verifier(verifier_key)
    if not isinstance(note, str):
        raise ProofError(f"a signed note must be a str, got {type(note).__name__}")
    if not note.endswith("\n"):
        raise ProofError("a signed note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise ProofError("a signed note has a blank line between its text and its signatures")
    text, block = note[:split + 1], note[split + 2:]
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ProofError("a signed note holds control characters")
    found_name = False
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_DASH + " "):
            raise ProofError(f"signature line {line!r:.80} does not start with '{SIGNATURE_DASH} '")
        fields = line[2:].split(" ")
        if len(fields) != 2:
            raise ProofError(f"signature line {line!r:.80} is not '{SIGNATURE_DASH} NAME SIGNATURE'")
        name, b64 = fields
        if name != verifier.name:
            continue
        found_name = True
        raw = _b64decode(f"the signature by {name!r}", b64)
        if len(raw) < 4 or raw[:4] != verifier.key_id:
            continue  # another key of the same name
        try:
            verifier.public.verify(raw[4:], text.encode("utf-8"))
        except InvalidSignature:
            raise ProofError(f"the signature by {name!r} (key id {verifier.key_id.hex()}) does "
                             "not verify on this note") from None
        return text
    if found_name:
        raise ProofError(f"no signature by {verifier.name!r} with key id "
                         f"{verifier.key_id.hex()} on this note")
    raise ProofError(f"no signature by {verifier.name!r} on this note")


def parse_checkpoint(text: str) -> Checkpoint:
    """The fields of a checkpoint note text, checked (C2SP tlog-checkpoint)."""
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise ProofError(f"a checkpoint has an origin, a size and a root line, got {len(lines)} lines")
    origin, size_text, root_text = lines[:3]
    check_origin(origin)
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_SIZE:
        raise ProofError(f"checkpoint tree size {size_text!r:.40} is not a decimal number")
    root = _b64decode("checkpoint root", root_text)
    if len(root) != HASH_SIZE:
        raise ProofError(f"checkpoint root is {len(root)} bytes, not {HASH_SIZE}")
    if any(not line for line in lines[3:]):
        raise ProofError("a checkpoint's extension lines are not empty")
    return Checkpoint(origin, int(size_text), root, tuple(lines[3:]))


def open_checkpoint(note: str, verifier_key: str) -> Checkpoint:
    """Verify a signed checkpoint with ``verifier_key`` and return its fields; raises
    :class:`ProofError` naming what failed (signature, key, origin, size or root line)."""
    return parse_checkpoint(open_note(note, verifier_key))
