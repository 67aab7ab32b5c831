"""Every transparency-dev/merkle inclusion and consistency vector through the public verifiers:
happy paths verify, every ``wantErr`` case raises ProofError."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

import palyra_journal as pj

MERKLE = Path(__file__).resolve().parent.parent / "data" / "merkle"


def _cases(kind: str) -> list:
    files = sorted((MERKLE / kind).rglob("*.json"))
    assert files, f"no vectors under {MERKLE / kind}"
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(MERKLE))) for f in files]


def _b(text):
    return base64.b64decode(text) if text is not None else None


def _hashes(v):
    return [_b(h) for h in v["proof"] or []]


@pytest.mark.parametrize("vector", _cases("inclusion"))
def test_inclusion_vector(vector):
    args = (_b(vector["leafHash"]), vector["leafIdx"], vector["treeSize"], _hashes(vector),
            _b(vector["root"]))
    if vector["wantErr"]:
        with pytest.raises(pj.ProofError):
            pj.tlog.verify_inclusion(*args)
    else:
        assert pj.tlog.verify_inclusion(*args) is None


@pytest.mark.parametrize("vector", _cases("consistency"))
def test_consistency_vector(vector):
    args = (vector["size1"], vector["size2"], _b(vector["root1"]), _b(vector["root2"]),
            _hashes(vector))
    if vector["wantErr"]:
        with pytest.raises(pj.ProofError):
            pj.tlog.verify_consistency(*args)
    else:
        assert pj.tlog.verify_consistency(*args) is None


def test_vector_counts_cover_both_outcomes():
    for kind in ("inclusion", "consistency"):
        outcomes = {json.loads(f.read_text())["wantErr"] for f in (MERKLE / kind).rglob("*.json")}
        assert outcomes == {True, False}


def test_proof_error_is_a_journal_error_and_names_the_failure():
    assert issubclass(pj.ProofError, pj.JournalError)
    with pytest.raises(pj.ProofError, match="leaf_index 5 is not in a tree of size 3"):
        pj.tlog.verify_inclusion(b"\0" * 32, 5, 3, [], b"\0" * 32)
    with pytest.raises(pj.ProofError, match="has 2 hashes, got 0"):
        pj.tlog.verify_inclusion(b"\0" * 32, 0, 3, [], b"\0" * 32)
    with pytest.raises(pj.ProofError, match="hashes\\[0\\] must be a 32-byte hash"):
        pj.tlog.verify_inclusion(b"\0" * 32, 0, 2, [b"short"], b"\0" * 32)
