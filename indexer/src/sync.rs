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
    rpc::types::Log,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::broadcast;

pub use holdfast_primitives::IndexNotification;
use holdfast_primitives::{
    BlockRef, ChainMeta, DecodedEvent, EventPos, Heights, RawEvent, Reconciliation, event::event_signatures,
};
use holdfast_store::{ChainReader, MetaWriter, OrderReader, Storage};

use crate::{
    ConfigError, Error, ResetReason, Result,
    chain::Chain,
    config::{FinalityPolicy, IndexerConfig},
    metrics,
    writer::{self, Batch},
};

/// Where a backfill stands (published after every committed range; see [`Indexer::progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillProgress {
    /// First block of this backfill.
    pub first: BlockNumber,
    /// Last block committed.
    pub cursor: BlockNumber,
    /// Last block of this backfill (the finalized height when it started).
    pub end: BlockNumber,
    /// Events committed by this backfill.
    pub events: u64,
    /// Time since this backfill started.
    pub elapsed: Duration,
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
    /// Heights as last fetched (the fast path's finality).
    heights: std::sync::Mutex<Heights>,
    progress: tokio::sync::watch::Sender<Option<BackfillProgress>>,
}

impl<S> Indexer<S>
where
    S: ChainReader + MetaWriter + OrderReader + Storage + Send + Sync,
{
    /// Connect to the node and check that it serves the configured chain.
    pub async fn new(cfg: IndexerConfig, store: S) -> Result<Self> {
        let chain_id = cfg.chain_id()?;
        let chain = Chain::connect(&cfg.rpc_url, cfg.retry.clone()).await?;
        if chain.chain_id() != chain_id {
            return Err(Error::ChainMismatch { node: chain.chain_id(), configured: chain_id });
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
            heights: std::sync::Mutex::new(Heights::default()),
            progress: tokio::sync::watch::Sender::new(None),
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

    /// Backfill progress, updated after every committed range (`None` before the first backfill). For
    /// progress displays; the library draws nothing itself.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<Option<BackfillProgress>> {
        self.progress.subscribe()
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
            match self.chain.heads().await {
                Ok(heads) => Some(heads),
                Err(e) => {
                    tracing::warn!(error = %e, "newHeads subscription failed; polling instead");
                    None
                }
            }
        } else {
            None
        };
        // A head announced by the subscription, to commit directly if it extends the cursor.
        let mut announced: Option<BlockRef> = None;
        loop {
            let outcome = tokio::select! {
                r = async {
                    match announced.take() {
                        Some(head) => self.follow(head).await,
                        None => self.step().await,
                    }
                } => r?,
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
                        Some(stream) => match stream.next().await {
                            Some(h) => {
                                tracing::debug!(block = h.number, "head announced");
                                announced = Some(h)
                            }
                            None => {
                                tracing::warn!("newHeads subscription ended; polling");
                                heads = None;
                            }
                        },
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

    /// The live fast path: commit an announced head that directly extends the stored cursor (its parent
    /// hash is the cursor's hash, so no reorg check is needed) with one `eth_getLogs` by block hash, taking
    /// the header from the announcement and the finality heights from the last refresh. Anything else
    /// (a gap, a reorg, no cursor yet) takes the full [`step`](Self::step). Finality tags are refreshed
    /// after the commit, off the latency path.
    async fn follow(&self, head: BlockRef) -> Result<StepOutcome> {
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
        let logs = match self.chain.block_logs(&self.addresses, &self.topics, head.hash).await {
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
        let events = decode_logs(&self.chain, self.chain_id, &logs, &[head]).await?;
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

    /// The node's heights (remembered for the live fast path).
    async fn fetch_heights(&self) -> Result<Heights> {
        let h = self.chain.heights(self.cfg.finality).await?;
        *self.heights.lock().expect("not poisoned") = h;
        Ok(h)
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
            Some(ResetReason::Genesis { node: genesis, stored: meta.genesis_hash })
        } else if head + 64 < meta.cursor {
            Some(ResetReason::HeadBelowCursor { head, cursor: meta.cursor })
        } else {
            None
        };
        if let Some(reason) = reason {
            if !self.cfg.reset_on_chain_reset {
                return Err(Error::ChainReset { reason, chain_id: self.chain_id });
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
            .ok_or(Error::MissingBlock { number: 0 })
    }

    async fn initial_cursor(&self) -> Result<(BlockNumber, B256)> {
        let at = self.cfg.start_block().saturating_sub(1);
        let hdr =
            self.chain.header(BlockNumberOrTag::Number(at)).await?.ok_or(ConfigError::StartBeyondHead(at))?;
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
        let heights = self.fetch_heights().await?;
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
        let events = decode_logs(&self.chain, self.chain_id, &logs, &headers).await?;
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
            self.chain.clone(),
            Arc::new(self.addresses.clone()),
            Arc::new(self.topics.clone()),
            self.range.clone(),
        );
        let (backfill_cfg, chain_id) = (self.cfg.backfill.clone(), self.chain_id);
        // Each range is fetched (and decoded) by its own task, so fetching runs ahead while a batch commits;
        // at most `concurrency` ranges are fetched or waiting, which bounds memory.
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
                Task(tokio::spawn(async move {
                    let logs = chain.logs(&addresses, &topics, from, to, &range, cfg.min_range);
                    let hdr = chain.header(BlockNumberOrTag::Number(to));
                    let (logs, hdr) = tokio::try_join!(logs, hdr)?;
                    let hdr = hdr.ok_or(Error::MissingBlock { number: to })?;
                    let n = logs.len() as u64;
                    let span = to - from + 1;
                    if from == first {
                        // The probe sizes the next range (at most 4× its own span while it was light).
                        let by_density = (span * cfg.target_logs.max(1) / n.max(1)).max(cfg.min_range.max(1));
                        range.store(by_density.min(span * 4).min(cfg.max_range).max(1), Ordering::Relaxed);
                    } else {
                        resize_range(&range, &cfg, span, n);
                    }
                    // Fetch in parallel once a response was dense enough to size the ranges, or the ranges
                    // reached their maximum.
                    let dense = n.saturating_mul(8) >= cfg.target_logs || span >= cfg.max_range;
                    sized_tx.send_modify(|(seen, parallel)| {
                        *seen += 1;
                        *parallel |= dense;
                    });
                    let events = decode_logs(&chain, chain_id, &logs, &[hdr]).await?;
                    Ok::<_, Error>((to, n, events, hdr))
                }))
            })
            .buffered(self.cfg.backfill.concurrency.max(1));
        let mut fetched = std::pin::pin!(fetched);
        while let Some((to, n, events, hdr)) = fetched.try_next().await? {
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
            events_done += n;
            self.progress.send_replace(Some(BackfillProgress {
                first,
                cursor: to,
                end,
                events: events_done,
                elapsed: started.elapsed(),
            }));
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

    async fn commit(&self, batch: Batch) -> Result<()> {
        let cursor = batch.cursor;
        let heights = batch.heights;
        let out = writer::commit_batch(&self.store, &batch).await?;
        metrics::committed(out.inserted, cursor);
        if out.duplicates > 0 {
            tracing::debug!(duplicates = out.duplicates, "events already stored were skipped");
        }
        self.record_heights(&heights, cursor);
        let _ = self.notify.send(IndexNotification::Committed { cursor, orders: out.orders });
        Ok(())
    }

    fn record_heights(&self, h: &Heights, cursor: BlockNumber) {
        metrics::heights(h, cursor);
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
        let out = writer::rollback_to(&self.store, self.chain_id, fork).await?;
        metrics::reorg(depth);
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
            metrics::reconciliation(*escrow, r.ok);
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

/// Logs to stored events. Nodes that do not put `blockTimestamp` on logs: the timestamp comes from `headers`
/// or, failing that, from the node.
async fn decode_logs(
    chain: &Chain,
    chain_id: u64,
    logs: &[Log],
    headers: &[BlockRef],
) -> Result<Vec<DecodedEvent>> {
    // Nodes that do not put `blockTimestamp` on logs: take it from the headers.
    let mut missing: Vec<BlockNumber> = logs
        .iter()
        .filter(|l| l.block_timestamp.is_none())
        .filter_map(|l| l.block_number)
        .filter(|n| !headers.iter().any(|h| h.number == *n))
        .collect();
    missing.dedup();
    let chain = chain.clone();
    let extra: Vec<BlockRef> = futures::stream::iter(missing)
        .map(move |n| {
            let chain = chain.clone();
            async move {
                chain.header(BlockNumberOrTag::Number(n)).await?.ok_or(Error::MissingBlock { number: n })
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
        let raw = raw_event(chain_id, log, ts(log.block_number)).map_err(|missing| Error::InvalidLog {
            missing,
            block: log.block_number,
            tx: log.transaction_hash,
        })?;
        match raw.decode() {
            Some(ev) => out.push(ev),
            None => {
                tracing::warn!(tx = %log.transaction_hash.unwrap_or_default(), "undecodable escrow log skipped")
            }
        }
    }
    Ok(out)
}

/// The raw event of an RPC log. `Err(field)` if a required field is missing (a pending log).
fn raw_event(
    chain_id: u64,
    log: &Log,
    fallback_timestamp: Option<u64>,
) -> std::result::Result<RawEvent, &'static str> {
    Ok(RawEvent {
        chain_id,
        escrow: log.address(),
        pos: EventPos {
            block_number: log.block_number.ok_or("blockNumber")?,
            block_hash: log.block_hash.ok_or("blockHash")?,
            block_timestamp: log.block_timestamp.or(fallback_timestamp).ok_or("blockTimestamp")?,
            tx_hash: log.transaction_hash.ok_or("transactionHash")?,
            tx_index: log.transaction_index.ok_or("transactionIndex")?,
            log_index: log.log_index.ok_or("logIndex")?,
        },
        topics: log.topics().to_vec(),
        data: log.data().data.clone(),
    })
}

/// Blocks of the first backfill range (at most; the configured initial range if smaller).
const PROBE_RANGE: u64 = 10;

/// Size the next ranges by what one returned: aim at `target_logs` per response (bounded memory with
/// `concurrency` ranges in flight); grow only after a full, light range (fast while far below the target).
fn resize_range(range: &AtomicU64, cfg: &crate::config::BackfillConfig, span: u64, n: u64) {
    let size = range.load(Ordering::Relaxed);
    let target = cfg.target_logs.max(1);
    if n > target {
        let shrunk = (span * target / n).clamp(cfg.min_range.max(1), size.max(1));
        range.fetch_min(shrunk, Ordering::Relaxed);
    } else if span >= size && n <= target / 2 {
        let grown = if n.saturating_mul(8) <= target { size.saturating_mul(4) } else { size + size / 2 + 1 };
        let _ = range.compare_exchange(size, grown.min(cfg.max_range), Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A spawned task, aborted when dropped (a backfill cancelled mid-way leaves no fetch running).
struct Task<T>(tokio::task::JoinHandle<Result<T>>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for Task<T> {
    type Output = Result<T>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<T>> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or_else(|e| Err(Error::Task(e))))
    }
}

/// Shared handle.
pub type SharedIndexer<S> = Arc<Indexer<S>>;
