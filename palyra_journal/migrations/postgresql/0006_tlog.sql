-- PostgreSQL twin of ../0006_tlog.sql. The Merkle tree over the journal (docs/verifiable.md):
-- full 256-wide tiles, C2SP tlog-tiles
-- numbering. A tile at level L, index N covers tree level 8L hashes N*256 .. N*256+255; partial
-- tiles at the right edge are derived on demand, never stored. Tiles of an older journal are built
-- after this migration, resumably (tlog.build_tiles), not here.
CREATE TABLE tlog_tiles (
    level BIGINT NOT NULL,  -- L: the tile's entries are tree level 8L hashes
    idx   BIGINT NOT NULL,  -- N: entries N*256 .. N*256+255 of that level
    root  BYTEA NOT NULL,     -- 32 bytes: the root of the tile's subtree (entry N of level L+1)
    nodes BYTEA NOT NULL,     -- 510 hashes: the 256 entries, then the 128, 64, ..., 2 above them
    PRIMARY KEY (level, idx)
);
CREATE TRIGGER tlog_tiles_no_update BEFORE UPDATE ON tlog_tiles
    FOR EACH ROW EXECUTE FUNCTION palyra_refuse('tlog_tiles is append-only');
CREATE TRIGGER tlog_tiles_no_delete BEFORE DELETE ON tlog_tiles
    FOR EACH ROW EXECUTE FUNCTION palyra_refuse('tlog_tiles is append-only');
