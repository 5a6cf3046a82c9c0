//! Above finality: the live fast path for an announced head that extends the cursor, and the checked
//! tail step (one range, every header fetched and linked to the cursor by parent hash).

use std::sync::atomic::Ordering;

use alloy::primitives::{B256, BlockNumber};
use holdfast_primitives::{BlockRef, Heights, IndexNotification};

use super::{IndexStore, Indexer, StepOutcome, decode::decode_logs, reorg};
use crate::{Result, config::FinalityPolicy, source::ChainSource, writer::Batch};

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    /// The live fast path: commit an announced head that directly extends the stored cursor (its parent
    /// hash is the cursor's hash, so no reorg check is needed) with one `eth_getLogs` by block hash, taking
    /// the header from the announcement and the finality heights from the last refresh. Anything else
    /// (a gap, a reorg, no cursor yet) takes the full [`step`](Self::step). Finality tags are refreshed
    /// after the commit, off the latency path.
    pub(super) async fn follow(&self, head: BlockRef) -> Result<StepOutcome> {
        let Some(meta) = self.store.chain_meta(self.chain_id).await? else { return self.step().await };
        if head.number != meta.cursor + 1 || head.parent_hash != meta.cursor_hash {
            return self.step().await;
        }
        let known = *self.heights.lock().expect("not poisoned");
        let heights = match self.cfg.finality {
            FinalityPolicy::Depth { safe, finalized } => Heights {
                head: head.number,
                safe: head.number.saturating_sub(safe),
                finalized: head.number.saturating_sub(finalized),
            },
            FinalityPolicy::Tags { .. } => Heights {
                head: head.number,
                safe: known.safe.min(head.number),
                finalized: known.finalized.min(head.number),
            },
        };
        self.record_heights(&heights, meta.cursor);
        let logs = match self.chain().block_logs(&self.addresses, &self.topics, head.hash).await {
            Ok(logs) => logs,
            Err(e) => {
                // Typically the announced block was reorged away already: the full step sorts it out.
                tracing::debug!(block = head.number, error = %e, "logs of an announced head unavailable; full step");
                return self.step().await;
            }
        };
        if logs.iter().any(|l| l.block_hash != Some(head.hash)) {
            return self.step().await;
        }
        let events = decode_logs(&self.chain(), self.chain_id, &logs, &[head]).await?;
        let batch = Batch {
            chain_id: self.chain_id,
            genesis_hash: meta.genesis_hash,
            events,
            blocks: vec![head],
            cursor: head.number,
            cursor_hash: head.hash,
            heights,
        };
        self.commit(batch).await?;
        tracing::debug!(block = head.number, "announced head committed");
        if matches!(self.cfg.finality, FinalityPolicy::Tags { .. }) {
            let fresh = self.fetch_heights().await?;
            if fresh.head == heights.head && fresh != heights {
                self.store.update_heights(self.chain_id, fresh).await?;
                let _ = self.notify.send(IndexNotification::Heights(fresh));
            }
        }
        Ok(StepOutcome::CaughtUp)
    }

    /// Above finality: one range, every header fetched and linked to the cursor.
    pub(super) async fn tail(
        &self,
        cursor: BlockNumber,
        cursor_hash: B256,
        genesis: B256,
        heights: Heights,
    ) -> Result<StepOutcome> {
        let to = heights.head.min(cursor + self.range.load(Ordering::Relaxed).max(1));
        let headers = self.chain().headers(cursor + 1, to).await?;
        if !reorg::links(cursor_hash, &headers) {
            tracing::debug!("chain moved while fetching headers; retrying the step");
            return Ok(StepOutcome::Progressed);
        }
        let logs = self
            .chain()
            .logs(&self.addresses, &self.topics, cursor + 1, to, &self.range, self.cfg.backfill.min_range)
            .await?;
        if !reorg::logs_on(cursor + 1, &headers, &logs) {
            tracing::debug!(
                "a log's block is not on the fetched chain (reorg during fetch); retrying the step"
            );
            return Ok(StepOutcome::Progressed);
        }
        let events = decode_logs(&self.chain(), self.chain_id, &logs, &headers).await?;
        let last = headers.last().expect("to > cursor");
        let batch = Batch {
            chain_id: self.chain_id,
            genesis_hash: genesis,
            events,
            blocks: headers.clone(),
            cursor: to,
            cursor_hash: last.hash,
            heights,
        };
        self.commit(batch).await?;
        Ok(if to >= heights.head { StepOutcome::CaughtUp } else { StepOutcome::Progressed })
    }
}
