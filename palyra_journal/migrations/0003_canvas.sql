-- Canvas (docs/canvas.md): the latest state per canvas, one patch row per
-- version >= 2, and full snapshots at version 1, every canvas_snapshot_interval-th version and at
-- restores. Patches and snapshots are append-only: the history is evidence.
CREATE TABLE canvas_state (
    canvas_id          TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL,
    principal          TEXT NOT NULL,
    version            INTEGER NOT NULL CHECK (version >= 1),
    schema_version     INTEGER NOT NULL,
    state_json         TEXT NOT NULL,
    closed             INTEGER NOT NULL DEFAULT 0,
    close_reason       TEXT,
    created_at_unix_ms INTEGER NOT NULL,
    updated_at_unix_ms INTEGER NOT NULL
);
CREATE INDEX canvas_state_session ON canvas_state(session_id);
CREATE INDEX canvas_state_principal ON canvas_state(principal);
CREATE TABLE canvas_patches (
    id                 INTEGER PRIMARY KEY,
    canvas_id          TEXT NOT NULL REFERENCES canvas_state(canvas_id),
    version            INTEGER NOT NULL CHECK (version >= 2),
    base_version       INTEGER NOT NULL,
    patch_json         TEXT NOT NULL,
    actor_principal    TEXT,
    actor_device_id    TEXT,
    applied_at_unix_ms INTEGER NOT NULL,
    UNIQUE (canvas_id, version)
);
CREATE TABLE canvas_snapshots (
    canvas_id          TEXT NOT NULL REFERENCES canvas_state(canvas_id),
    version            INTEGER NOT NULL CHECK (version >= 1),
    state_json         TEXT NOT NULL,
    created_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (canvas_id, version)
) WITHOUT ROWID;
CREATE TRIGGER canvas_patches_no_update BEFORE UPDATE ON canvas_patches
BEGIN
    SELECT RAISE(ABORT, 'canvas_patches is append-only');
END;
CREATE TRIGGER canvas_patches_no_delete BEFORE DELETE ON canvas_patches
BEGIN
    SELECT RAISE(ABORT, 'canvas_patches is append-only');
END;
CREATE TRIGGER canvas_snapshots_no_update BEFORE UPDATE ON canvas_snapshots
BEGIN
    SELECT RAISE(ABORT, 'canvas_snapshots is append-only');
END;
CREATE TRIGGER canvas_snapshots_no_delete BEFORE DELETE ON canvas_snapshots
BEGIN
    SELECT RAISE(ABORT, 'canvas_snapshots is append-only');
END;
