"""The ``tlog`` subcommands: the verifiable journal's tree heads, proofs and signed checkpoints.

Thin shells over ``store.tree_head`` / ``inclusion_proof`` / ``consistency_proof`` /
``sign_checkpoint`` / ``verify(checkpoint=...)`` and ``palyra_journal.tlog`` (docs/verifiable.md).
Hashes print as base64, as in checkpoints and the C2SP formats. A file from before the tree has its
tiles built first, with a progress bar on a terminal. (``palyra-journal checkpoint`` is SQLite's
WAL checkpoint, unrelated.)
"""

from __future__ import annotations

import argparse
import base64
import os
import sys

from ..errors import InvalidPayloadError, JournalError, ProofError
from . import WRITE, add_command, add_db, add_schema, emit, open_db

_EPILOG = "Hashes are base64 (as in checkpoints). See docs/verifiable.md for the model."


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode("ascii")


def register(sub) -> None:
    p = add_command(sub, "tlog", "Merkle tree proofs and signed checkpoints (verifiable journal)",
                    lambda a: _help(p), description="The journal as a transparency log: RFC 9162 "
                    "tree heads, inclusion and consistency proofs, C2SP signed checkpoints and "
                    "the tlog-tiles export. " + _EPILOG)
    tsub = p.add_subparsers(dest="tlog_command", metavar="SUBCOMMAND")

    q = add_command(tsub, "head", "the tree size and root", run_head,
                    description="Print the tree size and root hash of the journal, or of its "
                    "first SIZE events. " + _EPILOG)
    add_db(q, WRITE)
    q.add_argument("--size", type=int, help="a past tree size (default: all events)")

    q = add_command(tsub, "prove", "inclusion proof of one event", run_prove,
                    description="Print the RFC 9162 inclusion proof of event SEQ in the tree of "
                    "SIZE events (default: all), with that tree's root. " + _EPILOG)
    add_db(q, WRITE)
    q.add_argument("seq", type=int, metavar="SEQ")
    q.add_argument("--size", type=int)

    q = add_command(tsub, "consistency", "consistency proof between two tree sizes",
                    run_consistency, description="Print the RFC 9162 proof that the tree of OLD "
                    "events is a prefix of the tree of SIZE events (default: all), with both "
                    "roots. " + _EPILOG)
    add_db(q, WRITE)
    q.add_argument("old", type=int, metavar="OLD")
    q.add_argument("--size", type=int)

    q = add_command(tsub, "sign", "sign a checkpoint of the tree", run_sign,
                    description="Print a C2SP signed checkpoint (note text) of the tree, signed "
                    "with the signer key in KEYFILE (from `tlog keygen`). Keep it somewhere the "
                    "journal's writer cannot change: it is what later proves the history intact.")
    add_db(q, WRITE)
    q.add_argument("--key-file", required=True, metavar="KEYFILE", help="file holding the signer key")
    q.add_argument("--origin", required=True, help="the log's name, e.g. example.com/agent-journal")
    q.add_argument("--size", type=int)
    q.add_argument("--out", metavar="FILE", help="write the note to FILE (default: stdout)")

    q = add_command(tsub, "verify-note", "check a signed checkpoint; exit 1 when it fails",
                    run_verify_note, description="Check the signature on the checkpoint in NOTE "
                    "(- for stdin) with the verifier key, and with --db also check that the "
                    "journal still holds that history (its tree at the checkpoint's size has the "
                    "checkpoint's root, proved by a consistency proof). Exit 1 on any failure.")
    q.add_argument("note", metavar="NOTE")
    q.add_argument("--verifier-key", required=True, metavar="KEY",
                   help="the verifier key string, or @FILE to read it")
    q.add_argument("--db", metavar="DB", help="also verify this journal (a file or a "
                   "postgresql:// URL) against the checkpoint")
    add_schema(q)

    q = add_command(tsub, "keygen", "make an Ed25519 signer/verifier key pair", run_keygen,
                    description="Make a key pair for NAME (e.g. example.com/journal-key) in Go's "
                    "sumdb/note formats. With --out PREFIX, write PREFIX.key (the signer key, mode "
                    "0600) and PREFIX.pub; otherwise print both.")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--out", metavar="PREFIX")

    q = add_command(tsub, "export-tiles", "write the tree as a static C2SP tlog-tiles directory",
                    run_export, description="Write tile/<L>/<N>[.p/<W>], tile/entries/<N>[.p/<W>] "
                    "and checkpoint under DIR, for tlog clients and witnesses. With --key-file "
                    "and --origin the checkpoint is signed.")
    add_db(q, WRITE)
    q.add_argument("dir", metavar="DIR")
    q.add_argument("--size", type=int)
    q.add_argument("--key-file", metavar="KEYFILE")
    q.add_argument("--origin")

    q = add_command(tsub, "build", "build the tree of a file from before it", run_build,
                    description="Build the Merkle tiles of a journal written before the tree "
                    "existed (resumable: an interrupted build keeps what it committed). Other "
                    "tlog commands do this on their own when needed.")
    add_db(q, WRITE)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _store(args: argparse.Namespace):
    """The store, its tiles built first (progress bar on a terminal)."""
    from ..tlog import build_tiles
    store = open_db(args, WRITE)
    try:
        build_tiles(store, progress=not args.json)
    except BaseException:
        store.close()
        raise
    return store


