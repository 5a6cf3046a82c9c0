//! Holdfast's storage: raw events (the source of truth), derived orders and credits, the change log, the
//! chain cursor and the reorg window, on SQLite ([`SqliteStore`], the embedded default) or Postgres
//! ([`PgStore`]); [`Store`] picks one at runtime from a URL.
//!
//! - Readers are small traits over the store: [`ChainReader`], [`OrderReader`], [`FeedReader`].
//! - Webhook subscriptions and the delivery queue: [`WebhookStore`].
//! - Writes of an indexing step go through one database transaction, [`Storage::begin`], whose writer
//!   traits ([`EventWriter`], [`OrderWriter`], [`LedgerWriter`], [`ChangeWriter`], [`CursorWriter`],
//!   [`OutboxWriter`]) each
//!   say exactly what they persist; nothing is visible to readers until [`WriteTx::commit`]. The indexer
//!   drives a step: insert events → load the touched orders → derive (pure, `holdfast_primitives::derive`)
//!   → write what derivation returned → move the cursor → commit.
//! - The store holds no domain logic: it stores and loads values. Each backend is one module with its own
//!   SQL and migrations (`migrations/sqlite`, `migrations/postgres`).

use std::{collections::HashMap, future::Future};

use alloy::primitives::{Address, B256, BlockNumber, U256};
use holdfast_primitives::{
    BlockRef, ChainMeta, Change, DecodedEvent, EscrowEvent, Heights, OrderKey, OrderState, OrderStatus,
    RawEvent, Reconciliation,
    change::{LastChange, NewChange},
    derive::{AnomalyRecord, CreditKey},
};

mod any;
mod error;
mod indexes;
mod lease;
mod postgres;
mod query;
mod rows;
mod sqlite;
mod webhook;

pub use any::AnyTx;
pub use error::{Error, Result};
pub use lease::{LeaseRecord, WriterLease};
pub use postgres::{COMMIT_CHANNEL, PgStore, PgTx};
pub use rows::EncodedOrder;
pub use sqlite::{SqliteStore, SqliteTx};
pub use webhook::{
    AfterAttempt, Attempt, AttemptRecord, AttemptResult, Claim, Delivery, DeliveryStatus, NewSubscription,
    OutboxWriter, QueueStats, Subscription, SubscriptionState, WebhookStore, now_ms,
};

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Insertion sequence number.
    pub seq: i64,
    /// Raw log.
    pub raw: RawEvent,
    /// Decoded event.
    pub event: EscrowEvent,
    /// Whether a reorg removed it from the canonical chain.
    pub reverted: bool,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    /// Derived state.
    pub state: OrderState,
}

/// Filters for listing orders; results in lock order (block, log index), keyset-paginated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Chain id.
    pub chain_id: Option<u64>,
    /// Escrow.
    pub escrow: Option<Address>,
    /// Payer.
    pub payer: Option<Address>,
    /// Payee.
    pub payee: Option<Address>,
    /// Arbiter.
    pub arbiter: Option<Address>,
    /// Status.
    pub status: Option<OrderStatus>,
    /// Locked at or after (unix seconds).
    pub locked_from: Option<u64>,
    /// Locked before (unix seconds).
    pub locked_to: Option<u64>,
    /// Continue after this (lock block, lock log index).
    pub after: Option<(u64, u64)>,
    /// Page size.
    pub limit: u32,
}

/// Reads the indexer's own bookkeeping.
pub trait ChainReader {
    /// The chain's indexing state, if it was ever indexed.
    fn chain_meta(&self, chain_id: u64) -> impl Future<Output = Result<Option<ChainMeta>>> + Send;
    /// Remembered headers above `from` (inclusive), ascending.
    fn blocks_from(
        &self,
        chain_id: u64,
        from: BlockNumber,
    ) -> impl Future<Output = Result<Vec<BlockRef>>> + Send;
}

