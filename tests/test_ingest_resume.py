"""A failed ingest can be resumed: the error names the last committed line and the exact command
that resumes after it, and ``--skip-existing`` / ``on_duplicate="skip"`` makes a re-run of the
same file idempotent when its events carry ids."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex

import pytest

import palyra_journal as pj
from palyra_journal import JournalStore
from palyra_journal.cli import main


def lines(n, *, ids=False, bad_at=None) -> bytes:
    out = []
    for i in range(1, n + 1):
        if i == bad_at:
            out.append('{"kind": "k", "payload": {"i": NaN}}')
            continue
        ev = {"kind": "k", "payload": {"i": i}}
        if ids:
            ev["event_id"] = f"ev-{i}"
        out.append(json.dumps(ev))
    return ("\n".join(out) + "\n").encode()


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def payload_is(store) -> list[int]:
    return [r.payload["i"] for r in store.iter_events()]


def test_the_error_prints_the_command_that_resumes(tmp_path, backend):
    db, src = tmp_path / "j.db", tmp_path / "in.jsonl"
    src.write_bytes(lines(25, bad_at=18))
    code, _, err = run("ingest", db, src, "--batch-size", "5")
    assert code == 2
    assert err.startswith("palyra-journal: error: line 18, byte 31: invalid JSON: NaN")
    assert "nothing from line 16 on was written" in err and "(15 events)" in err
    command = re.search(r"resume with: (palyra-journal .*)$", err.strip()).group(1)
    assert command == f"palyra-journal ingest {db} {src} --start-line 16"
    src.write_bytes(lines(25))  # the user fixes line 18, then runs the printed command
    code, out, err = run(*shlex.split(command)[1:], "--json")
    assert code == 0, err
    assert json.loads(out)["ingested"] == 10
    with JournalStore.open(db, read_only=True) as store:
        assert payload_is(store) == list(range(1, 26)) and store.verify().ok


def test_skip_existing_makes_a_rerun_idempotent(tmp_path, backend):
    db, src = tmp_path / "j.db", tmp_path / "in.jsonl"
    src.write_bytes(lines(25, ids=True, bad_at=18))
    code, _, err = run("ingest", db, src, "--batch-size", "5", "--skip-existing")
    assert code == 2 and "--start-line 16 --skip-existing" in err
    src.write_bytes(lines(25, ids=True))
    for expected in ({"ingested": 10, "skipped_existing": 15},
                     {"ingested": 0, "skipped_existing": 25}):
        code, out, err = run("ingest", db, src, "--batch-size", "5", "--skip-existing", "--json")
        assert code == 0, err
        data = json.loads(out)
        assert {k: data[k] for k in expected} == expected
    with JournalStore.open(db, read_only=True) as store:
        assert payload_is(store) == list(range(1, 26)) and store.verify().ok


def test_without_skip_a_rerun_names_the_stored_id_and_the_flag(tmp_path):
    db, src = tmp_path / "j.db", tmp_path / "in.jsonl"
    src.write_bytes(lines(3, ids=True))
    assert run("ingest", db, src)[0] == 0
    code, _, err = run("ingest", db, src)
    assert code == 2 and "'ev-1' already exists" in err and "--skip-existing" in err
    assert "nothing was written" in err


def test_api_start_line_and_skip_count(tmp_path, store):
    src = tmp_path / "in.jsonl"
    src.write_bytes(lines(12, ids=True))
    n = store.ingest_jsonl(src, start_line=5, batch_size=4)
    assert n == 8 and n.skipped == 0 and payload_is(store) == list(range(5, 13))
    n = store.ingest_jsonl(src, on_duplicate="skip", batch_size=5)
    assert n == 4 and n.skipped == 8
    assert sorted(payload_is(store)) == list(range(1, 13)) and store.verify().ok
    with pytest.raises(pj.InvalidPayloadError, match="start_line must be an int >= 1"):
        store.ingest_jsonl(src, start_line=0)
    with pytest.raises(pj.InvalidPayloadError, match="on_duplicate must be 'error' or 'skip'"):
        store.ingest_jsonl(src, on_duplicate="ignore")


def test_api_error_carries_the_resume_line(tmp_path, store):
    src = tmp_path / "in.jsonl"
    src.write_bytes(lines(9, bad_at=7))
    with pytest.raises(pj.InvalidPayloadError, match=r"resume with start_line=5$") as exc:
        store.ingest_jsonl(src, batch_size=4)
    assert exc.value.resume_line == 5 and store.head().seq == 4
    with pytest.raises(pj.InvalidPayloadError, match=r"nothing was written$") as exc:
        store.ingest_jsonl(src, batch_size=4, start_line=5)
    assert exc.value.resume_line is None and store.head().seq == 4


@pytest.mark.parametrize("text,message", [
    (b'{"kind":"k"}\n{"kind": "k", "payload": {"a":1,}}\n',
     "line 2, byte 32: invalid JSON: unexpected character '}'"),
    (b'{"kind":"k"}\n{"kind":"k",\n', "line 2, byte 13: invalid JSON: unexpected end of input"),
    (b'{"kind":"k","kind":"j"}\n', 'line 1, byte 12: duplicate key "kind"'),
    (b'{"kind":"\xff"}\n', "line 1, byte 9: invalid UTF-8"),
])
def test_json_line_errors_have_one_format(tmp_path, store, text, message):
    src = tmp_path / "in.jsonl"
    src.write_bytes(text)
    with pytest.raises(pj.InvalidPayloadError) as exc:
        store.ingest_jsonl(src, batch_size=1)
    assert str(exc.value).startswith(message + ";")


@pytest.mark.parametrize("payload,message", [
    ('{"a": 1,}', "payload: byte 8: invalid JSON: unexpected character '}'"),
    (b'{"a":"\xff"}', "payload: byte 6: invalid UTF-8"),
    ('{"a":1,"a":2}', 'payload: byte 7: duplicate key "a"'),
])
def test_single_document_errors_have_one_format(store, payload, message):
    with pytest.raises(pj.InvalidPayloadError) as exc:
        store.append("k", payload)
    assert str(exc.value) == message
    with pytest.raises(pj.InvalidPayloadError) as exc:
        store.append_many([{"kind": "k"}, {"kind": "k", "payload": payload}])
    assert str(exc.value) == message.replace("payload:", "events[1].payload:")
    assert store.head() is None
