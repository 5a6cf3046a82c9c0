//! Reorgs: finding the fork when the stored cursor is no longer on the node's chain, rolling back to it,
//! and the pure checks that a fetched range extends the stored chain.

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{B256, BlockNumber},
    rpc::types::Log,
};
use holdfast_primitives::{BlockRef, ChainMeta, IndexNotification};

use super::{IndexStore, Indexer};
use crate::{Error, Result, metrics, source::ChainSource, writer};

/// Whether `headers` (ascending, starting right above the cursor) link to the cursor (`cursor_hash`) and
/// to each other by parent hash. A break means the chain moved while the range was fetched.
pub(crate) fn links(cursor_hash: B256, headers: &[BlockRef]) -> bool {
    let mut prev = cursor_hash;
    headers.iter().all(|h| {
        let ok = h.parent_hash == prev;
        prev = h.hash;
        ok
    })
}

/// Whether every log lies on `headers` (ascending, the first at `first`): its block number is in the range
/// and its block hash is that header's. A log elsewhere came from a block reorganised away during the fetch.
pub(crate) fn logs_on(first: BlockNumber, headers: &[BlockRef], logs: &[Log]) -> bool {
    logs.iter().all(|log| {
        let header =
            log.block_number.and_then(|n| n.checked_sub(first)).and_then(|i| headers.get(i as usize));
        header.is_some_and(|h| log.block_hash == Some(h.hash))
    })
}

/// The outcome of a fork search: the fork (the highest stored header the node still has), or the reason
/// rolling back is refused.
pub(crate) fn fork_decision(
    meta: &ChainMeta,
    fork: Option<BlockRef>,
    lowest_stored: Option<BlockNumber>,
    node_hash: B256,
) -> Result<BlockRef> {
    let finalized = meta.heights.finalized;
    let Some(fork) = fork else {
        return Err(Error::ReorgBelowFinality {
            block: lowest_stored.unwrap_or(meta.cursor),
            node_hash,
            finalized,
        });
    };
    if fork.number < finalized {
        return Err(Error::ReorgBelowFinality { block: fork.number + 1, node_hash, finalized });
    }
    Ok(fork)
}

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    /// The stored cursor block is no longer on the node's chain: find the last block both share (walking
    /// back through the remembered headers), revert everything above it and re-derive.
    pub(super) async fn handle_reorg(
        &self,
        meta: &ChainMeta,
        node_at_cursor: Option<BlockRef>,
    ) -> Result<()> {
        let stored = self.store.blocks_from(self.chain_id, 0).await?;
        let mut fork = None;
        for b in stored.iter().rev().filter(|b| b.number <= meta.cursor) {
            let node = self.chain().header(BlockNumberOrTag::Number(b.number)).await?;
            if node.map(|n| n.hash) == Some(b.hash) {
                fork = Some(*b);
                break;
            }
        }
        let node_hash = node_at_cursor.map(|b| b.hash).unwrap_or_default();
        let fork = fork_decision(meta, fork, stored.first().map(|b| b.number), node_hash)?;
        let depth = meta.cursor - fork.number;
        let out = writer::rollback_to(&self.store, self.chain_id, fork).await?;
        metrics::reorg(self.chain_id, depth);
        tracing::warn!(
            fork = fork.number,
            depth,
            reverted_events = out.reverted_events,
            orders = out.orders.len(),
            "reorg: reverted blocks above the fork and re-derived the affected orders"
        );
        let _ =
            self.notify.send(IndexNotification::Reverted { fork: fork.number, depth, orders: out.orders });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use holdfast_primitives::Heights;
    use proptest::prelude::*;

    use super::*;

    /// A chain of `n` headers above a cursor with hash `cursor`, numbered from `first`.
    fn chain(first: BlockNumber, cursor: B256, n: usize) -> Vec<BlockRef> {
        let mut prev = cursor;
        (0..n)
            .map(|i| {
                let hash = B256::with_last_byte(i as u8 + 1) ^ B256::repeat_byte(0x40);
                let h = BlockRef { number: first + i as u64, hash, parent_hash: prev, timestamp: 0 };
                prev = hash;
                h
            })
            .collect()
    }

    fn log_at(number: BlockNumber, hash: B256) -> Log {
        Log { block_number: Some(number), block_hash: Some(hash), ..Default::default() }
    }

    proptest! {
        /// A linked range links; breaking any one parent hash breaks it.
        #[test]
        fn links_detects_any_broken_parent(n in 1usize..40, broken in any::<prop::sample::Index>()) {
            let cursor = B256::repeat_byte(7);
            let mut headers = chain(11, cursor, n);
            prop_assert!(links(cursor, &headers));
            let i = broken.index(n);
            headers[i].parent_hash = B256::repeat_byte(9);
            prop_assert!(!links(cursor, &headers));
        }
    }

    #[test]
    fn logs_on_accepts_only_logs_of_the_fetched_headers() {
        let headers = chain(11, B256::ZERO, 3);
        assert!(logs_on(11, &headers, &[log_at(11, headers[0].hash), log_at(13, headers[2].hash)]));
        assert!(logs_on(11, &headers, &[]));
        assert!(!logs_on(11, &headers, &[log_at(12, headers[0].hash)]), "hash of another height");
        assert!(!logs_on(11, &headers, &[log_at(14, headers[2].hash)]), "above the range");
        assert!(!logs_on(11, &headers, &[log_at(10, headers[0].hash)]), "below the range");
        assert!(!logs_on(11, &headers, &[Log { block_hash: Some(headers[0].hash), ..Default::default() }]));
    }

    #[test]
    fn fork_decision_refuses_rewriting_finalized_blocks() {
        let meta = ChainMeta {
            chain_id: 1,
            genesis_hash: B256::ZERO,
            cursor: 30,
            cursor_hash: B256::ZERO,
            heights: Heights { head: 30, safe: 28, finalized: 20 },
            updated_at: 0,
        };
        let at = |number| BlockRef { number, ..Default::default() };
        assert_eq!(fork_decision(&meta, Some(at(25)), Some(20), B256::ZERO).unwrap().number, 25);
        assert_eq!(fork_decision(&meta, Some(at(20)), Some(20), B256::ZERO).unwrap().number, 20);
        let below = fork_decision(&meta, Some(at(19)), Some(19), B256::ZERO).unwrap_err();
        assert!(matches!(below, Error::ReorgBelowFinality { block: 20, finalized: 20, .. }), "{below}");
        let none = fork_decision(&meta, None, Some(21), B256::ZERO).unwrap_err();
        assert!(matches!(none, Error::ReorgBelowFinality { block: 21, .. }), "{none}");
    }
}
