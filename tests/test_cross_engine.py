"""The same bytes on both engines: the same events appended to a SQLite file and to a PostgreSQL
database give the same ``payload_json``, ``hash``, head and Merkle root, and an export from either
engine ingested into the other reproduces the head (the migration path of docs/postgres.md).

Both stores run on one fixed clock and the events carry their own ids and timestamps, so every
column of every event is compared, not only the hashes.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from palyra_journal import JournalStore

pytestmark = pytest.mark.postgresql  # needs both engines at once: in the PostgreSQL half

T0 = 1_700_000_000_000


def _clock() -> int:
    return T0


def _events(n: int, seed: int) -> list[dict]:
    """Envelopes with every field, nested payloads, numbers, non-ASCII text and secrets."""
    rng = random.Random(seed)
    words = ["tool", "naïve", "東京", "Příliš žluťoučký", "emoji 🦜", "quote \" and \\", "tab\tnl\n", ""]
    out = []
    for i in range(n):
        payload = {
            "i": i, "ok": rng.random() < 0.5, "ratio": rng.random() * 10 ** rng.randint(-8, 12),
            "neg": -rng.randint(0, 2 ** 53), "text": rng.choice(words), "none": None,
            "nested": {"list": [rng.randint(-5, 5) for _ in range(rng.randint(0, 4))],
                       "z": {"é": rng.choice(words)}},
        }
        if i % 7 == 0:
            payload["api_key"] = f"sk-live-{rng.getrandbits(64):016x}"  # redacted before hashing
        if i % 11 == 0:
            payload["headers"] = {"Authorization": "Bearer abc.def.ghi"}
        out.append({"kind": rng.choice(["tool.executed", "run.started", "step.done"]),
                    "payload": payload, "event_id": f"ev-{seed}-{i:05d}", "actor": f"agent{i % 3}",
                    "session_id": f"s{i % 4}", "run_id": None if i % 5 else f"r{i}",
                    "principal": "user:ada", "device_id": None, "channel": "cli" if i % 2 else None,
                    "timestamp_unix_ms": T0 + i})
    return out


def _rows(store) -> list[dict]:
    return [e.to_dict() for e in store.iter_events()]


def _same_journal(a, b) -> None:
    assert a.engine != b.engine
    assert _rows(a) == _rows(b)
    assert a.head() == b.head()
    assert a.tree_head() == b.tree_head()
    assert a.verify().ok and b.verify().ok


def test_same_events_give_the_same_bytes_on_both_engines(tmp_path, postgres_url, backend):
    events = _events(600, seed=1)
    with JournalStore.open(tmp_path / "j.db", clock=_clock) as lite, \
            JournalStore.open(postgres_url, clock=_clock) as pg:
        assert (lite.engine, pg.engine) == ("sqlite", "postgresql")
        for store in (lite, pg):  # batches and single appends, as a pipeline and a service write
            store.append_many(events[:500])
            for ev in events[500:]:
                store.append(ev["kind"], ev["payload"], **{k: v for k, v in ev.items()
                                                          if k not in ("kind", "payload")})
        _same_journal(lite, pg)
        assert "sk-live-" not in "".join(r["payload_json"] for r in _rows(pg))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53 + 1, 2 ** 53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12))
def test_generated_payloads_hash_the_same_on_both_engines(tmp_path, postgres_url, payload):
    with JournalStore.open(tmp_path / "j.db", clock=_clock) as lite, \
            JournalStore.open(postgres_url, clock=_clock) as pg:
        value = {"v": payload}  # an object: a str payload would be read as JSON text
        a = lite.append("gen", value, event_id=f"e{lite.head().seq if lite.head() else 0}",
                        timestamp_unix_ms=T0)
        b = pg.append("gen", value, event_id=a.event_id, timestamp_unix_ms=T0)
        assert (b.payload_json, b.hash, b.prev_hash, b.seq) == (a.payload_json, a.hash, a.prev_hash, a.seq)
        assert pg.head() == lite.head()


def test_an_export_ingested_into_the_other_engine_reproduces_the_head(tmp_path, postgres_url, backend):
    source = tmp_path / "source.db"
    with JournalStore.open(source) as lite:  # the wall clock: the export carries the timestamps
        lite.append_many(_events(1_500, seed=2))
        lite.export_jsonl(tmp_path / "from-sqlite.jsonl")
        with JournalStore.open(postgres_url) as pg:  # SQLite -> PostgreSQL
            assert pg.ingest_jsonl(tmp_path / "from-sqlite.jsonl", batch_size=400) == 1_500
            assert pg.head() == lite.head()
            assert pg.verify(expected_head=lite.head()).ok
            assert pg.tree_head() == lite.tree_head()
            pg.export_jsonl(tmp_path / "from-postgresql.jsonl")
    with JournalStore.open(tmp_path / "back.db") as back:  # and back: PostgreSQL -> SQLite
        back.ingest_jsonl(tmp_path / "from-postgresql.jsonl")
        with JournalStore.open(source, read_only=True) as lite:
            assert back.head() == lite.head()
    assert _lines(tmp_path / "from-postgresql.jsonl") == _lines(tmp_path / "from-sqlite.jsonl")


def _lines(path) -> list[dict]:
    """An export's lines without what describes the store's own write of the row, not the event
    (neither is hashed, and ``ingest_jsonl`` ignores both): ``created_at_unix_ms``, and
    ``redacted`` (an ingested payload was redacted before its export: nothing is left to redact)."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        del line["created_at_unix_ms"], line["redacted"]
    return lines
