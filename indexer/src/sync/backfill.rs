//! Below finality: ranges fetched concurrently (sized adaptively by [`super::range`]), committed in order.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{B256, BlockNumber},
};
use futures::StreamExt;
use holdfast_primitives::{BlockRef, Heights};

use super::{BackfillProgress, IndexStore, Indexer, Task, decode::decode_logs, range};
use crate::{Error, Result, source::ChainSource, writer::Batch};

/// Blocks of the first backfill range (at most; the configured initial range if smaller).
const PROBE_RANGE: u64 = 10;

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    /// Below finality: ranges fetched concurrently (adaptive size), committed in order.
    pub(super) async fn backfill(
        &self,
        cursor: BlockNumber,
        end: BlockNumber,
        genesis: B256,
        heights: Heights,
    ) -> Result<()> {
        let started = Instant::now();
        let first = cursor + 1;
        let total = end - cursor;
        let mut last_log = Instant::now();
        let mut events_done = 0u64;
        // Owned clones in the closures keep the future `Send` for any lifetime (so `run` can be spawned).
        // The first range is fetched alone: its log count sizes the ranges fetched in parallel after it.
        // (responses seen, parallel): see the fetch task below.
        let (sized_tx, sized_rx) = tokio::sync::watch::channel((0u64, false));
        let sized_tx = Arc::new(sized_tx);
        let range = self.range.clone();
        let ranges = futures::stream::unfold((first, 0u64), move |(from, issued)| {
            let (range, mut sized_rx) = (range.clone(), sized_rx.clone());
            async move {
                if from > end {
                    return None;
                }
                // Until a response has shown the density, one range at a time (each waits for the one
                // before); an error drops the sender, and the stream then ends with that error.
                let _ = sized_rx.wait_for(|(seen, parallel)| *parallel || *seen >= issued).await;
                let mut size = range.load(Ordering::Relaxed).max(1);
                if from == first {
                    // A short probe: on a dense chain even the initial range can hold a huge response.
                    size = size.min(PROBE_RANGE);
                }
                let to = end.min(from + size - 1);
                Some(((from, to), (to + 1, issued + 1)))
            }
        });
        let (chain, addresses, topics, range) = (
            self.chain(),
            Arc::new(self.addresses.clone()),
            Arc::new(self.topics.clone()),
            self.range.clone(),
        );
        let (backfill_cfg, chain_id) = (self.cfg.backfill.clone(), self.chain_id);
        // Each range is fetched (and decoded) by its own task, so fetching runs ahead while a batch commits.
        // A task hands its range over in pieces through a channel of one: a range the node (or the response
        // cap) made us split is committed part by part, never held whole. At most `concurrency` ranges are
        // fetched or waiting, each holding at most two pieces (one sent, one being prepared), which bounds
        // memory whatever the density of the chain.
        let fetched = ranges
            .map(move |(from, to)| {
                let (chain, addresses, topics, range, sized_tx, cfg) = (
                    chain.clone(),
                    addresses.clone(),
                    topics.clone(),
                    range.clone(),
                    sized_tx.clone(),
                    backfill_cfg.clone(),
                );
                let (out, pieces) = tokio::sync::mpsc::channel::<(BlockNumber, u64, Vec<_>, BlockRef)>(1);
                let task = Task(tokio::spawn(async move {
                    let (piece_tx, mut piece_rx) = tokio::sync::mpsc::channel(1);
                    let fetch =
                        chain.logs_in_pieces(&addresses, &topics, from, to, &range, cfg.min_range, piece_tx);
                    let process = async {
                        let mut n = 0u64;
                        while let Some(piece) = piece_rx.recv().await {
                            let hdr = chain
                                .header(BlockNumberOrTag::Number(piece.to))
                                .await?
                                .ok_or(Error::MissingBlock { number: piece.to })?;
                            let count = piece.logs.len() as u64;
                            n += count;
                            let events = decode_logs(&chain, chain_id, &piece.logs, &[hdr]).await?;
                            drop(piece);
                            if out.send((hdr.number, count, events, hdr)).await.is_err() {
                                break;
                            }
                        }
                        Ok::<_, Error>(n)
                    };
                    let ((), n) = tokio::try_join!(fetch, process)?;
                    let span = to - from + 1;
                    if from == first {
                        // The probe sizes the next range (at most 4× its own span while it was light).
                        let by_density = (span * cfg.target_logs.max(1) / n.max(1)).max(cfg.min_range.max(1));
                        range.store(by_density.min(span * 4).min(cfg.max_range).max(1), Ordering::Relaxed);
                    } else {
                        range::resize_range(&range, &cfg, span, n);
                    }
                    // Fetch in parallel once a response was dense enough to size the ranges, or the ranges
                    // reached their maximum.
                    let dense = n.saturating_mul(8) >= cfg.target_logs || span >= cfg.max_range;
                    sized_tx.send_modify(|(seen, parallel)| {
                        *seen += 1;
                        *parallel |= dense;
                    });
                    Ok::<_, Error>(())
                }));
                async move { (to, pieces, task) }
            })
            .buffered(self.cfg.backfill.concurrency.max(1));
        let mut fetched = std::pin::pin!(fetched);
        while let Some((range_end, mut pieces, task)) = fetched.next().await {
            let mut reached = None;
            while let Some((to, n, events, hdr)) = pieces.recv().await {
                let batch = Batch {
                    chain_id: self.chain_id,
                    genesis_hash: genesis,
                    events,
                    blocks: vec![hdr],
                    cursor: to,
                    cursor_hash: hdr.hash,
                    heights,
                };
                tracing::debug!(
                    to,
                    events = n,
                    range = self.range.load(Ordering::Relaxed),
                    "backfill range fetched"
                );
                self.commit(batch).await?;
                reached = Some(to);
                events_done += n;
                self.progress.send_replace(Some(BackfillProgress {
                    first,
                    cursor: to,
                    end,
                    events: events_done,
                    elapsed: started.elapsed(),
                }));
            }
            // The task's own outcome: a fetch error, or a panic, ends its pieces early.
            task.await?;
            let Some(to) = reached.filter(|r| *r == range_end) else {
                return Err(Error::MissingBlock { number: range_end });
            };
            if last_log.elapsed() >= Duration::from_secs(2) {
                last_log = Instant::now();
                let done = to - cursor;
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let eta = (total - done) as f64 / (done as f64 / secs);
                tracing::info!(
                    block = to,
                    end,
                    events = events_done,
                    events_per_sec = (events_done as f64 / secs) as u64,
                    eta_secs = eta as u64,
                    range = self.range.load(Ordering::Relaxed),
                    "backfill"
                );
            }
        }
        Ok(())
    }
}
