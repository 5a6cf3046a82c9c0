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

/// A batch of chain `chain` committed: `inserted` new events, the cursor at `cursor`.
pub(crate) fn committed(chain: u64, inserted: u64, cursor: BlockNumber) {
    metrics::counter!("holdfast_events_total", "chain_id" => chain.to_string()).increment(inserted);
    metrics::gauge!("holdfast_indexed_block", "chain_id" => chain.to_string()).set(cursor as f64);
}

/// Chain `chain`'s heights as last seen, and the lag of the cursor behind the head.
pub(crate) fn heights(chain: u64, h: &Heights, cursor: BlockNumber) {
    let c = chain.to_string();
    metrics::gauge!("holdfast_chain_head", "chain_id" => c.clone()).set(h.head as f64);
    metrics::gauge!("holdfast_safe_block", "chain_id" => c.clone()).set(h.safe as f64);
    metrics::gauge!("holdfast_finalized_block", "chain_id" => c.clone()).set(h.finalized as f64);
    metrics::gauge!("holdfast_lag_blocks", "chain_id" => c).set(h.head.saturating_sub(cursor) as f64);
}

/// A reorg of `depth` blocks of chain `chain` was rolled back.
pub(crate) fn reorg(chain: u64, depth: u64) {
    metrics::counter!("holdfast_reorgs_total", "chain_id" => chain.to_string()).increment(1);
    metrics::histogram!("holdfast_reorg_depth", "chain_id" => chain.to_string()).record(depth as f64);
}

/// The latest reconciliation of `escrow` on chain `chain`.
pub(crate) fn reconciliation(chain: u64, escrow: Address, ok: bool) {
    metrics::gauge!("holdfast_reconciliation_ok", "chain_id" => chain.to_string(), "escrow" => escrow.to_string())
        .set(if ok { 1.0 } else { 0.0 });
}

/// An RPC call failed (`kind`: how it is handled).
pub(crate) fn rpc_error(kind: &'static str) {
    metrics::counter!("holdfast_rpc_errors_total", "kind" => kind).increment(1);
}

/// A fault the indexer of chain `chain` retries; `retries` in a row so far.
pub(crate) fn fault(chain: u64, retries: u32) {
    metrics::counter!("holdfast_indexer_faults_total", "chain_id" => chain.to_string()).increment(1);
    metrics::gauge!("holdfast_indexer_fault_retries", "chain_id" => chain.to_string())
        .set(f64::from(retries));
}

/// Indexing of chain `chain` works (no fault).
pub(crate) fn recovered(chain: u64) {
    metrics::gauge!("holdfast_indexer_fault_retries", "chain_id" => chain.to_string()).set(0.0);
}
