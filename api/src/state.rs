//! Shared state: the store, the configuration, and the indexing state every waiter wakes on.
//!
//! One background task (the watcher) keeps a [`Snapshot`] of every chain's cursor and heights and of the
//! newest change-log entry in a `tokio::sync::watch` channel. It re-reads them when the in-process indexer
//! notifies a commit, revert or new heights, or when another process commits (Postgres `LISTEN`, the
//! standalone `serve` mode), and otherwise every `poll_interval` (a safety net; the only wake-up of a
//! standalone `serve` on SQLite). Long-polls, the change feed and the finality of every
//! record read that snapshot: no request polls the database in a loop.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use alloy::primitives::{Address, B256};
use holdfast_primitives::{ChainMeta, Heights, IndexNotification, IndexerHealth, OrderState};
use holdfast_store::{FeedReader, OrderReader, Store};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};

use crate::{
    cache::OrderCache,
    config::ApiConfig,
    error::{ApiError, ApiResult},
};

/// Renders the Prometheus exposition text (e.g. `PrometheusHandle::render`).
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// What the watcher last read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Whether it was read at least once.
    pub loaded: bool,
    /// Every chain's indexing state, by chain id.
    pub chains: Arc<BTreeMap<u64, ChainMeta>>,
    /// Sequence number of the newest change-log entry.
    pub last_seq: i64,
}

impl Snapshot {
    /// A chain's heights (zero if it was never indexed).
    pub fn heights(&self, chain_id: u64) -> Heights {
        self.chains.get(&chain_id).map(|m| m.heights).unwrap_or_default()
    }
}

struct Pending {
    tx: watch::Sender<Snapshot>,
    notifications: Option<broadcast::Receiver<IndexNotification>>,
    signals: Option<watch::Receiver<u64>>,
}

struct Feed {
    snapshot: watch::Receiver<Snapshot>,
    pending: Mutex<Option<Pending>>,
    shutdown: watch::Sender<bool>,
    /// Unix milliseconds of the watcher's last successful read (0: never).
    last_ok_ms: AtomicU64,
    /// One permit per long-poll or event stream that may be open (`ApiConfig::max_waits`).
    waits: Arc<Semaphore>,
    /// The change-log position each open event stream has been sent through, by stream.
    readers: Mutex<BTreeMap<u64, i64>>,
    next_reader: AtomicU64,
    /// The lowest of them (`None`: no stream open), for the change-log retention of `holdfast run`.
    floor: watch::Sender<Option<i64>>,
    /// Bumped each time the watcher publishes a different snapshot, or fails to read one: the validity of
    /// the order cache's entries.
    generation: AtomicU64,
    /// Single-order reads kept in memory (`ApiConfig::order_cache`), once the watcher is woken by commits.
    orders: Option<OrderCache>,
    /// Whether the watcher is woken by commits (notifications or signals), not only by its poll.
    signalled: std::sync::atomic::AtomicBool,
}

impl Feed {
    fn publish_floor(&self, readers: &BTreeMap<u64, i64>) {
        let lowest = readers.values().min().copied();
        self.floor.send_if_modified(|f| std::mem::replace(f, lowest) != lowest);
    }
}

/// An open event stream's place in the change log: what it has been sent through. Retention in the same
/// process never compacts above the lowest place (see [`AppState::change_floor`]). Removed when dropped.
pub(crate) struct ReaderPosition {
    feed: Arc<Feed>,
    id: u64,
}

impl std::fmt::Debug for ReaderPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderPosition").field("id", &self.id).finish_non_exhaustive()
    }
}

impl ReaderPosition {
    /// The stream has been sent everything through `seq`.
    pub(crate) fn advance(&self, seq: i64) {
        let mut readers = self.feed.readers.lock().expect("not poisoned");
        readers.insert(self.id, seq);
        self.feed.publish_floor(&readers);
    }
}

impl Drop for ReaderPosition {
    fn drop(&mut self) {
        let mut readers = self.feed.readers.lock().expect("not poisoned");
        readers.remove(&self.id);
        self.feed.publish_floor(&readers);
    }
}

