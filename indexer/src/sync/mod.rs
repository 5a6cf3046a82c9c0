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
use holdfast_primitives::{BlockRef, Heights, IndexerHealth, event::event_signatures};
use holdfast_store::{ChainReader, DeferredIndexes, FeedReader, MetaWriter, OrderReader, Storage};

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
pub mod retention;

/// What the indexer needs of a store: its readers, the chain-state writer, one-transaction steps and the
/// deferred index build.
pub trait IndexStore:
    ChainReader + DeferredIndexes + FeedReader + MetaWriter + OrderReader + Storage + Send + Sync
{
}

impl<T: ChainReader + DeferredIndexes + FeedReader + MetaWriter + OrderReader + Storage + Send + Sync>
    IndexStore for T
{
}

/// Where this process stands with the store's deferred indexes ([`DeferredIndexes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexPhase {
    /// Not asked yet.
    Unknown,
    /// Deferred: to be built once the cursor reaches the finalized height.
    Deferred,
    /// Built, or never deferred: nothing to do.
    Settled,
}

/// Whether work done at most once per `every` is due; if so, marks it done now (in `last`).
fn due(last: &std::sync::Mutex<Option<Instant>>, every: std::time::Duration) -> bool {
    let mut last = last.lock().expect("not poisoned");
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

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
    /// The source; replaced by a fresh connection when it keeps failing (a websocket whose backend is gone).
    chain: std::sync::RwLock<C>,
    /// What the indexer is doing, for readiness.
    health: tokio::sync::watch::Sender<IndexerHealth>,
    store: S,
    chain_id: u64,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    range: Arc<AtomicU64>,
    tokens: Vec<(Address, Address)>,
    notify: broadcast::Sender<IndexNotification>,
    last_reconcile: std::sync::Mutex<Option<Instant>>,
    last_compaction: std::sync::Mutex<Option<Instant>>,
    /// The lowest change-log position a connected reader of this process has been sent (see
    /// [`Indexer::with_change_floor`]).
    change_floor: Option<tokio::sync::watch::Receiver<Option<i64>>>,
    /// When the caught-up indexer last recorded the node's heights (see [`HEARTBEAT`]).
    heartbeat: std::sync::Mutex<Option<Instant>>,
    /// Heights as last fetched (the fast path's finality).
    heights: std::sync::Mutex<Heights>,
    progress: tokio::sync::watch::Sender<Option<BackfillProgress>>,
    index_phase: std::sync::Mutex<IndexPhase>,
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
            chain: std::sync::RwLock::new(chain),
            health: tokio::sync::watch::Sender::new(IndexerHealth::Running),
            store,
            chain_id,
            tokens,
            notify,
            last_reconcile: std::sync::Mutex::new(None),
            last_compaction: std::sync::Mutex::new(None),
            change_floor: None,
            heartbeat: std::sync::Mutex::new(None),
            heights: std::sync::Mutex::new(Heights::default()),
            progress: tokio::sync::watch::Sender::new(None),
            index_phase: std::sync::Mutex::new(IndexPhase::Unknown),
        })
    }

    /// Never compact change-log entries above the position this channel holds (the lowest position the
    /// API's connected change-feed readers have been sent, in `holdfast run`); `None` in it: no reader.
    pub fn with_change_floor(mut self, floor: tokio::sync::watch::Receiver<Option<i64>>) -> Self {
        self.change_floor = Some(floor);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The chain source (a handle: the indexer replaces its own after repeated faults).
    pub fn chain(&self) -> C {
        self.chain.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Publish commits and reverts on `notify` instead of a channel of the indexer's own (so that
    /// listeners can subscribe before the indexer exists, e.g. while the node is still unreachable).
    pub fn with_notify(mut self, notify: broadcast::Sender<IndexNotification>) -> Self {
        self.notify = notify;
        self
    }

    /// Publish the indexer's health on `health` instead of a channel of its own (see [`Self::health`]).
    pub fn with_health(mut self, health: tokio::sync::watch::Sender<IndexerHealth>) -> Self {
        health.send_replace(self.health.borrow().clone());
        self.health = health;
        self
    }

    /// What the indexer is doing: running, retrying a fault (which, since when, how often) or halted.
    pub fn health(&self) -> tokio::sync::watch::Receiver<IndexerHealth> {
        self.health.subscribe()
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
    ///
    /// A fault is a state, not an exit: a node or database that fails is retried without limit, with capped
    /// exponential backoff and jitter, rebuilding the connection to the node after repeated failures, and
    /// indexing resumes exactly where the store says; [`Self::health`] reports the fault meanwhile. Only an
    /// error retrying cannot fix ([`Error::is_fatal`]) ends the run, and [`Self::health`] then says why.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        let mut faults = Faults::default();
        loop {
            let attempt = tokio::select! {
                r = self.follow_chain(&mut faults) => r,
                _ = &mut shutdown => return Ok(()),
            };
            let err = match attempt {
                Ok(()) => return Ok(()),
                Err(e) if e.is_fatal() => {
                    tracing::error!(error = %e, "indexing halted: retrying cannot fix this");
                    self.health.send_replace(IndexerHealth::Halted { reason: e.to_string() });
                    return Err(e);
                }
                Err(e) => e,
            };
            let delay = faults.record(&err);
            self.health.send_replace(faults.health());
            if faults.should_log() {
                tracing::warn!(error = %err, retries = faults.retries, retry_in = ?delay, "indexing fault; retrying");
            }
            metrics::fault(self.chain_id, faults.retries);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = &mut shutdown => return Ok(()),
            }
            if faults.retries >= RECONNECT_AFTER {
                match self.chain().reconnect().await {
                    Ok(fresh) => {
                        *self.chain.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh
                    }
                    Err(e) => tracing::debug!(error = %e, "reconnecting to the node failed"),
                }
            }
        }
    }

    /// Follow the chain until the first error (or, with `exit_when_caught_up`, the head); every successful
    /// step clears `faults`.
    async fn follow_chain(&self, faults: &mut Faults) -> Result<()> {
        self.check_chain().await?;
        let mut heads = match self.chain().new_heads().await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "newHeads subscription failed; polling instead");
                None
            }
        };
        // A head announced by the subscription, to commit directly if it extends the cursor.
        let mut announced: Option<BlockRef> = None;
        loop {
            let outcome = match announced.take() {
                Some(head) => self.follow(head).await?,
                None => self.step().await?,
            };
            if let Some(down) = faults.clear() {
                tracing::info!(down_for = ?down, "indexing recovered");
                metrics::recovered(self.chain_id);
            }
            self.health.send_if_modified(|h| {
                let changed = *h != IndexerHealth::Running;
                *h = IndexerHealth::Running;
                changed
            });
            if outcome == StepOutcome::CaughtUp {
                if let Err(e) = self.maybe_reconcile().await {
                    tracing::warn!(error = %e, "reconciliation failed");
                }
                if let Err(e) = self.maybe_compact().await {
                    tracing::warn!(error = %e, "change-log retention failed");
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
                }
            }
        }
    }

    /// The node's heights (remembered for the live fast path).
    async fn fetch_heights(&self) -> Result<Heights> {
        let h = self.chain().heights(self.cfg.finality).await?;
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
        let head = self.chain().head().await?;
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
        self.chain()
            .header(BlockNumberOrTag::Number(0))
            .await?
            .map(|b| b.hash)
            .ok_or(Error::MissingBlock { number: 0 })
    }

    async fn initial_cursor(&self) -> Result<(BlockNumber, B256)> {
        let at = self.cfg.start_block().saturating_sub(1);
        let hdr = self
            .chain()
            .header(BlockNumberOrTag::Number(at))
            .await?
            .ok_or(ConfigError::StartBeyondHead(at))?;
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
            let node = self.chain().header(BlockNumberOrTag::Number(cursor)).await?;
            if node.map(|b| b.hash) != Some(cursor_hash) {
                self.handle_reorg(meta, node).await?;
                return Ok(StepOutcome::Progressed);
            }
        }
        if cursor < heights.finalized {
            self.enter_bulk_phase().await?;
            self.backfill(cursor, heights.finalized, genesis, heights).await?;
            return Ok(StepOutcome::Progressed);
        }
        self.leave_bulk_phase().await?;
        if heights.head <= cursor {
            // New heights, or a heartbeat: the stored update time says when the indexer last confirmed the
            // node's head, so that readiness can tell an idle chain (ready) from an unreachable node.
            let heartbeat_due =
                self.heartbeat.lock().expect("not poisoned").is_none_or(|t| t.elapsed() >= HEARTBEAT);
            if meta.is_some_and(|m| m.heights != heights) || (meta.is_some() && heartbeat_due) {
                self.store.update_heights(self.chain_id, heights).await?;
                *self.heartbeat.lock().expect("not poisoned") = Some(Instant::now());
                if meta.is_some_and(|m| m.heights != heights) {
                    let _ = self.notify.send(IndexNotification::Heights(heights));
                }
            }
            return Ok(StepOutcome::CaughtUp);
        }
        self.tail(cursor, cursor_hash, genesis, heights).await
    }

    /// Before a backfill: defer the store's read-path indexes if it holds no events yet (and
    /// `defer_indexes` is set), or learn that an earlier process deferred them. Asked once per process.
    async fn enter_bulk_phase(&self) -> Result<()> {
        if *self.index_phase.lock().expect("not poisoned") != IndexPhase::Unknown {
            return Ok(());
        }
        let deferred = if self.cfg.backfill.defer_indexes.unwrap_or_else(|| self.store.defers_by_default()) {
            self.store.defer_indexes().await?
        } else {
            self.store.indexes_deferred().await?
        };
        if deferred {
            tracing::info!("read-path indexes deferred: built once the backfill reaches the finalized block");
        }
        *self.index_phase.lock().expect("not poisoned") =
            if deferred { IndexPhase::Deferred } else { IndexPhase::Settled };
        Ok(())
    }

    /// At or above the finalized height: build the indexes a backfill deferred (this process's, or one that
    /// crashed before building them), once.
    async fn leave_bulk_phase(&self) -> Result<()> {
        if *self.index_phase.lock().expect("not poisoned") == IndexPhase::Settled {
            return Ok(());
        }
        let started = Instant::now();
        if self.store.build_deferred_indexes().await? {
            tracing::info!(secs = started.elapsed().as_secs_f64(), "deferred indexes built");
        }
        *self.index_phase.lock().expect("not poisoned") = IndexPhase::Settled;
        Ok(())
    }

    async fn commit(&self, batch: Batch) -> Result<()> {
        let cursor = batch.cursor;
        let heights = batch.heights;
        let out = writer::commit_batch(&self.store, &batch).await?;
        metrics::committed(self.chain_id, out.inserted, cursor);
        if out.duplicates > 0 {
            tracing::debug!(duplicates = out.duplicates, "events already stored were skipped");
        }
        self.record_heights(&heights, cursor);
        let _ = self.notify.send(IndexNotification::Committed { cursor, orders: out.orders });
        Ok(())
    }

    fn record_heights(&self, h: &Heights, cursor: BlockNumber) {
        metrics::heights(self.chain_id, h, cursor);
    }
}

