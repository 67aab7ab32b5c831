-- PostgreSQL twin of ../0007_memory_rewrites.sql: the count of in-place memory changes (an item or
-- vector updated, a vector deleted), bumped by the database in the writing transaction.
CREATE TABLE memory_rewrites (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    count   BIGINT NOT NULL
);
INSERT INTO memory_rewrites(id, count) VALUES (1, 0);

CREATE FUNCTION palyra_count_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE memory_rewrites SET count = count + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER memory_items_rewritten AFTER UPDATE ON memory_items
    FOR EACH ROW EXECUTE FUNCTION palyra_count_rewrite();
CREATE TRIGGER memory_vectors_rewritten AFTER UPDATE ON memory_vectors
    FOR EACH ROW EXECUTE FUNCTION palyra_count_rewrite();
CREATE TRIGGER memory_vectors_deleted AFTER DELETE ON memory_vectors
    FOR EACH ROW EXECUTE FUNCTION palyra_count_rewrite();