/// A long-poll's or event stream's place among the `max_waits` allowed; given back when dropped.
///
/// A semaphore of our own rather than tower's `ConcurrencyLimit`: only requests that wait count, and an
/// event stream holds its place for the life of the response body, long after the service call returned
/// (where tower's limit lets go).
#[derive(Debug)]
pub(crate) struct WaitSlot {
    permit: Option<OwnedSemaphorePermit>,
    waits: Arc<Semaphore>,
    max: usize,
}

impl WaitSlot {
    /// Export how many places are taken.
    fn record(waits: &Semaphore, max: usize) {
        metrics::gauge!("holdfast_api_open_waits").set(max.saturating_sub(waits.available_permits()) as f64);
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        Self::record(&self.waits, self.max);
    }
}

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) config: Arc<ApiConfig>,
    pub(crate) metrics: Option<MetricsRender>,
    /// The in-process indexers' health by chain id (`holdfast run`), for readiness.
    pub(crate) indexers: BTreeMap<u64, watch::Receiver<IndexerHealth>>,
    /// Nodes (one per chain) to ask about transactions the store has no event of.
    pub(crate) tx_lookups: Vec<Arc<dyn TxLookup>>,
    feed: Arc<Feed>,
}

/// What a node says about a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeTx {
    /// Not mined (pending, dropped, or never sent): it may still be.
    NotMined,
    /// Mined in `block`, and it failed (receipt status 0): it emitted no event and never will.
    Failed {
        /// Its block.
        block: u64,
    },
    /// Mined in `block` and succeeded.
    Succeeded {
        /// Its block.
        block: u64,
    },
}

/// Error of a [`TxLookup`] (a node that cannot be reached, an RPC error).
pub type LookupError = Box<dyn std::error::Error + Send + Sync>;

