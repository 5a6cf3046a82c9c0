//! Storage: raw events (the source of truth), derived orders and credits, the chain cursor and the reorg
//! window. Small reader/writer traits, one implementation per backend ([`SqliteStore`], [`PgStore`]), and
//! [`Store`] to pick one at runtime from a URL. Every write that moves the cursor happens in the same
//! transaction as the events and the derived state it covers.

use std::future::Future;

use alloy::primitives::{Address, B256, BlockNumber, U256};
use serde::{Deserialize, Serialize};

use crate::{
    Result,
    events::{DecodedEvent, EscrowEvent, RawEvent},
    state::{OrderState, OrderStatus},
};

mod query;
mod sql;
mod sqlite_read;
pub use sql::{PgStore, SqliteStore};

/// A block header as remembered for reorg detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Number.
    pub number: BlockNumber,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Timestamp.
    pub timestamp: u64,
}

/// Chain heights as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heights {
    /// Latest block.
    pub head: BlockNumber,
    /// Latest safe block.
    pub safe: BlockNumber,
    /// Latest finalized block.
    pub finalized: BlockNumber,
}

/// Per-chain indexing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainMeta {
    /// Chain id.
    pub chain_id: u64,
    /// Hash of block 0, to recognise a reset chain.
    pub genesis_hash: B256,
    /// Last fully indexed block.
    pub cursor: BlockNumber,
    /// Its hash.
    pub cursor_hash: B256,
    /// Heights when the cursor last moved.
    pub heights: Heights,
    /// Unix time of the last update.
    pub updated_at: u64,
}

/// How final a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finality {
    /// Above the safe height: can still be reorganised away.
    Pending,
    /// At or below the safe height.
    Safe,
    /// At or below the finalized height: never rewritten.
    Finalized,
}

impl Finality {
    /// Finality of `block` given the heights.
    pub fn of(block: BlockNumber, h: &Heights) -> Self {
        if block <= h.finalized {
            Self::Finalized
        } else if block <= h.safe {
            Self::Safe
        } else {
            Self::Pending
        }
    }

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Safe => "safe",
            Self::Finalized => "finalized",
        }
    }
}

/// One step of indexing, committed atomically.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Chain id.
    pub chain_id: u64,
    /// Genesis hash (recorded on the first batch).
    pub genesis_hash: B256,
    /// New escrow events, in chain order.
    pub events: Vec<DecodedEvent>,
    /// Headers to remember (the unfinalized part of the range).
    pub blocks: Vec<BlockRef>,
    /// The new cursor: last block covered by this batch.
    pub cursor: BlockNumber,
    /// Its hash.
    pub cursor_hash: B256,
    /// Chain heights.
    pub heights: Heights,
}

/// What a batch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events stored.
    pub inserted: u64,
    /// Events already stored (skipped, never applied twice).
    pub duplicates: u64,
    /// Events that were illegal for their order's state.
    pub anomalies: u64,
    /// Orders whose derived state changed.
    pub orders: Vec<(Address, B256)>,
}

/// What a rollback changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// Events marked reverted.
    pub reverted_events: u64,
    /// Orders re-derived (some may no longer exist).
    pub orders: Vec<(Address, B256)>,
}

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

/// Reconciliation result for one escrow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Finalized height at which the comparison was made.
    pub block_number: BlockNumber,
    /// Sum of remainders and credits the indexer derived.
    #[serde(with = "crate::state::u256_dec")]
    pub expected: U256,
    /// Token balance of the escrow at that height.
    #[serde(with = "crate::state::u256_dec")]
    pub actual: U256,
    /// Whether they agree.
    pub ok: bool,
    /// Unix time of the check.
    pub checked_at: u64,
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

/// Writes indexing progress.
pub trait IndexWriter {
    /// Store a batch of events, derive the affected orders and move the cursor, in one transaction.
    fn commit_batch(&self, batch: &Batch) -> impl Future<Output = Result<BatchOutcome>> + Send;
    /// Revert every event above `fork` (the last block both chains share), re-derive the affected orders,
    /// forget the headers above it and move the cursor back to it, in one transaction.
    fn rollback_to(
        &self,
        chain_id: u64,
        fork: BlockRef,
    ) -> impl Future<Output = Result<RollbackOutcome>> + Send;
    /// Record new chain heights without moving the cursor.
    fn update_heights(&self, chain_id: u64, heights: Heights) -> impl Future<Output = Result<()>> + Send;
    /// Delete everything stored about a chain.
    fn reset_chain(&self, chain_id: u64) -> impl Future<Output = Result<()>> + Send;
    /// Re-derive every order and credit of the chain from the stored events (no RPC). Returns the number of
    /// events replayed.
    fn rederive_all(&self, chain_id: u64) -> impl Future<Output = Result<u64>> + Send;
    /// Record a reconciliation result.
    fn record_reconciliation(&self, r: &Reconciliation) -> impl Future<Output = Result<()>> + Send;
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
    /// The latest reconciliation of each escrow of the chain.
    fn reconciliations(&self, chain_id: u64) -> impl Future<Output = Result<Vec<Reconciliation>>> + Send;
    /// Count of (non-reverted) events and orders of a chain.
    fn counts(&self, chain_id: u64) -> impl Future<Output = Result<(u64, u64)>> + Send;
}

