//! The indexing loop.
//!
//! Vocabulary (as in alloy's canonical log watcher and reth's ExEx notifications): a **committed** batch
//! extends the canonical chain the store knows; a **reverted** range is dropped when the node's chain no
//! longer contains the stored blocks (a reorg), detected by a parent-hash mismatch at the cursor or inside a
//! fetched range. Below the node's finalized height ranges are fetched concurrently; above it, one range at
//! a time with every header checked. The cursor moves in the same transaction as the events and derived
//! state it covers, so a crash at any point resumes exactly where the last commit left off.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, BlockNumber},
    providers::Provider,
    rpc::types::Log,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::broadcast;

use crate::{
    Error, Result,
    chain::Chain,
    config::IndexerConfig,
    events::{DecodedEvent, RawEvent, event_signatures},
    store::{Batch, BlockRef, ChainMeta, ChainReader, Heights, IndexWriter, OrderReader, Reconciliation},
};

/// What the indexer tells in-process listeners (the API's long-poll and change feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexNotification {
    /// Blocks up to `cursor` were committed; `orders` changed.
    Committed {
        /// New cursor.
        cursor: BlockNumber,
        /// Orders whose state changed.
        orders: Vec<(Address, B256)>,
    },
    /// Blocks above `fork` were reverted by a reorg; `orders` were re-derived.
    Reverted {
        /// Last block both chains share.
        fork: BlockNumber,
        /// Depth of the reorg (old cursor − fork).
        depth: u64,
        /// Orders re-derived.
        orders: Vec<(Address, B256)>,
    },
    /// New chain heights (finality may have advanced).
    Heights(Heights),
}

/// Outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// The cursor reached the head.
    CaughtUp,
    /// Progress was made (or a reorg handled); step again at once.
    Progressed,
}

/// Follows the escrows of one chain into a store.
#[derive(Debug)]
pub struct Indexer<S> {
    cfg: IndexerConfig,
    chain: Chain,
    store: S,
    chain_id: u64,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    range: Arc<AtomicU64>,
    tokens: Vec<(Address, Address)>,
    notify: broadcast::Sender<IndexNotification>,
    last_reconcile: std::sync::Mutex<Option<Instant>>,
}

