"""What verify and doctor say about a tampered file: a head mismatch names both hashes without
contradictory counts, and dropped append-only triggers are a finding of their own."""

from __future__ import annotations

import contextlib
import io
import json

import raw_db

from palyra_journal import JournalStore
from palyra_journal.cli import main


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def journal(path, n=6):
    with JournalStore.open(path) as store:
        return store.append_many([{"kind": "k", "payload": {"i": i}} for i in range(n)])


def test_expected_head_mismatch_names_expected_and_actual_hash(db_path):
    recs = journal(db_path)
    code, out, _ = run("verify", db_path, "--expected-head", f"5:{recs[5].hash}")
    assert code == 1
    first, second = out.strip().splitlines()
    assert first == (f"HEAD MISMATCH at seq 5: expected hash {recs[5].hash}, the journal holds "
                     f"{recs[4].hash}")
    assert second == f"the chain itself verifies: 6 events, head 6:{recs[5].hash}"
    assert "before it" not in out and "last good" not in out
    code, out, _ = run("verify", db_path, "--expected-head", f"5:{recs[5].hash}", "--json")
    report = json.loads(out)
    assert (report["reason"], report["first_bad_seq"], report["expected_hash"],
            report["actual_hash"]) == ("head_mismatch", 5, recs[5].hash, recs[4].hash)


def test_dropped_triggers_are_reported_by_verify_and_doctor(db_path):
    journal(db_path)
    conn = raw_db.connect(db_path)
    raw_db.drop_trigger(conn, "journal_events_no_delete")
    conn.commit()
    conn.close()
    code, out, _ = run("verify", db_path)
    assert code == 1 and "TRIGGERS MISSING: journal_events_no_delete" in out
    assert out.startswith("NOT OK: the chain verifies (6 events")
    code, out, _ = run("doctor", db_path, "--json")
    assert code == 1 and json.loads(out)["database"]["missing_triggers"] == \
        ["journal_events_no_delete"]
    code, out, _ = run("doctor", db_path)
    assert code == 1 and "MISSING: journal_events_no_delete" in out
    code, _, err = run("append", db_path, "k")
    assert code == 2 and "journal_events_no_delete are missing" in err


def test_doctor_on_a_healthy_journal(db_path):
    recs = journal(db_path)
    code, out, _ = run("doctor", db_path, "--json")
    db = json.loads(out)["database"]
    assert code == 0 and db["missing_triggers"] == [] and db["events"] == 6
    assert db["head"] == {"seq": 6, "hash": recs[5].hash}