/// What a change-log entry says about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The order's derived state changed (new events were committed, or it was re-derived).
    OrderUpdated,
    /// A reorg reverted a state already logged; the entry carries the re-derived state, if any.
    OrderRetracted,
}

impl ChangeKind {
    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderUpdated => "order_updated",
            Self::OrderRetracted => "order_retracted",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "order_updated" => Some(Self::OrderUpdated),
            "order_retracted" => Some(Self::OrderRetracted),
            _ => None,
        }
    }
}

/// One entry of the change log: appended in the same transaction as the change it records, so its
/// sequence number is a durable resume position for change feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the log (ascending, in commit order).
    pub seq: i64,
    /// What happened.
    pub kind: ChangeKind,
    /// Chain id.
    pub chain_id: u64,
    /// Escrow.
    pub escrow: Address,
    /// Order id.
    pub order_id: B256,
    /// `OrderUpdated`: the last block of the new state. `OrderRetracted`: the fork block (everything above
    /// it was reverted).
    pub block_number: BlockNumber,
    /// The order's state after the change (`None`: a reorg erased the order).
    pub state: Option<OrderState>,
}

/// Reads the change log and the indexing state of every chain (for the API's change feed and waiters).
pub trait FeedReader {
    /// The indexing state of every chain in the store, by chain id.
    fn chain_metas(&self) -> impl Future<Output = Result<Vec<ChainMeta>>> + Send;
    /// The sequence number of the newest change-log entry (0 if the log is empty).
    fn last_change_seq(&self) -> impl Future<Output = Result<i64>> + Send;
    /// Up to `limit` change-log entries with `after < seq <= upto`, ascending, matching `filter` (its
    /// `after` and `limit` are ignored). Retractions match the filter's fixed fields (chain, escrow, payer,
    /// payee, arbiter, lock time) of the retracted state and ignore its `status`, so that a reader filtering
    /// by status still learns that a state it was sent no longer holds.
    fn changes(
        &self,
        after: i64,
        upto: i64,
        filter: &OrderFilter,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Change>>> + Send;
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
            Err(crate::Error::Config(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://…"
            )))
        }
    }

    /// Close every pooled connection (waits for checked-out ones to return).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.pool().close().await,
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

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl ChainReader for Store {
    async fn chain_meta(&self, chain_id: u64) -> Result<Option<ChainMeta>> {
        delegate!(self, s => s.chain_meta(chain_id).await)
    }
    async fn blocks_from(&self, chain_id: u64, from: BlockNumber) -> Result<Vec<BlockRef>> {
        delegate!(self, s => s.blocks_from(chain_id, from).await)
    }
}

impl IndexWriter for Store {
    async fn commit_batch(&self, batch: &Batch) -> Result<BatchOutcome> {
        delegate!(self, s => s.commit_batch(batch).await)
    }
    async fn rollback_to(&self, chain_id: u64, fork: BlockRef) -> Result<RollbackOutcome> {
        delegate!(self, s => s.rollback_to(chain_id, fork).await)
    }
    async fn update_heights(&self, chain_id: u64, heights: Heights) -> Result<()> {
        delegate!(self, s => s.update_heights(chain_id, heights).await)
    }
    async fn reset_chain(&self, chain_id: u64) -> Result<()> {
        delegate!(self, s => s.reset_chain(chain_id).await)
    }
    async fn rederive_all(&self, chain_id: u64) -> Result<u64> {
        delegate!(self, s => s.rederive_all(chain_id).await)
    }
    async fn record_reconciliation(&self, r: &Reconciliation) -> Result<()> {
        delegate!(self, s => s.record_reconciliation(r).await)
    }
}

impl FeedReader for Store {
    async fn chain_metas(&self) -> Result<Vec<ChainMeta>> {
        delegate!(self, s => s.chain_metas().await)
    }
    async fn last_change_seq(&self) -> Result<i64> {
        delegate!(self, s => s.last_change_seq().await)
    }
    async fn changes(&self, after: i64, upto: i64, filter: &OrderFilter, limit: u32) -> Result<Vec<Change>> {
        delegate!(self, s => s.changes(after, upto, filter, limit).await)
    }
}

impl OrderReader for Store {
    async fn order(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        order_id: B256,
    ) -> Result<Option<OrderState>> {
        delegate!(self, s => s.order(chain_id, escrow, order_id).await)
    }
    async fn orders(&self, filter: &OrderFilter) -> Result<Vec<OrderState>> {
        delegate!(self, s => s.orders(filter).await)
    }
    async fn order_events(&self, chain_id: u64, escrow: Address, order_id: B256) -> Result<Vec<StoredEvent>> {
        delegate!(self, s => s.order_events(chain_id, escrow, order_id).await)
    }
    async fn tx_events(&self, tx_hash: B256) -> Result<Vec<StoredEvent>> {
        delegate!(self, s => s.tx_events(tx_hash).await)
    }
    async fn escrow_liabilities(&self, chain_id: u64, escrow: Address) -> Result<(U256, U256)> {
        delegate!(self, s => s.escrow_liabilities(chain_id, escrow).await)
    }
    async fn reconciliations(&self, chain_id: u64) -> Result<Vec<Reconciliation>> {
        delegate!(self, s => s.reconciliations(chain_id).await)
    }
    async fn counts(&self, chain_id: u64) -> Result<(u64, u64)> {
        delegate!(self, s => s.counts(chain_id).await)
    }
}
