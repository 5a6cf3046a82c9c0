-- Secondary indexes deferred during a store's first backfill (see holdfast_store::DeferredIndexes): a row
-- here means the read-path indexes listed in `store/src/indexes.rs` were dropped while the store was empty,
-- and are to be built once the backfill reaches the finalized height. Dropping them and recording it happen
-- in one transaction, and so do building them all and deleting the row: a crash in either phase leaves a
-- state the next start finishes.
CREATE TABLE deferred_indexes (
    id    BIGINT PRIMARY KEY CHECK (id = 1),
    since BIGINT NOT NULL  -- unix seconds
);
