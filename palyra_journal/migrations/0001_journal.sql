-- The event journal (docs/journal.md): append-only rows chained by SHA-256.
CREATE TABLE journal_events (
    seq                INTEGER PRIMARY KEY,
    event_id           TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    actor              TEXT NOT NULL,
    session_id         TEXT,
    run_id             TEXT,
    principal          TEXT,
    device_id          TEXT,
    channel            TEXT,
    timestamp_unix_ms  INTEGER NOT NULL,
    payload_json       TEXT NOT NULL,
    redacted           INTEGER NOT NULL,
    hash               TEXT,
    prev_hash          TEXT,
    created_at_unix_ms INTEGER NOT NULL
);
CREATE INDEX journal_events_session ON journal_events(session_id, seq);
CREATE INDEX journal_events_run ON journal_events(run_id, seq);
CREATE INDEX journal_events_kind ON journal_events(kind, seq);
CREATE INDEX journal_events_created ON journal_events(created_at_unix_ms);
CREATE TRIGGER journal_events_no_update BEFORE UPDATE ON journal_events
BEGIN
    SELECT RAISE(ABORT, 'journal_events is append-only');
END;
CREATE TRIGGER journal_events_no_delete BEFORE DELETE ON journal_events
BEGIN
    SELECT RAISE(ABORT, 'journal_events is append-only');
END;