/// Reads orders and events.
pub trait OrderReader {
    /// One order. With `escrow` `None`, the first escrow that has this order id.
    fn order(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        order_id: B256,
    ) -> impl Future<Output = Result<Option<OrderState>>> + Send;
    /// A page of orders.
    fn orders(&self, filter: &OrderFilter) -> impl Future<Output = Result<Vec<OrderState>>> + Send;
    /// An order's events, reverted ones included, in chain order.
    fn order_events(
        &self,
        chain_id: u64,
        escrow: Address,
        order_id: B256,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;
    /// A transaction's events, reverted ones included.
    fn tx_events(&self, tx_hash: B256) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;
    /// Sum of remainders and of credits of an escrow, as derived.
    fn escrow_liabilities(
        &self,
        chain_id: u64,
        escrow: Address,
    ) -> impl Future<Output = Result<(U256, U256)>> + Send;
    /// The live credit events of `account` (payouts credited to it, its withdrawals), of every chain and
    /// escrow or only of `chain_id`/`escrow`, in chain order (chain id, escrow, block, log index).
    fn account_credit_events(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        account: Address,
    ) -> impl Future<Output = Result<Vec<StoredEvent>>> + Send;
    /// The latest reconciliation of each escrow of the chain.
    fn reconciliations(&self, chain_id: u64) -> impl Future<Output = Result<Vec<Reconciliation>>> + Send;
    /// Count of (non-reverted) events and orders of a chain.
    fn counts(&self, chain_id: u64) -> impl Future<Output = Result<(u64, u64)>> + Send;
}

/// Reads the change log and the indexing state of every chain (for the API's change feed and waiters).
pub trait FeedReader {
    /// The indexing state of every chain in the store, by chain id.
    fn chain_metas(&self) -> impl Future<Output = Result<Vec<ChainMeta>>> + Send;
    /// The sequence number of the newest change-log entry (0 if the log is empty).
    fn last_change_seq(&self) -> impl Future<Output = Result<i64>> + Send;
    /// The position through which superseded change-log entries may have been deleted (0: none ever were):
    /// a reader resuming from an older position may miss changes and must resync.
    fn compacted_through(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Up to `limit` change-log entries with `after < seq <= upto`, ascending, matching `filter` (its
    /// `after` and `limit` are ignored). Retractions match the filter's fixed fields (chain, escrow, payer,
    /// payee, arbiter, lock time) of the retracted state and ignore its `status`, so that a reader filtering
    /// by status still learns that a state it was sent no longer holds. With a `status`, an update to
    /// another status also matches when the order's previous entry announced the filtered status (the order
    /// leaves the filter): its state's status then differs from the filter's.
    fn changes(
        &self,
        after: i64,
        upto: i64,
        filter: &OrderFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Change>>> + Send;
}

/// Where a page of an order-by-order event scan ends: (escrow, order id, block number, log index).
pub type ScanPosition = (Address, B256, BlockNumber, u64);

/// Records chain state outside an indexing step (each call its own transaction).
pub trait MetaWriter {
    /// Record new chain heights without moving the cursor.
    fn update_heights(&self, chain_id: u64, heights: Heights) -> impl Future<Output = Result<()>> + Send;
    /// Delete everything stored about a chain (events, orders, credits, anomalies, headers, cursor).
    fn reset_chain(&self, chain_id: u64) -> impl Future<Output = Result<()>> + Send;
    /// Refresh the query planner's statistics of the event, order and change-log tables (Postgres:
    /// `ANALYZE`; nothing on SQLite, whose planner uses none unless asked to). A re-derivation reads them
    /// whole, and on tables filled since their last statistics Postgres planned it 2.4–3.7× slower
    /// (BENCHMARKS.md, issue 10).
    fn refresh_statistics(&self) -> impl Future<Output = Result<()>> + Send;
    /// Record a reconciliation result (replacing the escrow's previous one).
    fn record_reconciliation(&self, r: &Reconciliation) -> impl Future<Output = Result<()>> + Send;
    /// Record `upto` as the position change-log entries may be missing through
    /// ([`FeedReader::compacted_through`]; never lowered).
    fn mark_compacted(&self, upto: i64) -> impl Future<Output = Result<()>> + Send;
    /// Delete up to `batch` change-log entries at or below position `upto` that a newer entry of the same
    /// order supersedes, in one transaction; returns how many.
    fn delete_superseded_changes(&self, upto: i64, batch: u32) -> impl Future<Output = Result<u64>> + Send;
    /// Change-log retention: delete every change-log entry at or below position `upto` that a newer entry
    /// of the same order supersedes (each order keeps its latest entry), `batch` per transaction. First
    /// records `upto` as the position entries may be missing through, so a reader never sees an entry gone
    /// without being able to tell. Returns how many were deleted.
    fn compact_changes(&self, upto: i64, batch: u32) -> impl Future<Output = Result<u64>> + Send
    where
        Self: Sync,
    {
        async move {
            self.mark_compacted(upto).await?;
            let batch = batch.max(1);
            let mut deleted = 0;
            loop {
                let n = self.delete_superseded_changes(upto, batch).await?;
                deleted += n;
                if n < u64::from(batch) {
                    return Ok(deleted);
                }
            }
        }
    }
}

/// Secondary indexes built once, after a store's first backfill, instead of row by row during it: on a store
/// that holds no events yet, the read path's indexes (those no indexing write reads: orders by payer,
/// payee, status, …; events by order, block, transaction) are dropped, and built in one pass when the
/// backfill reaches the finalized height: one sorted build per index instead of a dozen B-tree inserts per
/// row. Reads stay correct meanwhile, only slower.
///
/// Crash safety: dropping the indexes and recording that they are deferred is one transaction, and so is
/// building them all and clearing the record (DDL is transactional on both backends). A crash in the bulk
/// phase leaves them deferred, and the restarted indexer goes on and builds them; a crash during the build
/// rolls it back whole, and the next call builds them again.
pub trait DeferredIndexes {
    /// Whether this backend defers by default (the indexer's choice when its configuration does not say).
    /// Measured at 1M events (BENCHMARKS.md, issue 10): on Postgres the build costs about what the
    /// row-by-row upkeep does (~10 s each), and is expected to win once the indexes outgrow the buffer cache
    /// and row-by-row inserts turn into random reads (not measured); on SQLite the one-threaded build (8 s)
    /// cost more than it saved.
    fn defers_by_default(&self) -> bool;
    /// If the store holds no events (of any chain), drop the deferrable indexes and record that they are
    /// deferred, in one transaction. Returns whether they are deferred now: also `true` when they already
    /// were, and `false` (nothing changed) on a store that holds events.
    fn defer_indexes(&self) -> impl Future<Output = Result<bool>> + Send;
    /// Build every deferred index (and refresh the planner's statistics, on Postgres) and clear the record,
    /// in one transaction. Returns whether anything was deferred; `false`: a no-op.
    fn build_deferred_indexes(&self) -> impl Future<Output = Result<bool>> + Send;
    /// Whether the indexes are deferred now.
    fn indexes_deferred(&self) -> impl Future<Output = Result<bool>> + Send;
}

/// A store whose indexing steps run in one transaction each.
pub trait Storage {
    /// The transaction.
    type Tx: WriteTx + Send;
    /// Begin a transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;
}

/// Every write of one indexing step, made visible together by [`WriteTx::commit`] (dropped uncommitted:
/// rolled back).
pub trait WriteTx:
    EventWriter + OrderWriter + LedgerWriter + ChangeWriter + CursorWriter + OutboxWriter
{
    /// Commit.
    fn commit(self) -> impl Future<Output = Result<()>> + Send;
}

/// Raw events: inserted once, marked reverted by a reorg (never deleted), read back to re-derive.
pub trait EventWriter {
    /// Insert `events` (no two with the same block hash and log index). Returns, for each, whether it is to
    /// be applied: new, or reverted earlier and live again. An event already live is left as it is.
    fn insert_events(&mut self, events: &[&DecodedEvent]) -> impl Future<Output = Result<Vec<bool>>> + Send;
    /// Mark every live event of the chain above `block` reverted; returns how many.
    fn revert_events_above(
        &mut self,
        chain_id: u64,
        block: BlockNumber,
    ) -> impl Future<Output = Result<u64>> + Send;
    /// The orders with live events above `block`.
    fn orders_with_events_above(
        &mut self,
        chain_id: u64,
        block: BlockNumber,
    ) -> impl Future<Output = Result<Vec<OrderKey>>> + Send;
    /// Whether any live credit event (deferred payout, withdrawal) lies above `block`.
    fn credit_events_above(
        &mut self,
        chain_id: u64,
        block: BlockNumber,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// The live events of one order, in chain order.
    fn live_order_events(
        &mut self,
        chain_id: u64,
        key: OrderKey,
    ) -> impl Future<Output = Result<Vec<DecodedEvent>>> + Send;
    /// Every live credit event of the chain, in chain order.
    fn live_credit_events(&mut self, chain_id: u64)
    -> impl Future<Output = Result<Vec<DecodedEvent>>> + Send;
    /// Up to `limit` live order events ordered by (escrow, order id, block, log index), after `after`.
    /// Re-derivation's scan. A transaction that has not written to `events` sees the events as committed,
    /// and a backend may read them off the writer connection (SQLite does).
    fn live_events_by_order(
        &mut self,
        chain_id: u64,
        after: Option<ScanPosition>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DecodedEvent>>> + Send;
}

/// Derived orders: one row per order, holding its whole state.
pub trait OrderWriter {
    /// The stored states of `keys` (missing ones are absent from the map).
    fn load_orders(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> impl Future<Output = Result<HashMap<OrderKey, OrderState>>> + Send;
    /// The stored orders with `after < key <= upto` (`None`: unbounded), ascending by key, as stored (to
    /// compare with derived states).
    fn orders_in_range(
        &mut self,
        chain_id: u64,
        after: Option<OrderKey>,
        upto: Option<OrderKey>,
    ) -> impl Future<Output = Result<Vec<(OrderKey, EncodedOrder)>>> + Send;
    /// Insert or replace `orders` (their chain id is their own). With `log`, also append one
    /// `order_updated` change-log entry per order, in the order given, as [`ChangeWriter::append_changes`]
    /// would (each state is encoded once for both).
    fn upsert_orders(&mut self, orders: &[OrderState], log: bool) -> impl Future<Output = Result<()>> + Send;
    /// Delete the orders `keys`.
    fn delete_orders(&mut self, chain_id: u64, keys: &[OrderKey]) -> impl Future<Output = Result<()>> + Send;
}

/// Anomalies and credit balances.
pub trait LedgerWriter {
    /// Record anomalies (one per event: a repeat of the same block hash and log index is ignored).
    fn insert_anomalies(&mut self, rows: &[AnomalyRecord]) -> impl Future<Output = Result<()>> + Send;
    /// Forget the anomalies of the chain above `block` (`None`: all of them).
    fn delete_anomalies(
        &mut self,
        chain_id: u64,
        above: Option<BlockNumber>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The credit balances of `keys` (missing: none recorded).
    fn load_credits(
        &mut self,
        chain_id: u64,
        keys: &[CreditKey],
    ) -> impl Future<Output = Result<HashMap<CreditKey, U256>>> + Send;
    /// Set credit balances.
    fn put_credits(
        &mut self,
        chain_id: u64,
        credits: &[(CreditKey, U256)],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Delete every credit balance of the chain.
    fn clear_credits(&mut self, chain_id: u64) -> impl Future<Output = Result<()>> + Send;
}

/// The change log (the API's change feed): append-only, sequence numbers in commit order.
pub trait ChangeWriter {
    /// The last entry of each of `keys` that has one.
    fn last_changes(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> impl Future<Output = Result<HashMap<OrderKey, LastChange>>> + Send;
    /// Append entries, in order. Serialised with every other writer until the commit, so that sequence
    /// numbers become visible in order.
    fn append_changes(&mut self, rows: &[NewChange]) -> impl Future<Output = Result<()>> + Send;
}

/// The cursor and the remembered headers (the reorg window).
pub trait CursorWriter {
    /// Remember headers (replacing any at the same heights).
    fn put_blocks(&mut self, chain_id: u64, blocks: &[BlockRef]) -> impl Future<Output = Result<()>> + Send;
    /// Forget the headers below `number`.
    fn forget_blocks_below(
        &mut self,
        chain_id: u64,
        number: BlockNumber,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Forget the headers above `number`.
    fn forget_blocks_above(
        &mut self,
        chain_id: u64,
        number: BlockNumber,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Move the cursor forward (creating the chain's record with `genesis_hash` on the first step).
    fn advance_cursor(
        &mut self,
        chain_id: u64,
        genesis_hash: B256,
        cursor: &BlockRef,
        heights: Heights,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Move the cursor back to `fork` (a reorg), keeping the recorded heights.
    fn rewind_cursor(&mut self, chain_id: u64, fork: &BlockRef) -> impl Future<Output = Result<()>> + Send;
}

/// A store picked at runtime from its URL: `sqlite://path` or `postgres://…`.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite (WAL).
    Sqlite(SqliteStore),
    /// Postgres.
    Postgres(PgStore),
}

impl Store {
    /// Connect and run the backend's migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(url).await?))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::connect(url).await?))
        } else {
            Err(Error::UnsupportedUrl(url.to_string()))
        }
    }

    /// Close every pooled connection (waits for checked-out ones to return).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.pool().close().await,
        }
    }

    /// Wake-ups on other processes' commits (Postgres: [`PgStore::commit_signals`]); `None` on SQLite, where
    /// readers poll (a file store has one host and no notification channel).
    pub fn commit_signals(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(s) => Some(s.commit_signals()),
        }
    }

    /// A handle on the same database (the same pool) with no writer fence of its own yet: give one to each
    /// chain a process indexes, so that fencing one chain's writes ([`PgStore::fence_writes`]) leaves the
    /// other chains' handles alone. Clones share their fence; this does not.
    pub fn unfenced(&self) -> Self {
        match self {
            Self::Sqlite(s) => Self::Sqlite(s.clone()),
            Self::Postgres(s) => Self::Postgres(s.unfenced()),
        }
    }

    /// Backend name.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Unix time now (seconds).
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