/// A node of chain [`TxLookup::chain_id`], asked about a transaction the store has no escrow event of, so
/// that `GET /v1/transactions/{txHash}` can answer at once a transaction that failed on chain (`TX_FAILED`)
/// or that was mined without touching the escrow (`TX_NOT_FOUND`) instead of waiting for it in vain. The
/// API itself holds no RPC client: the binary that has one (`holdfast run`) plugs it in.
pub trait TxLookup: Send + Sync + 'static {
    /// The chain the node serves.
    fn chain_id(&self) -> u64;
    /// What the node says about `tx`.
    fn lookup(&self, tx: B256) -> futures::future::BoxFuture<'_, Result<NodeTx, LookupError>>;
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.backend())
            .field("config", &self.config)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl AppState {
    /// State over `store`. The watcher starts with [`crate::router`] (inside a Tokio runtime); without
    /// [`AppState::with_notifications`] it reads the indexing state every `config.poll_interval`.
    pub fn new(store: Store, config: ApiConfig) -> Self {
        let (tx, rx) = watch::channel(Snapshot::default());
        let (shutdown, _) = watch::channel(false);
        let waits = Arc::new(Semaphore::new(config.max_waits));
        let orders = (config.order_cache > 0).then(|| OrderCache::new(config.order_cache));
        Self {
            store,
            config: Arc::new(config),
            metrics: None,
            indexers: BTreeMap::new(),
            tx_lookups: Vec::new(),
            feed: Arc::new(Feed {
                snapshot: rx,
                pending: Mutex::new(Some(Pending { tx, notifications: None, signals: None })),
                shutdown,
                last_ok_ms: AtomicU64::new(0),
                waits,
                readers: Mutex::new(BTreeMap::new()),
                next_reader: AtomicU64::new(0),
                floor: watch::Sender::new(None),
                generation: AtomicU64::new(0),
                orders,
                signalled: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Wake on the in-process indexer's notifications (the indexer's `subscribe`)
    /// instead of waiting for the next poll.
    pub fn with_notifications(self, rx: broadcast::Receiver<IndexNotification>) -> Self {
        if let Some(p) = self.feed.pending.lock().expect("not poisoned").as_mut() {
            p.notifications = Some(rx);
        }
        self
    }

    /// Wake on another process's commits (`holdfast_store::Store::commit_signals`: Postgres `LISTEN`), as
    /// a replica does; the `poll_interval` re-read stays as a safety net.
    pub fn with_commit_signals(self, rx: watch::Receiver<u64>) -> Self {
        if let Some(p) = self.feed.pending.lock().expect("not poisoned").as_mut() {
            p.signals = Some(rx);
        }
        self
    }

    /// Report the health of the in-process indexer of `chain_id` in `/readyz` (a fault or a halt makes
    /// the API not ready for that chain, with the reason, at once; a standby is ready while the store is
    /// fresh). Once per chain the process indexes; chains without one are reported with the role `reader`.
    pub fn with_chain_health(mut self, chain_id: u64, rx: watch::Receiver<IndexerHealth>) -> Self {
        self.indexers.insert(chain_id, rx);
        self
    }

    /// The lowest change-log position the open event streams have been sent through (`None`: none open):
    /// pass it to the indexer's change-log retention (`Indexer::with_change_floor`) when both run in one
    /// process, so that retention never deletes what a connected reader has not been sent.
    pub fn change_floor(&self) -> watch::Receiver<Option<i64>> {
        self.feed.floor.subscribe()
    }

    /// Register an event stream at position `seq`.
    pub(crate) fn reader_at(&self, seq: i64) -> ReaderPosition {
        let id = self.feed.next_reader.fetch_add(1, Ordering::Relaxed);
        let reader = ReaderPosition { feed: self.feed.clone(), id };
        reader.advance(seq);
        reader
    }

    /// Ask `node` about transactions the store has no escrow event of (see [`TxLookup`]); once per chain.
    pub fn with_tx_lookup(mut self, node: impl TxLookup) -> Self {
        self.tx_lookups.push(Arc::new(node));
        self
    }

    /// Serve `/metrics` with this renderer (e.g. `move || handle.render()` of a
    /// `metrics_exporter_prometheus::PrometheusHandle`).
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Ask open streams and long-polls to end (call when shutdown starts, before `serve` waits for
    /// connections to close).
    pub fn shutdown(&self) {
        self.feed.shutdown.send_replace(true);
    }

    /// Start the watcher (once; later calls do nothing). Needs a Tokio runtime.
    pub(crate) fn start(&self) {
        let Some(p) = self.feed.pending.lock().expect("not poisoned").take() else { return };
        self.feed.signalled.store(p.notifications.is_some() || p.signals.is_some(), Ordering::Release);
        let store = self.store.clone();
        let poll = self.config.poll_interval.max(Duration::from_millis(10));
        let feed = Arc::downgrade(&self.feed);
        tokio::spawn(watch_loop(store, p.tx, p.notifications, p.signals, poll, feed));
    }

    /// A receiver of the snapshot, to wait for changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.feed.snapshot.clone()
    }

    /// A receiver that turns `true` at shutdown.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.feed.shutdown.subscribe()
    }

    /// A place for one long-poll or event stream, held until the slot is dropped; `TOO_MANY_WAITS` when
    /// `max_waits` are open.
    pub(crate) fn wait_slot(&self) -> ApiResult<WaitSlot> {
        let max = self.config.max_waits;
        let waits = &self.feed.waits;
        let permit = waits.clone().try_acquire_owned().map_err(|_| ApiError::TooManyWaits(max))?;
        WaitSlot::record(waits, max);
        Ok(WaitSlot { permit: Some(permit), waits: waits.clone(), max })
    }

    /// One order, as [`holdfast_store::OrderReader::order`] reads it; from memory when the order cache
    /// is on (`ApiConfig::order_cache`, and the watcher woken by commits) and holds it for the current
    /// snapshot (see [`crate::cache`]).
    pub(crate) async fn order(
        &self,
        chain_id: Option<u64>,
        escrow: Option<Address>,
        order_id: B256,
    ) -> holdfast_store::Result<Option<Arc<OrderState>>> {
        let feed = &self.feed;
        let Some(cache) = feed.orders.as_ref().filter(|_| feed.signalled.load(Ordering::Acquire)) else {
            return Ok(self.store.order(chain_id, escrow, order_id).await?.map(Arc::new));
        };
        let key = (chain_id, escrow, order_id);
        // Read before the store: what the store answers is at least as new as this generation's snapshot.
        let generation = feed.generation.load(Ordering::Acquire);
        if let Some(hit) = cache.get(&key, generation) {
            return Ok(hit);
        }
        let order = self.store.order(chain_id, escrow, order_id).await?.map(Arc::new);
        cache.put(key, generation, order.clone());
        Ok(order)
    }

    /// Unix milliseconds of the watcher's last successful read (0: never).
    pub(crate) fn last_ok_ms(&self) -> u64 {
        self.feed.last_ok_ms.load(Ordering::Relaxed)
    }

    /// The current snapshot; right after start, waits (briefly) for the watcher's first read, then reads
    /// the store directly.
    pub(crate) async fn snapshot(&self) -> ApiResult<Snapshot> {
        let mut rx = self.subscribe();
        if rx.borrow().loaded {
            return Ok(rx.borrow().clone());
        }
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|s| s.loaded)).await {
            return Ok(s.clone());
        }
        Ok(read_snapshot(&self.store).await?)
    }
}

