//! The indexing loop.
//!
//! Vocabulary (as in alloy's canonical log watcher and reth's ExEx notifications): a **committed** batch
//! extends the canonical chain the store knows; a **reverted** range is dropped when the node's chain no
//! longer contains the stored blocks (a reorg), detected by a parent-hash mismatch at the cursor or inside a
//! fetched range. Below the node's finalized height ranges are fetched concurrently; above it, one range at
//! a time with every header checked. The cursor moves in the same transaction as the events and derived
//! state it covers, so a crash at any point resumes exactly where the last commit left off.

use std::{
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, BlockNumber},
};
use futures::StreamExt;
use tokio::sync::broadcast;

pub use holdfast_primitives::IndexNotification;
use holdfast_primitives::{BlockRef, Heights, event::event_signatures};
use holdfast_store::{ChainReader, MetaWriter, OrderReader, Storage};

use crate::{
    ConfigError, Error, ResetReason, Result,
    chain::Chain,
    config::IndexerConfig,
    metrics,
    source::ChainSource,
    writer::{self, Batch},
};

mod backfill;
mod decode;
mod live;
mod range;
mod reconcile;
mod reorg;

/// What the indexer needs of a store: its readers, the chain-state writer and one-transaction steps.
pub trait IndexStore: ChainReader + MetaWriter + OrderReader + Storage + Send + Sync {}

impl<T: ChainReader + MetaWriter + OrderReader + Storage + Send + Sync> IndexStore for T {}

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

/// Follows the escrows of one chain (`C`: a JSON-RPC node by default) into a store.
#[derive(Debug)]
pub struct Indexer<S, C = Chain> {
    cfg: IndexerConfig,
    chain: C,
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

impl<S: IndexStore> Indexer<S, Chain> {
    /// Connect to the node of `cfg.rpc_url` and check that it serves the configured chain.
    pub async fn new(cfg: IndexerConfig, store: S) -> Result<Self> {
        let chain = Chain::connect(&cfg.rpc_url, cfg.retry.clone()).await?;
        Self::with_source(cfg, store, chain).await
    }
}

impl<S: IndexStore, C: ChainSource> Indexer<S, C> {
    /// Follow `chain` (checked to serve the configured chain) into `store`.
    pub async fn with_source(cfg: IndexerConfig, store: S, chain: C) -> Result<Self> {
        let chain_id = cfg.chain_id()?;
        let node = chain.chain_id().await?;
        if node != chain_id {
            return Err(Error::ChainMismatch { node, configured: chain_id });
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

    /// The chain source.
    pub fn chain(&self) -> &C {
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
        let mut heads = match self.chain.new_heads().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "newHeads subscription failed; polling instead");
                None
            }
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
pub type SharedIndexer<S, C = Chain> = Arc<Indexer<S, C>>;
