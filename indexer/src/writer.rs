//! The indexer's writes, one transaction each: a committed batch, a rollback after a reorg, a full
//! re-derivation. Each loads from the store what derivation needs, derives with the pure functions of
//! `holdfast_primitives::derive`, and writes back exactly what they returned; the store holds no domain
//! logic, and derivation no I/O.

use std::collections::HashSet;

use alloy::primitives::{B256, BlockNumber};
use holdfast_primitives::{
    BlockRef, ChangeKind, DecodedEvent, Heights, OrderKey,
    derive::{self, AnomalyRecord},
    webhook,
};
use holdfast_store::{
    ChangeWriter, CursorWriter, EventWriter, LedgerWriter, OrderWriter, ScanPosition, Storage, WriteTx,
    now_ms,
};

use crate::{Result, metrics};

/// Events replayed per page when re-deriving everything.
const REDERIVE_PAGE: u32 = 20_000;

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
    pub orders: Vec<OrderKey>,
}

/// What a rollback changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// Events marked reverted.
    pub reverted_events: u64,
    /// Orders re-derived (some may no longer exist).
    pub orders: Vec<OrderKey>,
}

/// Store a batch of events, derive the orders they touch and move the cursor, in one transaction.
pub async fn commit_batch<S: Storage>(store: &S, batch: &Batch) -> Result<BatchOutcome> {
    let mut tx = store.begin().await?;
    // Events, without repeats inside the batch (one multi-row statement must not hit a row twice).
    let mut seen = HashSet::with_capacity(batch.events.len());
    let unique: Vec<&DecodedEvent> =
        batch.events.iter().filter(|e| seen.insert((e.raw.pos.block_hash, e.raw.pos.log_index))).collect();
    let to_apply = tx.insert_events(&unique).await?;
    let fresh: Vec<&DecodedEvent> =
        unique.into_iter().zip(to_apply).filter_map(|(e, new)| new.then_some(e)).collect();
    let touched = derive::touched_orders(fresh.iter().copied());
    let prior = tx.load_orders(batch.chain_id, &touched).await?;
    let derived = derive::apply_batch(prior, &fresh);
    // Each changed order with its change-log entry (the store encodes each state once for both).
    tx.upsert_orders(&derived.orders, true).await?;
    record_anomalies(&mut tx, &derived.anomalies).await?;
    if !derived.credits.is_empty() {
        let keys: Vec<_> = derived.credits.keys().copied().collect();
        let current = tx.load_credits(batch.chain_id, &keys).await?;
        tx.put_credits(batch.chain_id, &derive::credit_balances(&current, &derived.credits)?).await?;
    }
    tx.put_blocks(batch.chain_id, &batch.blocks).await?;
    // Keep the headers from the finalized block (or the cursor, if lower) upwards.
    tx.forget_blocks_below(batch.chain_id, batch.heights.finalized.min(batch.cursor)).await?;
    let cursor = BlockRef { number: batch.cursor, hash: batch.cursor_hash, ..Default::default() };
    tx.advance_cursor(batch.chain_id, batch.genesis_hash, &cursor, batch.heights).await?;
    fan_out(&mut tx).await?;
    tx.commit().await?;
    let inserted = fresh.len() as u64;
    Ok(BatchOutcome {
        inserted,
        duplicates: batch.events.len() as u64 - inserted,
        anomalies: derived.anomalies.len() as u64,
        orders: derived.touched,
    })
}

/// Revert every event above `fork` (the last block both chains share), re-derive the affected orders from
/// the events that remain, retract every announced state the reorg reverted, forget the headers above the
/// fork and move the cursor back to it, in one transaction.
pub async fn rollback_to<S: Storage>(store: &S, chain_id: u64, fork: BlockRef) -> Result<RollbackOutcome> {
    let mut tx = store.begin().await?;
    let orders = tx.orders_with_events_above(chain_id, fork.number).await?;
    let credits_touched = tx.credit_events_above(chain_id, fork.number).await?;
    let reverted_events = tx.revert_events_above(chain_id, fork.number).await?;
    tx.delete_anomalies(chain_id, Some(fork.number)).await?;
    let mut current = Vec::with_capacity(orders.len());
    for key in &orders {
        let events = tx.live_order_events(chain_id, *key).await?;
        let (order, anomalies) = derive::replay_order(&events);
        record_anomalies(&mut tx, &anomalies).await?;
        match &order {
            Some(o) => tx.upsert_orders(std::slice::from_ref(o), false).await?,
            None => tx.delete_orders(chain_id, std::slice::from_ref(key)).await?,
        }
        current.push(order);
    }
    if credits_touched {
        rebuild_credits(&mut tx, chain_id).await?;
    }
    tx.forget_blocks_above(chain_id, fork.number).await?;
    tx.rewind_cursor(chain_id, &fork).await?;
    let mut last = tx.last_changes(chain_id, &orders).await?;
    let retractions: Vec<_> = orders
        .iter()
        .zip(&current)
        .filter_map(|(key, order)| derive::retraction(last.remove(key), order.as_ref(), fork.number))
        .collect();
    tx.append_changes(&retractions).await?;
    fan_out(&mut tx).await?;
    tx.commit().await?;
    Ok(RollbackOutcome { reverted_events, orders })
}