/// How often a caught-up indexer records the node's heights even when they did not change (the store's
/// `updated_at` is then the last time the node's head was confirmed: readiness reads it).
const HEARTBEAT: Duration = Duration::from_secs(2);

/// The backoff between retries of a failing step (or of connecting to the node): exponential from 250 ms,
/// capped at 15 s, with jitter, never giving up.
pub fn fault_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(15))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Consecutive failures after which the connection to the node is rebuilt.
const RECONNECT_AFTER: u32 = 2;

/// The current run of consecutive faults.
#[derive(Debug, Default)]
struct Faults {
    /// Failures in a row.
    retries: u32,
    /// When the first of them happened.
    since: Option<(Instant, u64)>,
    /// The last one.
    last: String,
    /// The backoff schedule of this run of faults: capped exponential with jitter (`backon`).
    backoff: Option<backon::ExponentialBackoff>,
    /// When a fault was last logged (they are logged at a bounded rate).
    logged: Option<Instant>,
}

impl Faults {
    /// Record a failure; returns how long to wait before retrying.
    fn record(&mut self, e: &Error) -> Duration {
        self.retries += 1;
        self.last = e.to_string();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.since.get_or_insert((Instant::now(), now));
        let backoff = self.backoff.get_or_insert_with(fault_backoff);
        backoff.next().unwrap_or(Duration::from_secs(15))
    }

    /// The first failure, then at most one line every 30 s.
    fn should_log(&mut self) -> bool {
        let due = self.logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
        if due {
            self.logged = Some(Instant::now());
        }
        due
    }

    fn health(&self) -> IndexerHealth {
        IndexerHealth::Faulted {
            fault: self.last.clone(),
            since: self.since.map_or(0, |(_, unix)| unix),
            retries: self.retries,
        }
    }

    /// After a success: how long the faults lasted, if there were any.
    fn clear(&mut self) -> Option<Duration> {
        let down = self.since.map(|(t, _)| t.elapsed());
        *self = Self::default();
        down
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