impl<S> Indexer<S>
where
    S: ChainReader + IndexWriter + OrderReader + Send + Sync,
{
    /// Connect to the node and check that it serves the configured chain.
    pub async fn new(cfg: IndexerConfig, store: S) -> Result<Self> {
        let chain_id = cfg.chain_id()?;
        let chain = Chain::connect(&cfg.rpc_url, cfg.retry.clone()).await?;
        let node_chain = chain.chain_id().await?;
        if node_chain != chain_id {
            return Err(Error::ChainMismatch(format!(
                "the RPC serves chain {node_chain}, the deployments are on chain {chain_id}"
            )));
        }
        let mut tokens = Vec::new();
        for d in &cfg.deployments {
            let token = match d.token {
                Some(t) => t,
                None => chain.escrow_token(d.escrow).await?,
            };
            tokens.push((d.escrow, token));
        }
        let (notify, _) = broadcast::channel(1024);
        Ok(Self {
            range: Arc::new(AtomicU64::new(cfg.backfill.initial_range.max(1))),
            addresses: cfg.deployments.iter().map(|d| d.escrow).collect(),
            topics: event_signatures(),
            cfg,
            chain,
            store,
            chain_id,
            tokens,
            notify,
            last_reconcile: std::sync::Mutex::new(None),
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The node.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Subscribe to commits and reverts.
    pub fn subscribe(&self) -> broadcast::Receiver<IndexNotification> {
        self.notify.subscribe()
    }

    /// Run until `shutdown` resolves (or, with `exit_when_caught_up`, until the head is reached).
    /// Cancelling in the middle of a step is safe: every commit is one transaction.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        self.check_chain().await?;
        let mut heads = if self.chain.is_ws() {
            match self.chain.provider().subscribe_blocks().await {
                Ok(sub) => Some(sub.into_stream()),
                Err(e) => {
                    tracing::warn!(error = %e, "newHeads subscription failed; polling instead");
                    None
                }
            }
        } else {
            None
        };
        loop {
            let outcome = tokio::select! {
                r = self.step() => r?,
                _ = &mut shutdown => return Ok(()),
            };
            if outcome == StepOutcome::CaughtUp {
                if let Err(e) = self.maybe_reconcile().await {
                    tracing::warn!(error = %e, "reconciliation failed");
                }
                if self.cfg.exit_when_caught_up {
                    return Ok(());
                }
                let wait = async {
                    match heads.as_mut() {
                        Some(stream) => {
                            if stream.next().await.is_none() {
                                tracing::warn!("newHeads subscription ended; polling");
                                heads = None;
                            }
                        }
                        None => tokio::time::sleep(self.cfg.poll_interval).await,
                    }
                };
                tokio::select! {
                    _ = wait => {}
                    // A fallback wake-up even with a subscription, in case a notification is lost.
                    _ = tokio::time::sleep(self.cfg.poll_interval.max(Duration::from_millis(50)) * 4) => {}
                    _ = &mut shutdown => return Ok(()),
                }
            }
        }
    }

    /// Index until the cursor reaches the head as of the call (for tests and one-shot runs).
    pub async fn sync_to_head(&self) -> Result<()> {
        self.check_chain().await?;
        while self.step().await? != StepOutcome::CaughtUp {}
        Ok(())
    }

    /// Compare the node's chain with the store's: same chain id and genesis, head not far below the cursor.
    /// A reset chain halts with [`Error::ChainReset`] unless configured to wipe and re-index.
    pub async fn check_chain(&self) -> Result<()> {
        let Some(meta) = self.store.chain_meta(self.chain_id).await? else { return Ok(()) };
        let genesis = self.genesis_hash().await?;
        let head = self.chain.head().await?;
        let reason = if genesis != meta.genesis_hash {
            Some(format!("genesis hash is {genesis}, the store has {}", meta.genesis_hash))
        } else if head + 64 < meta.cursor {
            Some(format!("head {head} is far below the stored cursor {}", meta.cursor))
        } else {
            None
        };
        if let Some(reason) = reason {
            if !self.cfg.reset_on_chain_reset {
                return Err(Error::ChainReset(reason, self.chain_id));
            }
            tracing::warn!(chain_id = self.chain_id, %reason, "chain was reset; wiping its data and re-indexing");
            self.store.reset_chain(self.chain_id).await?;
        }
        Ok(())
    }

    async fn genesis_hash(&self) -> Result<B256> {
        self.chain
            .header(BlockNumberOrTag::Number(0))
            .await?
            .map(|b| b.hash)
            .ok_or_else(|| Error::Rpc("node has no genesis block".into()))
    }

    async fn initial_cursor(&self) -> Result<(BlockNumber, B256)> {
        let at = self.cfg.start_block().saturating_sub(1);
        let hdr = self.chain.header(BlockNumberOrTag::Number(at)).await?.ok_or_else(|| {
            Error::Config(format!("the node has no block {at} (start block beyond the head?)"))
        })?;
        Ok((at, hdr.hash))
    }

    /// One step: check the cursor against the node, then commit the next range.
    pub async fn step(&self) -> Result<StepOutcome> {
        let meta = self.store.chain_meta(self.chain_id).await?;
        let (cursor, cursor_hash, genesis) = match &meta {
            Some(m) => (m.cursor, m.cursor_hash, m.genesis_hash),
            None => {
                let (c, h) = self.initial_cursor().await?;
                (c, h, self.genesis_hash().await?)
            }
        };
        let heights = self.chain.heights(self.cfg.finality).await?;
        self.record_heights(&heights, cursor);

        if let Some(meta) = &meta {
            let node = self.chain.header(BlockNumberOrTag::Number(cursor)).await?;
            if node.map(|b| b.hash) != Some(cursor_hash) {
                self.handle_reorg(meta, node).await?;
                return Ok(StepOutcome::Progressed);
            }
        }
        if heights.head <= cursor {
            if meta.is_some_and(|m| m.heights != heights) {
                self.store.update_heights(self.chain_id, heights).await?;
                let _ = self.notify.send(IndexNotification::Heights(heights));
            }
            return Ok(StepOutcome::CaughtUp);
        }
        if cursor < heights.finalized {
            self.backfill(cursor, heights.finalized, genesis, heights).await?;
            return Ok(StepOutcome::Progressed);
        }
        self.tail(cursor, cursor_hash, genesis, heights).await
    }

    /// Above finality: one range, every header fetched and linked to the cursor.
    async fn tail(
        &self,
        cursor: BlockNumber,
        cursor_hash: B256,
        genesis: B256,
        heights: Heights,
    ) -> Result<StepOutcome> {
        let to = heights.head.min(cursor + self.range.load(Ordering::Relaxed).max(1));
        let headers = self.chain.headers(cursor + 1, to).await?;
        let mut prev = cursor_hash;
        for h in &headers {
            if h.parent_hash != prev {
                tracing::debug!(block = h.number, "chain moved while fetching headers; retrying the step");
                return Ok(StepOutcome::Progressed);
            }
            prev = h.hash;
        }
        let logs = self
            .chain
            .logs(&self.addresses, &self.topics, cursor + 1, to, &self.range, self.cfg.backfill.min_range)
            .await?;
        for log in &logs {
            let idx = log.block_number.and_then(|n| n.checked_sub(cursor + 1)).map(|i| i as usize);
            let expected = idx.and_then(|i| headers.get(i)).map(|h| h.hash);
            if expected.is_none() || log.block_hash != expected {
                tracing::debug!(
                    "a log's block is not on the fetched chain (reorg during fetch); retrying the step"
                );
                return Ok(StepOutcome::Progressed);
            }
        }
        let events = self.decode(&logs, &headers).await?;
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

    /// Below finality: ranges fetched concurrently (adaptive size), committed in order.
    async fn backfill(
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
        let range = self.range.clone();
        let ranges = futures::stream::unfold(first, move |from| {
            let range = range.clone();
            async move {
                if from > end {
                    return None;
                }
                let size = range.load(Ordering::Relaxed).max(1);
                let to = end.min(from + size - 1);
                Some(((from, to), to + 1))
            }
        });
        let (chain, addresses, topics, range) = (
            self.chain.clone(),
            Arc::new(self.addresses.clone()),
            Arc::new(self.topics.clone()),
            self.range.clone(),
        );
        let min_range = self.cfg.backfill.min_range;
        let fetched = ranges
            .map(move |(from, to)| {
                let (chain, addresses, topics, range) =
                    (chain.clone(), addresses.clone(), topics.clone(), range.clone());
                async move {
                    let logs = chain.logs(&addresses, &topics, from, to, &range, min_range);
                    let hdr = chain.header(BlockNumberOrTag::Number(to));
                    let (logs, hdr) = tokio::try_join!(logs, hdr)?;
                    let hdr = hdr.ok_or_else(|| Error::Rpc(format!("node has no block {to}")))?;
                    Ok::<_, Error>((from, to, logs, hdr))
                }
            })
            .buffered(self.cfg.backfill.concurrency.max(1));
        let mut fetched = std::pin::pin!(fetched);
        while let Some((from, to, logs, hdr)) = fetched.try_next().await? {
            let n = logs.len() as u64;
            let events = self.decode(&logs, &[]).await?;
            let batch = Batch {
                chain_id: self.chain_id,
                genesis_hash: genesis,
                events,
                blocks: vec![hdr],
                cursor: to,
                cursor_hash: hdr.hash,
                heights,
            };
            self.commit(batch).await?;
            events_done += n;
            // Size the next ranges by what this one returned: aim at `target_logs` per response (bounded
            // memory with `concurrency` ranges in flight), and grow only after a full, light range.
            let size = self.range.load(Ordering::Relaxed);
            let span = to - from + 1;
            let target = self.cfg.backfill.target_logs.max(1);
            if n > target {
                let shrunk = (span * target / n).clamp(self.cfg.backfill.min_range.max(1), size);
                self.range.store(shrunk, Ordering::Relaxed);
            } else if span >= size && n <= target / 2 {
                let grown = (size + size / 2 + 1).min(self.cfg.backfill.max_range);
                self.range.store(grown, Ordering::Relaxed);
            }
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

    async fn decode(&self, logs: &[Log], headers: &[BlockRef]) -> Result<Vec<DecodedEvent>> {
        // Nodes that do not put `blockTimestamp` on logs: take it from the headers.
        let mut missing: Vec<BlockNumber> = logs
            .iter()
            .filter(|l| l.block_timestamp.is_none())
            .filter_map(|l| l.block_number)
            .filter(|n| !headers.iter().any(|h| h.number == *n))
            .collect();
        missing.dedup();
        let chain = self.chain.clone();
        let extra: Vec<BlockRef> = futures::stream::iter(missing)
            .map(move |n| {
                let chain = chain.clone();
                async move {
                    chain
                        .header(BlockNumberOrTag::Number(n))
                        .await?
                        .ok_or_else(|| Error::Rpc(format!("no block {n}")))
                }
            })
            .buffered(16)
            .try_collect()
            .await?;
        let ts = |n: Option<BlockNumber>| {
            let n = n?;
            headers.iter().chain(extra.iter()).find(|h| h.number == n).map(|h| h.timestamp)
        };
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            if log.removed {
                continue;
            }
            let raw = RawEvent::from_rpc(self.chain_id, log, ts(log.block_number))
                .ok_or_else(|| Error::Rpc("log without block, transaction or index fields".into()))?;
            match raw.decode() {
                Some(ev) => out.push(ev),
                None => {
                    tracing::warn!(tx = %log.transaction_hash.unwrap_or_default(), "undecodable escrow log skipped")
                }
            }
        }
        Ok(out)
    }

    async fn commit(&self, batch: Batch) -> Result<()> {
        let cursor = batch.cursor;
        let heights = batch.heights;
        let out = self.store.commit_batch(&batch).await?;
        metrics::counter!("holdfast_events_total").increment(out.inserted);
        metrics::gauge!("holdfast_indexed_block").set(cursor as f64);
        if out.duplicates > 0 {
            tracing::debug!(duplicates = out.duplicates, "events already stored were skipped");
        }
        self.record_heights(&heights, cursor);
        let _ = self.notify.send(IndexNotification::Committed { cursor, orders: out.orders });
        Ok(())
    }

    fn record_heights(&self, h: &Heights, cursor: BlockNumber) {
        metrics::gauge!("holdfast_chain_head").set(h.head as f64);
        metrics::gauge!("holdfast_safe_block").set(h.safe as f64);
        metrics::gauge!("holdfast_finalized_block").set(h.finalized as f64);
        metrics::gauge!("holdfast_lag_blocks").set(h.head.saturating_sub(cursor) as f64);
    }

    /// The stored cursor block is no longer on the node's chain: find the last block both share (walking
    /// back through the remembered headers), revert everything above it and re-derive.
    async fn handle_reorg(&self, meta: &ChainMeta, node_at_cursor: Option<BlockRef>) -> Result<()> {
        let stored = self.store.blocks_from(self.chain_id, 0).await?;
        let mut fork = None;
        for b in stored.iter().rev().filter(|b| b.number <= meta.cursor) {
            let node = self.chain.header(BlockNumberOrTag::Number(b.number)).await?;
            if node.map(|n| n.hash) == Some(b.hash) {
                fork = Some(*b);
                break;
            }
        }
        let node_hash = node_at_cursor.map(|b| b.hash).unwrap_or_default();
        let Some(fork) = fork else {
            return Err(Error::ReorgBelowFinality {
                block: stored.first().map_or(meta.cursor, |b| b.number),
                node_hash,
                finalized: meta.heights.finalized,
            });
        };
        if fork.number < meta.heights.finalized {
            return Err(Error::ReorgBelowFinality {
                block: fork.number + 1,
                node_hash,
                finalized: meta.heights.finalized,
            });
        }
        let depth = meta.cursor - fork.number;
        let out = self.store.rollback_to(self.chain_id, fork).await?;
        metrics::counter!("holdfast_reorgs_total").increment(1);
        metrics::histogram!("holdfast_reorg_depth").record(depth as f64);
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

    async fn maybe_reconcile(&self) -> Result<()> {
        {
            let mut last = self.last_reconcile.lock().expect("not poisoned");
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
                return Ok(());
            }
            *last = Some(Instant::now());
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
            let actual = self.chain.balance_of(*token, *escrow, meta.cursor_hash).await?;
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
            metrics::gauge!("holdfast_reconciliation_ok", "escrow" => escrow.to_string()).set(if r.ok {
                1.0
            } else {
                0.0
            });
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

/// Shared handle.
pub type SharedIndexer<S> = Arc<Indexer<S>>;