/// Re-derive every order and credit of the chain from the stored events (no RPC), in one transaction.
/// Orders are replayed one by one (keyset pages over the by-order index, so memory stays flat); each page's
/// finished orders are compared with the stored ones of the same key range, and only the orders whose
/// derived state differs are written (and logged). Returns the number of events replayed.
pub async fn rederive_all<S: Storage>(store: &S, chain_id: u64) -> Result<u64> {
    let mut tx = store.begin().await?;
    tx.delete_anomalies(chain_id, None).await?;
    let mut replayed = 0u64;
    let mut current: Option<(OrderKey, Vec<DecodedEvent>)> = None;
    let mut after: Option<ScanPosition> = None;
    let mut synced_upto: Option<OrderKey> = None;
    loop {
        let page = tx.live_events_by_order(chain_id, after, REDERIVE_PAGE).await?;
        let last_page = page.len() < REDERIVE_PAGE as usize;
        if let Some(e) = page.last() {
            let order_id = e.event.order_id().unwrap_or_default();
            after = Some((e.raw.escrow, order_id, e.raw.pos.block_number, e.raw.pos.log_index));
        }
        replayed += page.len() as u64;
        let mut finished = Vec::new();
        for e in page {
            let key = (e.raw.escrow, e.event.order_id().unwrap_or_default());
            if current.as_ref().is_none_or(|(k, _)| *k != key) {
                finished.extend(current.take());
                current = Some((key, Vec::new()));
            }
            current.as_mut().expect("set above").1.push(e);
        }
        if last_page {
            finished.extend(current.take());
            sync_orders(&mut tx, chain_id, synced_upto, None, finished).await?;
            break;
        }
        // The order still being replayed may continue on the next page: sync up to the one before.
        if let Some(&(upto, _)) = finished.last() {
            sync_orders(&mut tx, chain_id, synced_upto, Some(upto), finished).await?;
            synced_upto = Some(upto);
        }
    }
    rebuild_credits(&mut tx, chain_id).await?;
    fan_out(&mut tx).await?;
    tx.commit().await?;
    Ok(replayed)
}

/// Replay the `finished` orders (every order with events in (`after`, `upto`], ascending) and write what
/// differs from the stored orders of that key range, logging each changed state.
async fn sync_orders<T: WriteTx>(
    tx: &mut T,
    chain_id: u64,
    after: Option<OrderKey>,
    upto: Option<OrderKey>,
    finished: Vec<(OrderKey, Vec<DecodedEvent>)>,
) -> Result<()> {
    let mut anomalies = Vec::new();
    let derived: Vec<_> = finished
        .into_iter()
        .map(|(key, events)| {
            let (order, found) = derive::replay_order(&events);
            anomalies.extend(found);
            (key, order)
        })
        .collect();
    record_anomalies(tx, &anomalies).await?;
    let stored = tx.orders_in_range(chain_id, after, upto).await?;
    let diff = derive::diff_orders(derived, stored);
    tx.delete_orders(chain_id, &diff.deletes).await?;
    tx.upsert_orders(&diff.upserts, true).await?;
    Ok(())
}

/// Queue, in the step's own transaction, the webhook deliveries owed for the change-log entries it appended
/// (`holdfast_primitives::webhook` decides who is owed what): an update goes to every subscription that
/// wants it; a retraction cancels the order's undelivered deliveries above the fork and goes to the
/// subscriptions whose receiver may have seen a reverted state. Returns how many were queued. Without
/// subscriptions it reads nothing: a subscription is owed only the entries after its creation.
async fn fan_out<T: WriteTx>(tx: &mut T) -> Result<usize> {
    let subs = tx.fanout_subscriptions().await?;
    let Some(first) = subs.iter().map(|s| s.from_seq).min() else { return Ok(0) };
    let through = tx.fanout_through().await?;
    let changes = tx.change_filings_after(through.max(first)).await?;
    let Some(last) = changes.last().map(|c| c.seq) else { return Ok(0) };
    let now = now_ms();
    let (mut rows, mut queued) = (Vec::new(), 0);
    for ch in &changes {
        match ch.kind {
            ChangeKind::OrderUpdated => {
                rows.extend(webhook::owed_update(&subs, ch).into_iter().map(|s| (s, ch.seq)));
            }
            ChangeKind::OrderRetracted => {
                // What the receivers may have seen includes the deliveries queued just before.
                tx.enqueue_deliveries(&rows, now).await?;
                queued += std::mem::take(&mut rows).len();
                let key = (ch.filing.escrow, ch.filing.order_id);
                let announced = tx.announced(ch.filing.chain_id, key).await?;
                let cancelled = tx.cancel_deliveries_above(ch.filing.chain_id, key, ch.block_number).await?;
                metrics::webhook_cancelled(cancelled);
                rows.extend(webhook::owed_retraction(&subs, ch, &announced).into_iter().map(|s| (s, ch.seq)));
            }
        }
    }
    tx.enqueue_deliveries(&rows, now).await?;
    tx.set_fanout_through(last).await?;
    Ok(queued + rows.len())
}

/// Recompute every credit balance of the chain from its live credit events.
async fn rebuild_credits<T: WriteTx>(tx: &mut T, chain_id: u64) -> Result<()> {
    tx.clear_credits(chain_id).await?;
    let events = tx.live_credit_events(chain_id).await?;
    let balances = derive::credit_balances(&Default::default(), &derive::credit_deltas(&events))?;
    tx.put_credits(chain_id, &balances).await?;
    Ok(())
}

/// Store anomalies, and tell the operator: an anomaly cannot happen with a correct contract.
async fn record_anomalies<T: WriteTx>(tx: &mut T, rows: &[AnomalyRecord]) -> Result<()> {
    for r in rows {
        tracing::warn!(
            chain_id = r.chain_id, escrow = %r.escrow, block = r.block_number, log_index = r.log_index,
            kind = r.kind, reason = %r.reason, "illegal escrow event recorded as an anomaly"
        );
    }
    metrics::anomalies(rows.len() as u64);
    tx.insert_anomalies(rows).await?;
    Ok(())
}
