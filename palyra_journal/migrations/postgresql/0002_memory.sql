-- Memory (docs/memory.md), PostgreSQL twin of ../0002_memory.sql. Full text is a tsvector column
-- in the 'simple' configuration (every language matched as written, no stemming) with a GIN index,
-- kept in step by PostgreSQL itself (a generated column) where SQLite needs an FTS5 table and
-- triggers. ASCII punctuation is made a separator first, so that e-mail addresses, host names,
-- URLs and dotted numbers are indexed word by word as FTS5's unicode61 does (PostgreSQL's parser
-- would keep each as one token). rowid columns stand for SQLite's implicit rowid: the insertion
-- order of the rows.
CREATE TABLE memory_items (
    memory_id          TEXT PRIMARY KEY,
    principal          TEXT NOT NULL,
    channel            TEXT,
    session_id         TEXT,
    source             TEXT NOT NULL,
    content            TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    tags_json          TEXT NOT NULL,
    confidence         DOUBLE PRECISION,
    ttl_unix_ms        BIGINT,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    rowid              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
-- The words are lowercased and punctuation is found by Unicode's rules (the ICU root collation)
-- when the server has ICU, whatever the database's LC_CTYPE: under LC_CTYPE=C, lower() and the
-- regular expression classes would leave every non-ASCII letter as it is.
DO $$
DECLARE
    text_expr TEXT := 'content';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
        text_expr := 'content COLLATE "und-x-icu"';
    END IF;
    EXECUTE format($f$ALTER TABLE memory_items ADD COLUMN content_tsv TSVECTOR GENERATED ALWAYS AS
                   (to_tsvector('simple', lower(regexp_replace(%s, '[[:punct:]]+', ' ', 'g'))))
                   STORED$f$, text_expr);
END
$$;
CREATE INDEX memory_items_scope ON memory_items(principal, channel, session_id, created_at_unix_ms DESC);
CREATE INDEX memory_items_ttl ON memory_items(ttl_unix_ms);
CREATE INDEX memory_items_source ON memory_items(source);
CREATE INDEX memory_items_fts ON memory_items USING GIN (content_tsv);

CREATE TABLE memory_vectors (
    memory_id           TEXT PRIMARY KEY REFERENCES memory_items(memory_id) ON DELETE CASCADE,
    model               TEXT NOT NULL,
    dims                BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    vector              BYTEA NOT NULL,
    embedded_at_unix_ms BIGINT NOT NULL,
    rowid               BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX memory_vectors_model ON memory_vectors(model, dims, version);

CREATE TABLE memory_maintenance_state (
    id                     INTEGER PRIMARY KEY CHECK (id = 1),
    ran_at_unix_ms         BIGINT NOT NULL,
    deleted_expired        BIGINT NOT NULL,
    deleted_ttl            BIGINT NOT NULL,
    deleted_for_entries    BIGINT NOT NULL,
    deleted_for_bytes      BIGINT NOT NULL,
    entries_after          BIGINT NOT NULL,
    bytes_after            BIGINT NOT NULL,
    vacuumed               BIGINT NOT NULL,
    duration_ms            BIGINT NOT NULL
);

-- The counter bumped by every memory write, in the same transaction: every host reads it before a
-- search and reloads its vector index when another one changed memory.
CREATE TABLE memory_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO memory_generation(id, generation) VALUES (1, 0);
