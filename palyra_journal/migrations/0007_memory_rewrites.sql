-- A counter of in-place memory changes (an item or vector updated, a vector deleted), bumped by
-- SQLite itself in the writing transaction. The vector snapshot beside the database
-- (docs/recall.md) records it: when only rows were added since (memory_generation moved, this did
-- not), the snapshot stays valid and the new rows are read from SQLite; otherwise it is rebuilt.
-- Inserts, the common write, fire nothing here.
CREATE TABLE memory_rewrites (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    count   INTEGER NOT NULL
);
INSERT INTO memory_rewrites(id, count) VALUES (1, 0);

CREATE TRIGGER memory_items_rewritten AFTER UPDATE ON memory_items
BEGIN
    UPDATE memory_rewrites SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER memory_vectors_rewritten AFTER UPDATE ON memory_vectors
BEGIN
    UPDATE memory_rewrites SET count = count + 1 WHERE id = 1;
END;
CREATE TRIGGER memory_vectors_deleted AFTER DELETE ON memory_vectors
BEGIN
    UPDATE memory_rewrites SET count = count + 1 WHERE id = 1;
END;
