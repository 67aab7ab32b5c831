-- The event journal (docs/journal.md), PostgreSQL twin of ../0001_journal.sql: the same columns
-- and values; INTEGER columns are BIGINT (Unix ms), triggers are PL/pgSQL.
-- journal_head is the one row every write transaction locks FOR UPDATE first: the writers of every
-- process and host take turns on it, so seq stays one gapless chain (docs/postgres.md).
CREATE TABLE journal_head (
    id INTEGER PRIMARY KEY CHECK (id = 1)
);
INSERT INTO journal_head (id) VALUES (1);

CREATE TABLE journal_events (
    seq                BIGINT PRIMARY KEY,
    event_id           TEXT NOT NULL UNIQUE,
    kind               TEXT NOT NULL,
    actor              TEXT NOT NULL,
    session_id         TEXT,
    run_id             TEXT,
    principal          TEXT,
    device_id          TEXT,
    channel            TEXT,
    timestamp_unix_ms  BIGINT NOT NULL,
    payload_json       TEXT NOT NULL,
    redacted           SMALLINT NOT NULL,
    hash               TEXT,
    prev_hash          TEXT,
    created_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX journal_events_session ON journal_events(session_id, seq);
CREATE INDEX journal_events_run ON journal_events(run_id, seq);
CREATE INDEX journal_events_kind ON journal_events(kind, seq);
CREATE INDEX journal_events_created ON journal_events(created_at_unix_ms);

-- The guard of every append-only table: refuses the statement with the message it is given.
CREATE FUNCTION palyra_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER journal_events_no_update BEFORE UPDATE ON journal_events
    FOR EACH ROW EXECUTE FUNCTION palyra_refuse('journal_events is append-only');
CREATE TRIGGER journal_events_no_delete BEFORE DELETE ON journal_events
    FOR EACH ROW EXECUTE FUNCTION palyra_refuse('journal_events is append-only');
CREATE TRIGGER journal_events_no_truncate BEFORE TRUNCATE ON journal_events
    FOR EACH STATEMENT EXECUTE FUNCTION palyra_refuse('journal_events is append-only');
