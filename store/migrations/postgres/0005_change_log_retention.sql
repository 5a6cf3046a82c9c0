-- Change-log retention: entries of the `changes` table superseded by a newer entry of the same order are
-- deleted once they are older than the retention (see `MetaWriter::compact_changes`); every order keeps its
-- latest entry. `compacted_through` is the highest position up to which entries may be missing: a reader
-- resuming from an older position is told to resync instead of silently missing changes.
CREATE TABLE change_log (
    id                BIGINT PRIMARY KEY CHECK (id = 1),
    compacted_through BIGINT NOT NULL
);
INSERT INTO change_log (id, compacted_through) VALUES (1, 0);