/// Resolves once shutdown was requested (or the state is gone).
pub(crate) async fn until_shutdown(mut rx: watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn read_snapshot(store: &Store) -> holdfast_store::Result<Snapshot> {
    let chains = store.chain_metas().await?;
    let last_seq = store.last_change_seq().await?;
    Ok(Snapshot {
        loaded: true,
        chains: Arc::new(chains.into_iter().map(|m| (m.chain_id, m)).collect()),
        last_seq,
    })
}

async fn next_notification(rx: &mut Option<broadcast::Receiver<IndexNotification>>) {
    let Some(r) = rx.as_mut() else { return std::future::pending().await };
    match r.recv().await {
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
        Err(broadcast::error::RecvError::Closed) => {
            tracing::info!("indexer notifications ended; the API watcher polls the store");
            *rx = None;
        }
    }
}

/// The next commit signal (pending forever without signals, or once their sender is gone).
async fn next_signal(rx: &mut Option<watch::Receiver<u64>>) {
    let Some(r) = rx.as_mut() else { return std::future::pending().await };
    if r.changed().await.is_err() {
        *rx = None;
    }
}

async fn watch_loop(
    store: Store,
    tx: watch::Sender<Snapshot>,
    mut notifications: Option<broadcast::Receiver<IndexNotification>>,
    mut signals: Option<watch::Receiver<u64>>,
    poll: Duration,
    feed: std::sync::Weak<Feed>,
) {
    let mut failing = false;
    loop {
        match read_snapshot(&store).await {
            Ok(snap) => {
                if failing {
                    tracing::info!("the API watcher reads the store again");
                    failing = false;
                }
                let Some(feed) = feed.upgrade() else { return };
                feed.last_ok_ms.store(now_ms(), Ordering::Relaxed);
                tx.send_if_modified(|cur| {
                    if *cur == snap {
                        false
                    } else {
                        *cur = snap;
                        // Before the receivers are woken: whoever sees the new snapshot misses old entries.
                        feed.generation.fetch_add(1, Ordering::AcqRel);
                        true
                    }
                });
            }
            Err(e) => {
                // Nothing from memory while the store cannot be checked for commits.
                if let Some(feed) = feed.upgrade() {
                    feed.generation.fetch_add(1, Ordering::AcqRel);
                }
                if !failing {
                    tracing::warn!(error = %e, "the API watcher cannot read the indexing state");
                    failing = true;
                }
            }
        }
        tokio::select! {
            _ = tx.closed() => return,
            _ = next_notification(&mut notifications) => {}
            _ = next_signal(&mut signals) => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
