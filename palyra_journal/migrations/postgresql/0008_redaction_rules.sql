-- PostgreSQL twin of ../0008_redaction_rules.sql.
-- Which redaction rules wrote which events (docs/journal.md "Redaction rules version"). Each row
-- says: events from from_seq on, up to the next row's from_seq, were redacted by rules_version
-- ("2", or "2+custom" when the store was opened with extra RedactionRules). Stored payloads keep
-- the redaction they were written with, so a change of rules never changes an existing hash.
CREATE TABLE journal_redaction_rules (
    from_seq            BIGINT PRIMARY KEY,
    rules_version       TEXT NOT NULL,
    recorded_at_unix_ms BIGINT NOT NULL
);

-- Events written before this table existed were redacted by rules v1.
INSERT INTO journal_redaction_rules (from_seq, rules_version, recorded_at_unix_ms)
    SELECT MIN(seq), '1', CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
    FROM journal_events HAVING COUNT(*) > 0;
