-- Memory (docs/memory.md): items, their FTS5 index, their embeddings, and maintenance figures.
CREATE TABLE memory_items (
    memory_id          TEXT PRIMARY KEY,
    principal          TEXT NOT NULL,
    channel            TEXT,
    session_id         TEXT,
    source             TEXT NOT NULL,
    content            TEXT NOT NULL,
    content_hash       TEXT NOT NULL,
    tags_json          TEXT NOT NULL,
    confidence         REAL,
    ttl_unix_ms        INTEGER,
    created_at_unix_ms INTEGER NOT NULL,
    updated_at_unix_ms INTEGER NOT NULL
);
CREATE INDEX memory_items_scope ON memory_items(principal, channel, session_id, created_at_unix_ms DESC);
CREATE INDEX memory_items_ttl ON memory_items(ttl_unix_ms);
CREATE INDEX memory_items_source ON memory_items(source);

-- External-content FTS5 table joined to memory_items by rowid, kept in step by the triggers below.
CREATE VIRTUAL TABLE memory_items_fts USING fts5(
    content,
    content='memory_items',
    content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);

CREATE TABLE memory_vectors (
    memory_id           TEXT PRIMARY KEY REFERENCES memory_items(memory_id) ON DELETE CASCADE,
    model               TEXT NOT NULL,
    dims                INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    vector              BLOB NOT NULL,
    embedded_at_unix_ms INTEGER NOT NULL
);
CREATE INDEX memory_vectors_model ON memory_vectors(model, dims, version);

CREATE TABLE memory_maintenance_state (
    id                     INTEGER PRIMARY KEY CHECK (id = 1),
    ran_at_unix_ms         INTEGER NOT NULL,
    deleted_expired        INTEGER NOT NULL,
    deleted_ttl            INTEGER NOT NULL,
    deleted_for_entries    INTEGER NOT NULL,
    deleted_for_bytes      INTEGER NOT NULL,
    entries_after          INTEGER NOT NULL,
    bytes_after            INTEGER NOT NULL,
    vacuumed               INTEGER NOT NULL,
    duration_ms            INTEGER NOT NULL
);

-- A counter bumped by every memory write, in the same transaction (MemoryStore bumps it once per
-- transaction: cheaper than a trigger per row), so that a store can tell cheaply whether another
-- connection changed memory since it loaded its vector index.
CREATE TABLE memory_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO memory_generation(id, generation) VALUES (1, 0);

CREATE TRIGGER memory_items_ai AFTER INSERT ON memory_items
BEGIN
    INSERT INTO memory_items_fts(rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER memory_items_ad AFTER DELETE ON memory_items
BEGIN
    INSERT INTO memory_items_fts(memory_items_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER memory_items_au_content AFTER UPDATE OF content ON memory_items
BEGIN
    INSERT INTO memory_items_fts(memory_items_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    INSERT INTO memory_items_fts(rowid, content) VALUES (new.rowid, new.content);
END;
