"""Signed checkpoints checked field by field with pyca/cryptography directly (C2SP signed-note,
tlog-checkpoint; Go sumdb/note key strings), and every alteration refused."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import palyra_journal as pj

ORIGIN = "example.com/agent-journal"
NAME = "example.com/log-key"


@pytest.fixture
def signed(store):
    store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(300)])
    signer, verifier = pj.tlog.generate_key(NAME)
    return store, signer, verifier, store.sign_checkpoint(signer, ORIGIN)


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]


def test_key_strings_are_go_sumdb_note_keys():
    signer, verifier = pj.tlog.generate_key(NAME)
    p = signer.split("+", 4)
    assert p[:3] == ["PRIVATE", "KEY", NAME]
    seed = base64.b64decode(p[4])
    assert seed[0] == 1 and len(seed) == 33
    public = Ed25519PrivateKey.from_private_bytes(seed[1:]).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    v = verifier.split("+", 2)
    assert v[0] == NAME and base64.b64decode(v[2]) == b"\x01" + public
    assert v[1] == p[3] == _key_id(NAME, public).hex() and len(v[1]) == 8


def test_checkpoint_fields_and_signature(signed):
    store, signer, verifier, note = signed
    head = store.tree_head()
    text, sigs = note.split("\n\n")
    assert text + "\n" == f"{ORIGIN}\n300\n{base64.b64encode(head.root).decode()}\n"
    dash, name, b64 = sigs.rstrip("\n").split(" ")
    assert dash == "\u2014" and name == NAME and sigs.endswith("\n") and sigs.count("\n") == 1
    raw = base64.b64decode(b64)
    public = base64.b64decode(verifier.split("+", 2)[2])[1:]
    assert raw[:4] == _key_id(NAME, public)
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (text + "\n").encode())
    cp = pj.tlog.open_checkpoint(note, verifier)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 300, head.root)
    assert store.sign_checkpoint(signer, ORIGIN, size=7).split("\n")[1] == "7"


def _resign(text: str, signer: str) -> str:
    """A note over ``text`` with a valid signature by ``signer`` (the attacker holds no key, so
    this is only for cases where the signature itself is not the thing altered)."""
    from palyra_journal.tlog.notes import sign_note
    return sign_note(text, signer)


@pytest.mark.parametrize("field", ["origin", "size", "root"])
def test_an_altered_checkpoint_line_is_refused(signed, field):
    store, signer, verifier, note = signed
    text, sig = note.split("\n\n")
    origin, size, root = text.split("\n")
    other_root = base64.b64encode(bytes(range(32))).decode()
    changed = {"origin": f"{origin}x\n{size}\n{root}", "size": f"{origin}\n301\n{root}",
               "root": f"{origin}\n{size}\n{other_root}"}[field]
    with pytest.raises(pj.ProofError, match="does not verify"):
        pj.tlog.open_checkpoint(changed + "\n\n" + sig, verifier)


def test_altered_key_name_key_id_or_signature_is_refused(signed):
    store, signer, verifier, note = signed
    text, sig = note.split("\n\n")
    dash, name, b64 = sig.rstrip("\n").split(" ")
    raw = base64.b64decode(b64)
    other_name = f"{text}\n\n{dash} {name}x {b64}\n"
    with pytest.raises(pj.ProofError, match="no signature by 'example.com/log-key'"):
        pj.tlog.open_checkpoint(other_name, verifier)
    bad_id = bytes([raw[0] ^ 1]) + raw[1:]
    with pytest.raises(pj.ProofError, match="with key id"):
        pj.tlog.open_checkpoint(f"{text}\n\n{dash} {name} {base64.b64encode(bad_id).decode()}\n",
                                verifier)
    bad_sig = raw[:10] + bytes([raw[10] ^ 0x80]) + raw[11:]
    with pytest.raises(pj.ProofError, match="does not verify"):
        pj.tlog.open_checkpoint(f"{text}\n\n{dash} {name} {base64.b64encode(bad_sig).decode()}\n",
                                verifier)
    _, other_verifier = pj.tlog.generate_key(NAME)  # same name, another key
    with pytest.raises(pj.ProofError, match="with key id"):
        pj.tlog.open_checkpoint(note, other_verifier)
    _, stranger = pj.tlog.generate_key("someone.else")
    with pytest.raises(pj.ProofError, match="no signature by 'someone.else'"):
        pj.tlog.open_checkpoint(note, stranger)


def test_a_second_signature_line_is_allowed(signed):
    store, signer, verifier, note = signed
    signer2, verifier2 = pj.tlog.generate_key("witness.example")
    text = note.split("\n\n")[0] + "\n"
    from palyra_journal.tlog.notes import parse_signer
    cosigned = note + parse_signer(signer2).sign(text) + "\n"
    assert pj.tlog.open_checkpoint(cosigned, verifier).size == 300
    assert pj.tlog.open_checkpoint(cosigned, verifier2).size == 300


@pytest.mark.parametrize("key, message", [
    ("name+0000+AAAA", "not 8 lowercase hex digits"),
    ("name+00000000", "3 '\\+'-separated fields, got 2"),
    ("na me+00000000+AAAA", "must not hold spaces"),
    ("name+00000000+AAAA", "expected an Ed25519 key"),
    ("name+00000000+!!!", "not valid base64"),
])
def test_malformed_verifier_keys_are_named(key, message):
    with pytest.raises(pj.ProofError, match=message):
        pj.tlog.open_checkpoint("o\n1\nAAAA\n\n\u2014 name AAAA\n", key)


def test_a_key_whose_id_does_not_match_is_refused():
    signer, verifier = pj.tlog.generate_key(NAME)
    name, _, key = verifier.split("+", 2)
    with pytest.raises(pj.ProofError, match="does not match the key"):
        pj.tlog.open_checkpoint("x\n", f"{name}+00000000+{key}")
    from palyra_journal.tlog.notes import parse_signer
    with pytest.raises(pj.ProofError, match="does not match the key"):
        parse_signer(signer.replace(signer.split("+")[3], "00000000"))


def test_bad_origin_and_checkpoint_body_are_refused(signed):
    store, signer, verifier, note = signed
    with pytest.raises(pj.ProofError, match="origin"):
        store.sign_checkpoint(signer, "two\nlines")
    for body, message in [("o\n01\nAAAA\n", "not a decimal number"),
                          ("o\n1\nAAAA\n", "root is 3 bytes"),
                          ("o\n1\n", "got 2 lines")]:
        with pytest.raises(pj.ProofError, match=message):
            pj.tlog.open_checkpoint(_resign(body, signer), verifier)
