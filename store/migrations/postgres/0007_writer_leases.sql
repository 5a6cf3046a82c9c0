-- One writer per chain (see PgStore::try_acquire_writer): the writer holds a session-level advisory lock on
-- a connection of its own, and the epoch here is bumped by every process that acquires it. Every indexing
-- transaction of a fenced store handle reads its chain's row (FOR SHARE) and refuses to write when the epoch
-- is no longer its own: a writer that lost its lock (a pause, a partition) cannot commit afterwards.
CREATE TABLE writer_leases (
    chain_id BIGINT PRIMARY KEY,
    epoch    BIGINT NOT NULL,
    holder   TEXT   NOT NULL,  -- who acquired it last (process id and host, for the operator)
    since    BIGINT NOT NULL   -- unix seconds
);
