//! [`Store`] and [`AnyTx`]: every reader and writer of the backend picked at runtime, forwarded to it by
//! `forward!` (one `match` a method).

use std::collections::HashMap;

use alloy::primitives::{Address, B256, BlockNumber, U256};
use holdfast_primitives::{
    BlockRef, ChainMeta, Change, DecodedEvent, Heights, OrderKey, OrderState, Reconciliation,
    change::{LastChange, NewChange},
    derive::{AnomalyRecord, CreditKey},
};

use holdfast_primitives::webhook::{Announced, FanoutChange, FanoutSubscription};

use crate::{
    AfterAttempt, Attempt, AttemptRecord, ChainReader, ChangeWriter, Claim, CursorWriter, DeferredIndexes,
    Delivery, EncodedOrder, EventWriter, FeedReader, LedgerWriter, MetaWriter, NewSubscription, OrderFilter,
    OrderReader, OrderWriter, OutboxWriter, PgTx, QueueStats, Result, ScanPosition, SqliteTx, Storage, Store,
    StoredEvent, Subscription, SubscriptionState, WebhookStore, WriteTx,
};

/// `$body` with `$s` bound to the backend that `$self` holds: every method below forwards this way.
macro_rules! forward {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Self::Sqlite($s) => $body,
            Self::Postgres($s) => $body,
        }
    };
}

/// The transaction of a [`Store`]: one of the backends' own.
#[derive(Debug)]
pub enum AnyTx {
    /// SQLite.
    Sqlite(SqliteTx),
    /// Postgres.
    Postgres(PgTx),
}

impl Storage for Store {
    type Tx = AnyTx;
    async fn begin(&self) -> Result<AnyTx> {
        Ok(match self {
            Self::Sqlite(s) => AnyTx::Sqlite(s.begin().await?),
            Self::Postgres(s) => AnyTx::Postgres(s.begin().await?),
        })
    }
}

impl WriteTx for AnyTx {
    async fn commit(self) -> Result<()> {
        forward!(self, t => t.commit().await)
    }
}

impl ChainReader for Store {
    async fn chain_meta(&self, chain_id: u64) -> Result<Option<ChainMeta>> {
        forward!(self, s => s.chain_meta(chain_id).await)
    }
    async fn blocks_from(&self, chain_id: u64, from: BlockNumber) -> Result<Vec<BlockRef>> {
        forward!(self, s => s.blocks_from(chain_id, from).await)
    }
}

impl DeferredIndexes for Store {
    fn defers_by_default(&self) -> bool {
        forward!(self, s => s.defers_by_default())
    }
    async fn defer_indexes(&self) -> Result<bool> {
        forward!(self, s => s.defer_indexes().await)
    }
    async fn build_deferred_indexes(&self) -> Result<bool> {
        forward!(self, s => s.build_deferred_indexes().await)
    }
    async fn indexes_deferred(&self) -> Result<bool> {
        forward!(self, s => s.indexes_deferred().await)
    }
}

impl MetaWriter for Store {
    async fn refresh_statistics(&self) -> Result<()> {
        forward!(self, s => s.refresh_statistics().await)
    }
    async fn mark_compacted(&self, upto: i64) -> Result<()> {
        forward!(self, s => s.mark_compacted(upto).await)
    }
    async fn delete_superseded_changes(&self, upto: i64, batch: u32) -> Result<u64> {
        forward!(self, s => s.delete_superseded_changes(upto, batch).await)
    }
    async fn update_heights(&self, chain_id: u64, heights: Heights) -> Result<()> {
        forward!(self, s => s.update_heights(chain_id, heights).await)
    }
    async fn reset_chain(&self, chain_id: u64) -> Result<()> {
        forward!(self, s => s.reset_chain(chain_id).await)
    }
    async fn record_reconciliation(&self, r: &Reconciliation) -> Result<()> {
        forward!(self, s => s.record_reconciliation(r).await)
    }
}

impl FeedReader for Store {
    async fn chain_metas(&self) -> Result<Vec<ChainMeta>> {
        forward!(self, s => s.chain_metas().await)
    }
    async fn compacted_through(&self) -> Result<i64> {
        forward!(self, s => s.compacted_through().await)
    }
    async fn last_change_seq(&self) -> Result<i64> {
        forward!(self, s => s.last_change_seq().await)
    }
    async fn changes(&self, after: i64, upto: i64, filter: &OrderFilter, limit: u32) -> Result<Vec<Change>> {
        forward!(self, s => s.changes(after, upto, filter, limit).await)
    }
}

