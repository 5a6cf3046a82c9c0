//! The secondary indexes a store's first backfill defers ([`crate::DeferredIndexes`]): the read path's
//! indexes, which no write of an indexing step reads. What the writes read stays: the primary keys, the
//! events' `(chain_id, block_hash, log_index)` key (the duplicate check) and the change log's by-order
//! index (retractions, compaction). Both backends accept the same statements; a test checks that a build
//! restores exactly the indexes the migrations create.

/// Whether the indexes are deferred now.
pub(crate) const IS_DEFERRED: &str = "SELECT EXISTS (SELECT 1 FROM deferred_indexes)";
/// Whether they are deferred, and whether the store holds any event (a store with events keeps them).
pub(crate) const DEFERRED_AND_HAS_EVENTS: &str =
    "SELECT EXISTS (SELECT 1 FROM deferred_indexes), EXISTS (SELECT 1 FROM events)";
/// Record that they are deferred (`$1`: unix seconds).
pub(crate) const RECORD_DEFERRED: &str = "INSERT INTO deferred_indexes (id, since) VALUES (1, $1)";
/// Clear the record, after the build.
pub(crate) const CLEAR_DEFERRED: &str = "DELETE FROM deferred_indexes";

/// `(name, statement that creates it)`, events' indexes first, then the orders'.
pub(crate) const DEFERRABLE: &[(&str, &str)] = &[
    (
        "events_by_order",
        "CREATE INDEX IF NOT EXISTS events_by_order ON events (chain_id, escrow, order_id, block_number, log_index)",
    ),
    ("events_by_block", "CREATE INDEX IF NOT EXISTS events_by_block ON events (chain_id, block_number)"),
    ("events_by_tx", "CREATE INDEX IF NOT EXISTS events_by_tx ON events (tx_hash)"),
    (
        "events_credit",
        "CREATE INDEX IF NOT EXISTS events_credit ON events (chain_id, escrow, block_number, log_index) \
         WHERE kind IN ('payout_deferred', 'withdrawn')",
    ),
    ("orders_by_lock", "CREATE INDEX IF NOT EXISTS orders_by_lock ON orders (lock_block, lock_log_index)"),
    (
        "orders_by_payer",
        "CREATE INDEX IF NOT EXISTS orders_by_payer ON orders (payer, lock_block, lock_log_index)",
    ),
    (
        "orders_by_payee",
        "CREATE INDEX IF NOT EXISTS orders_by_payee ON orders (payee, lock_block, lock_log_index)",
    ),
    (
        "orders_by_status",
        "CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, lock_block, lock_log_index)",
    ),
    (
        "orders_by_arbiter",
        "CREATE INDEX IF NOT EXISTS orders_by_arbiter ON orders (arbiter, lock_block, lock_log_index)",
    ),
    (
        "orders_by_order_id_chain",
        "CREATE INDEX IF NOT EXISTS orders_by_order_id_chain ON orders (order_id, chain_id, escrow)",
    ),
    (
        "orders_by_payee_status",
        "CREATE INDEX IF NOT EXISTS orders_by_payee_status ON orders \
         (payee, status, lock_block, lock_log_index, chain_id, escrow)",
    ),
    (
        "orders_by_payer_status",
        "CREATE INDEX IF NOT EXISTS orders_by_payer_status ON orders \
         (payer, status, lock_block, lock_log_index, chain_id, escrow)",
    ),
];