def _read_text(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise InvalidPayloadError(f"cannot read {what} {path!r}: {exc.strerror}") from None


def run_head(args: argparse.Namespace) -> int:
    with _store(args) as store:
        head = store.tree_head(args.size)
    emit(args, head.to_dict(), lambda: f"size {head.size}\nroot {_b64(head.root)}")
    return 0


def run_prove(args: argparse.Namespace) -> int:
    with _store(args) as store:
        proof = store.inclusion_proof(args.seq, args.size)
        root = store.tree_head(proof.tree_size).root
    data = {**proof.to_dict(), "root": _b64(root)}
    emit(args, data, lambda: "\n".join(
        [f"seq {args.seq} (leaf {proof.leaf_index}) in tree size {proof.tree_size}",
         f"leaf_hash {_b64(proof.leaf_hash)}", f"root {_b64(root)}",
         *(f"  {_b64(h)}" for h in proof.hashes)]))
    return 0


def run_consistency(args: argparse.Namespace) -> int:
    with _store(args) as store:
        new = store.tree_head(args.size)
        hashes = store.consistency_proof(args.old, new.size)
        old = store.tree_head(args.old)
    data = {"old_size": old.size, "new_size": new.size, "old_root": _b64(old.root),
            "new_root": _b64(new.root), "hashes": [_b64(h) for h in hashes]}
    emit(args, data, lambda: "\n".join(
        [f"tree size {old.size} -> {new.size}", f"old_root {_b64(old.root)}",
         f"new_root {_b64(new.root)}", *(f"  {_b64(h)}" for h in hashes)]))
    return 0


def _key(path: str) -> str:
    return _read_text(path, "key file").strip()


def run_sign(args: argparse.Namespace) -> int:
    key = _key(args.key_file)
    with _store(args) as store:
        note = store.sign_checkpoint(key, args.origin, size=args.size)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(note)
    lines = note.split("\n")
    emit(args, {"note": note, "origin": lines[0], "size": int(lines[1]), "root": lines[2]},
         "" if args.out else note.rstrip("\n"))
    return 0


def run_verify_note(args: argparse.Namespace) -> int:
    from ..tlog import open_checkpoint
    key = args.verifier_key
    key = _key(key[1:]) if key.startswith("@") else key
    note = _read_text(args.note, "note")
    try:
        cp = open_checkpoint(note, key)
    except ProofError as exc:
        emit(args, {"ok": False, "error": str(exc)}, f"REFUSED: {exc}")
        return 1
    data = {"ok": True, "checkpoint": cp.to_dict()}
    text = f"OK: signed checkpoint of {cp.origin}, size {cp.size}, root {_b64(cp.root)}"
    if args.db:
        with _store(args) as store:
            report = store.verify(checkpoint=note, verifier_key=key, progress=not args.json)
        data = {"ok": report.ok, "checkpoint": cp.to_dict(), "verify": report.to_dict()}
        text += (f"\nOK: {args.db} holds that history ({report.checked} events verified)"
                 if report.ok else f"\nBROKEN at seq {report.first_bad_seq}: {report.reason}")
    emit(args, data, text)
    return 0 if data["ok"] else 1


def run_keygen(args: argparse.Namespace) -> int:
    from ..tlog import generate_key
    signer, verifier = generate_key(args.name)
    if args.out:
        key_path, pub_path = args.out + ".key", args.out + ".pub"
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot create {key_path!r}: {exc.strerror}") from None
        with open(fd, "w", encoding="utf-8") as f:
            f.write(signer + "\n")
        with open(pub_path, "w", encoding="utf-8") as f:
            f.write(verifier + "\n")
        emit(args, {"signer_key_file": key_path, "verifier_key_file": pub_path,
                    "verifier_key": verifier},
             f"signer key (secret) -> {key_path}\nverifier key -> {pub_path}\n{verifier}")
    else:
        emit(args, {"signer_key": signer, "verifier_key": verifier}, f"{signer}\n{verifier}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..tlog import export_tiles
    key = _key(args.key_file) if args.key_file else None
    with _store(args) as store:
        head = export_tiles(store, args.dir, size=args.size, signer_key=key, origin=args.origin,
                            progress=not args.json)
    emit(args, {"directory": args.dir, **head.to_dict()},
         f"exported tree size {head.size}, root {_b64(head.root)} to {args.dir}")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..tlog import build_tiles
    with open_db(args, WRITE) as store:
        n = build_tiles(store, progress=not args.json)
    emit(args, {"events": n}, f"built the tiles of {n} events" if n else "the tree is current")
    return 0