impl OrderReader for Store {
    async fn order(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        order_id: B256,
    ) -> Result<Option<OrderState>> {
        forward!(self, s => s.order(chain_id, escrow, order_id).await)
    }
    async fn orders(&self, filter: &OrderFilter) -> Result<Vec<OrderState>> {
        forward!(self, s => s.orders(filter).await)
    }
    async fn order_events(&self, chain_id: u64, escrow: Address, order_id: B256) -> Result<Vec<StoredEvent>> {
        forward!(self, s => s.order_events(chain_id, escrow, order_id).await)
    }
    async fn tx_events(&self, tx_hash: B256) -> Result<Vec<StoredEvent>> {
        forward!(self, s => s.tx_events(tx_hash).await)
    }
    async fn escrow_liabilities(&self, chain_id: u64, escrow: Address) -> Result<(U256, U256)> {
        forward!(self, s => s.escrow_liabilities(chain_id, escrow).await)
    }
    async fn account_credit_events(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        account: Address,
    ) -> Result<Vec<StoredEvent>> {
        forward!(self, s => s.account_credit_events(chain_id, escrow, account).await)
    }
    async fn reconciliations(&self, chain_id: u64) -> Result<Vec<Reconciliation>> {
        forward!(self, s => s.reconciliations(chain_id).await)
    }
    async fn counts(&self, chain_id: u64) -> Result<(u64, u64)> {
        forward!(self, s => s.counts(chain_id).await)
    }
}

impl EventWriter for AnyTx {
    async fn insert_events(&mut self, events: &[&DecodedEvent]) -> Result<Vec<bool>> {
        forward!(self, s => s.insert_events(events).await)
    }
    async fn revert_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<u64> {
        forward!(self, s => s.revert_events_above(chain_id, block).await)
    }
    async fn orders_with_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<Vec<OrderKey>> {
        forward!(self, s => s.orders_with_events_above(chain_id, block).await)
    }
    async fn credit_events_above(&mut self, chain_id: u64, block: BlockNumber) -> Result<bool> {
        forward!(self, s => s.credit_events_above(chain_id, block).await)
    }
    async fn live_order_events(&mut self, chain_id: u64, key: OrderKey) -> Result<Vec<DecodedEvent>> {
        forward!(self, s => s.live_order_events(chain_id, key).await)
    }
    async fn live_credit_events(&mut self, chain_id: u64) -> Result<Vec<DecodedEvent>> {
        forward!(self, s => s.live_credit_events(chain_id).await)
    }
    async fn live_events_by_order(
        &mut self,
        chain_id: u64,
        after: Option<ScanPosition>,
        limit: u32,
    ) -> Result<Vec<DecodedEvent>> {
        forward!(self, s => s.live_events_by_order(chain_id, after, limit).await)
    }
}

