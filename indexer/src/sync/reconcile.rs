//! Reconciliation: the derived liabilities of each escrow against the token's balance.

use std::time::Duration;

use holdfast_primitives::Reconciliation;

use super::{IndexStore, Indexer};
use crate::{Result, metrics, source::ChainSource};

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    pub(super) async fn maybe_reconcile(&self) -> Result<()> {
        if !super::due(&self.last_reconcile, Duration::from_secs(10)) {
            return Ok(());
        }
        self.reconcile().await.map(|_| ())
    }

    /// Compare, for every escrow, the derived remainders plus credits with the token's `balanceOf(escrow)`
    /// at the stored cursor block (by hash, so the comparison is exact). A deficit is an alert; a surplus
    /// (tokens sent to the escrow directly) is recorded too.
    pub async fn reconcile(&self) -> Result<Vec<Reconciliation>> {
        let Some(meta) = self.store.chain_meta(self.chain_id).await? else { return Ok(vec![]) };
        let mut out = Vec::new();
        for (escrow, token) in &self.tokens {
            let (remaining, credits) = self.store.escrow_liabilities(self.chain_id, *escrow).await?;
            let expected = remaining + credits;
            let actual = self.chain().balance_of(*token, *escrow, meta.cursor_hash).await?;
            let r = Reconciliation {
                chain_id: self.chain_id,
                escrow: *escrow,
                block_number: meta.cursor,
                expected,
                actual,
                ok: expected == actual,
                checked_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let label = if actual == expected {
                "match"
            } else if actual > expected {
                "surplus"
            } else {
                "deficit"
            };
            metrics::reconciliation(self.chain_id, *escrow, r.ok);
            if actual < expected {
                tracing::error!(%escrow, %expected, %actual, block = meta.cursor,
                    "RECONCILIATION DEFICIT: the escrow holds less than the indexer derived");
            } else if actual > expected {
                tracing::warn!(%escrow, %expected, %actual, block = meta.cursor, label,
                    "reconciliation surplus: the escrow holds more than its orders (tokens sent directly?)");
            }
            self.store.record_reconciliation(&r).await?;
            out.push(r);
        }
        Ok(out)
    }
}
