//! Every metric the indexer records, in one place (names and labels as documented in the README).

use alloy::primitives::{Address, BlockNumber};
use holdfast_primitives::Heights;

/// Illegal events recorded as anomalies.
pub(crate) fn anomalies(n: u64) {
    if n > 0 {
        metrics::counter!("holdfast_anomalies_total").increment(n);
    }
}

/// A reorg cancelled `n` webhook deliveries before they were sent.
pub(crate) fn webhook_cancelled(n: u64) {
    if n > 0 {
        metrics::counter!("holdfast_webhook_deliveries_cancelled_total").increment(n);
    }
}

/// A batch committed: `inserted` new events, the cursor at `cursor`.
pub(crate) fn committed(inserted: u64, cursor: BlockNumber) {
    metrics::counter!("holdfast_events_total").increment(inserted);
    metrics::gauge!("holdfast_indexed_block").set(cursor as f64);
}

/// The chain's heights as last seen, and the lag of the cursor behind the head.
pub(crate) fn heights(h: &Heights, cursor: BlockNumber) {
    metrics::gauge!("holdfast_chain_head").set(h.head as f64);
    metrics::gauge!("holdfast_safe_block").set(h.safe as f64);
    metrics::gauge!("holdfast_finalized_block").set(h.finalized as f64);
    metrics::gauge!("holdfast_lag_blocks").set(h.head.saturating_sub(cursor) as f64);
}

/// A reorg of `depth` blocks was rolled back.
pub(crate) fn reorg(depth: u64) {
    metrics::counter!("holdfast_reorgs_total").increment(1);
    metrics::histogram!("holdfast_reorg_depth").record(depth as f64);
}

/// The latest reconciliation of `escrow`.
pub(crate) fn reconciliation(escrow: Address, ok: bool) {
    metrics::gauge!("holdfast_reconciliation_ok", "escrow" => escrow.to_string()).set(if ok {
        1.0
    } else {
        0.0
    });
}

/// An RPC call failed (`kind`: how it is handled).
pub(crate) fn rpc_error(kind: &'static str) {
    metrics::counter!("holdfast_rpc_errors_total", "kind" => kind).increment(1);
}

/// A fault the indexer retries; `retries` in a row so far.
pub(crate) fn fault(retries: u32) {
    metrics::counter!("holdfast_indexer_faults_total").increment(1);
    metrics::gauge!("holdfast_indexer_fault_retries").set(f64::from(retries));
}

/// Indexing works (no fault).
pub(crate) fn recovered() {
    metrics::gauge!("holdfast_indexer_fault_retries").set(0.0);
}