impl OrderWriter for AnyTx {
    async fn load_orders(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> Result<HashMap<OrderKey, OrderState>> {
        forward!(self, s => s.load_orders(chain_id, keys).await)
    }
    async fn orders_in_range(
        &mut self,
        chain_id: u64,
        after: Option<OrderKey>,
        upto: Option<OrderKey>,
    ) -> Result<Vec<(OrderKey, EncodedOrder)>> {
        forward!(self, s => s.orders_in_range(chain_id, after, upto).await)
    }
    async fn upsert_orders(&mut self, orders: &[OrderState], log: bool) -> Result<()> {
        forward!(self, s => s.upsert_orders(orders, log).await)
    }
    async fn delete_orders(&mut self, chain_id: u64, keys: &[OrderKey]) -> Result<()> {
        forward!(self, s => s.delete_orders(chain_id, keys).await)
    }
}

impl LedgerWriter for AnyTx {
    async fn insert_anomalies(&mut self, rows: &[AnomalyRecord]) -> Result<()> {
        forward!(self, s => s.insert_anomalies(rows).await)
    }
    async fn delete_anomalies(&mut self, chain_id: u64, above: Option<BlockNumber>) -> Result<()> {
        forward!(self, s => s.delete_anomalies(chain_id, above).await)
    }
    async fn load_credits(&mut self, chain_id: u64, keys: &[CreditKey]) -> Result<HashMap<CreditKey, U256>> {
        forward!(self, s => s.load_credits(chain_id, keys).await)
    }
    async fn put_credits(&mut self, chain_id: u64, credits: &[(CreditKey, U256)]) -> Result<()> {
        forward!(self, s => s.put_credits(chain_id, credits).await)
    }
    async fn clear_credits(&mut self, chain_id: u64) -> Result<()> {
        forward!(self, s => s.clear_credits(chain_id).await)
    }
}

impl ChangeWriter for AnyTx {
    async fn last_changes(
        &mut self,
        chain_id: u64,
        keys: &[OrderKey],
    ) -> Result<HashMap<OrderKey, LastChange>> {
        forward!(self, s => s.last_changes(chain_id, keys).await)
    }
    async fn append_changes(&mut self, rows: &[NewChange]) -> Result<()> {
        forward!(self, s => s.append_changes(rows).await)
    }
}

impl CursorWriter for AnyTx {
    async fn put_blocks(&mut self, chain_id: u64, blocks: &[BlockRef]) -> Result<()> {
        forward!(self, s => s.put_blocks(chain_id, blocks).await)
    }
    async fn forget_blocks_below(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        forward!(self, s => s.forget_blocks_below(chain_id, number).await)
    }
    async fn forget_blocks_above(&mut self, chain_id: u64, number: BlockNumber) -> Result<()> {
        forward!(self, s => s.forget_blocks_above(chain_id, number).await)
    }
    async fn advance_cursor(
        &mut self,
        chain_id: u64,
        genesis_hash: B256,
        cursor: &BlockRef,
        heights: Heights,
    ) -> Result<()> {
        forward!(self, s => s.advance_cursor(chain_id, genesis_hash, cursor, heights).await)
    }
    async fn rewind_cursor(&mut self, chain_id: u64, fork: &BlockRef) -> Result<()> {
        forward!(self, s => s.rewind_cursor(chain_id, fork).await)
    }
}

impl OutboxWriter for AnyTx {
    async fn fanout_subscriptions(&mut self) -> Result<Vec<FanoutSubscription>> {
        forward!(self, t => t.fanout_subscriptions().await)
    }
    async fn fanout_through(&mut self) -> Result<i64> {
        forward!(self, t => t.fanout_through().await)
    }
    async fn set_fanout_through(&mut self, seq: i64) -> Result<()> {
        forward!(self, t => t.set_fanout_through(seq).await)
    }
    async fn change_filings_after(&mut self, after: i64) -> Result<Vec<FanoutChange>> {
        forward!(self, t => t.change_filings_after(after).await)
    }
    async fn announced(&mut self, chain_id: u64, key: OrderKey) -> Result<Vec<Announced>> {
        forward!(self, t => t.announced(chain_id, key).await)
    }
    async fn cancel_deliveries_above(
        &mut self,
        chain_id: u64,
        key: OrderKey,
        block: BlockNumber,
    ) -> Result<u64> {
        forward!(self, t => t.cancel_deliveries_above(chain_id, key, block).await)
    }
    async fn enqueue_deliveries(&mut self, rows: &[(i64, i64)], now: i64) -> Result<()> {
        forward!(self, t => t.enqueue_deliveries(rows, now).await)
    }
}

impl WebhookStore for Store {
    async fn add_subscription(&self, new: &NewSubscription) -> Result<Subscription> {
        forward!(self, s => s.add_subscription(new).await)
    }
    async fn subscription(&self, id: i64) -> Result<Option<Subscription>> {
        forward!(self, s => s.subscription(id).await)
    }
    async fn subscriptions(&self) -> Result<Vec<Subscription>> {
        forward!(self, s => s.subscriptions().await)
    }
    async fn set_subscription_state(
        &self,
        id: i64,
        state: SubscriptionState,
        reason: Option<&str>,
    ) -> Result<bool> {
        forward!(self, s => s.set_subscription_state(id, state, reason).await)
    }
    async fn remove_subscription(&self, id: i64) -> Result<bool> {
        forward!(self, s => s.remove_subscription(id).await)
    }
    async fn rotate_secret(&self, id: i64, secret: &str, previous_until: u64) -> Result<bool> {
        forward!(self, s => s.rotate_secret(id, secret, previous_until).await)
    }
    async fn replay(&self, id: i64, from_seq: i64) -> Result<u64> {
        forward!(self, s => s.replay(id, from_seq).await)
    }
    async fn claim_deliveries(&self, now: i64, lease_ms: i64, limit: u32) -> Result<Vec<Claim>> {
        forward!(self, s => s.claim_deliveries(now, lease_ms, limit).await)
    }
    async fn record_attempt(&self, attempt: &Attempt, payload: &str, after: &AfterAttempt) -> Result<()> {
        forward!(self, s => s.record_attempt(attempt, payload, after).await)
    }
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        forward!(self, s => s.record_attempts(records).await)
    }
    async fn deliveries(&self, id: i64, limit: u32) -> Result<Vec<Delivery>> {
        forward!(self, s => s.deliveries(id, limit).await)
    }
    async fn attempts(&self, delivery_id: i64) -> Result<Vec<Attempt>> {
        forward!(self, s => s.attempts(delivery_id).await)
    }
    async fn queue_stats(&self) -> Result<QueueStats> {
        forward!(self, s => s.queue_stats().await)
    }
}
