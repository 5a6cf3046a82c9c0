//! One chain's indexing inside a process (`holdfast index`, `run` and `dev` run one per chain): on
//! Postgres the writer election (write while holding the chain's writer lock, stand by otherwise), the
//! node's faults reported and retried, and the indexer run until told to stop.

use std::{sync::Arc, time::Duration};

use holdfast_indexer::{
    IndexerConfig,
    sync::{BackfillProgress, Indexer},
};
use holdfast_primitives::{IndexNotification, IndexerHealth};
use holdfast_store::Store;
use tokio::sync::{broadcast, watch};

/// Called with each new indexer's backfill progress (the progress bar of `holdfast index`).
pub(crate) type OnProgress = Arc<dyn Fn(watch::Receiver<Option<BackfillProgress>>) + Send + Sync>;

/// One chain's indexing in this process.
pub(crate) struct ChainTask {
    /// The chain.
    pub(crate) cfg: IndexerConfig,
    /// The store (the task takes a handle with a writer fence of its own).
    pub(crate) store: Store,
    /// Who this process is, as recorded in the writer lease (Postgres).
    pub(crate) holder: String,
    /// A writer that stops answering for this long loses the chain's writer lock (Postgres).
    pub(crate) liveness: Duration,
    /// The chain's health, as the API's readiness reports it; also its role (writer or standby).
    pub(crate) health: watch::Sender<IndexerHealth>,
    /// Commit notifications for the API and the webhook worker in this process.
    pub(crate) notify: Option<broadcast::Sender<IndexNotification>>,
    /// The lowest change-log position this process's open streams were sent (change-log retention).
    pub(crate) floor: Option<watch::Receiver<Option<i64>>>,
    /// See [`OnProgress`].
    pub(crate) on_progress: Option<OnProgress>,
}

/// What one chain's finished task (`(chain id, ChainTask::run's result)` from a `JoinSet`) means for the
/// process: `Ok` when it ended cleanly; else why it halted, or that its task panicked or was cancelled.
pub(crate) fn join_outcome(
    joined: Result<(u64, holdfast_indexer::Result<()>), tokio::task::JoinError>,
) -> eyre::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((chain_id, Err(e))) => {
            Err(eyre::Report::new(e).wrap_err(format!("indexing of chain {chain_id} halted")))
        }
        Err(e) => Err(eyre::Report::new(e).wrap_err("an indexer task failed")),
    }
}

/// Resolves once `stop` turns true (at once if it is).
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl ChainTask {
    /// Index the chain until `stop` turns true (then `Ok`), until a one-shot indexer caught up (`Ok`), or
    /// until it halts on a fault retrying cannot fix (`Err`). Node and database faults are reported in
    /// `health` and retried without limit; on Postgres the process writes the chain only while it holds its
    /// writer lock, and stands by again when another process took over (fenced).
    pub(crate) async fn run(self, stop: watch::Receiver<bool>) -> holdfast_indexer::Result<()> {
        let chain_id = self.cfg.chain_id()?;
        // A fence of its own: fencing this chain's writes must not touch another chain's handle.
        let store = self.store.unfenced();
        let Store::Postgres(pg) = &store else {
            return self.index_as_writer(store.clone(), None, stop).await;
        };
        let chain = chain_id.to_string();
        let role = |writer: bool| {
            metrics::gauge!("holdfast_writer_role", "chain_id" => chain.clone(), "role" => "writer")
                .set(if writer { 1.0 } else { 0.0 });
            metrics::gauge!("holdfast_writer_role", "chain_id" => chain.clone(), "role" => "standby")
                .set(if writer { 0.0 } else { 1.0 });
        };
        let started = unix_now();
        let mut standing_by = false;
        let mut retries = 0;
        loop {
            let pause = match pg.try_acquire_writer(chain_id, &self.holder, self.liveness).await {
                Ok(Some(lease)) => {
                    standing_by = false;
                    retries = 0;
                    tracing::info!(chain_id, epoch = lease.epoch, "writer of this chain");
                    role(true);
                    metrics::gauge!("holdfast_writer_epoch", "chain_id" => chain.clone())
                        .set(lease.epoch as f64);
                    match self.index_as_writer(store.clone(), Some(lease), stop.clone()).await {
                        Err(e) if is_fenced(&e) => {
                            tracing::warn!(chain_id, error = %e, "fenced: another process took over; standing by");
                            continue;
                        }
                        other => return other,
                    }
                }
                Ok(None) => {
                    let writer = pg.writer_lease(chain_id).await.ok().flatten().map(|l| l.holder);
                    if !standing_by {
                        tracing::info!(
                            chain_id,
                            writer = writer.as_deref().unwrap_or("?"),
                            "standby: another process writes this chain; taking over when it stops"
                        );
                        role(false);
                        standing_by = true;
                    }
                    self.health.send_replace(IndexerHealth::Standby { writer });
                    Duration::from_millis(250)
                }
                Err(e) => {
                    retries += 1;
                    if retries == 1 {
                        tracing::warn!(chain_id, error = %e, "cannot reach the writer lock; retrying");
                    }
                    self.health.send_replace(IndexerHealth::Faulted {
                        fault: format!("cannot take the writer lock: {e}"),
                        since: started,
                        retries,
                    });
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = stopped(stop.clone()) => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Connect to the node (retrying while it is unreachable, unless one-shot), then index until stopped,
    /// or until `lease` (the writer lock on Postgres) is lost, which is reported as the fenced error it
    /// would meet at its next commit.
    async fn index_as_writer(
        &self,
        store: Store,
        lease: Option<holdfast_store::WriterLease>,
        stop: watch::Receiver<bool>,
    ) -> holdfast_indexer::Result<()> {
        let mut backoff = holdfast_indexer::sync::fault_backoff();
        let started = unix_now();
        let mut retries = 0;
        let indexer = loop {
            let attempt = tokio::select! {
                () = stopped(stop.clone()) => return Ok(()),
                r = Indexer::new(self.cfg.clone(), store.clone()) => r,
            };
            match attempt {
                Ok(indexer) => break indexer,
                // A one-shot backfill (`--exit-when-caught-up`) fails fast on a node it cannot reach; a
                // running service reports the fault and retries.
                Err(e) if e.is_fatal() || is_fenced(&e) || self.cfg.exit_when_caught_up => {
                    if !is_fenced(&e) {
                        self.health.send_replace(IndexerHealth::Halted { reason: e.to_string() });
                    }
                    return Err(e);
                }
                Err(e) => {
                    retries += 1;
                    if retries == 1 {
                        tracing::warn!(chain_id = ?self.cfg.chain_id().ok(), error = %e,
                            "cannot reach the node; serving the stored data and retrying");
                    }
                    self.health.send_replace(IndexerHealth::Faulted {
                        fault: e.to_string(),
                        since: started,
                        retries,
                    });
                    let pause = backoff.next().unwrap_or(Duration::from_secs(15));
                    tokio::select! {
                        () = stopped(stop.clone()) => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        };
        if let Some(on_progress) = &self.on_progress {
            on_progress(indexer.progress());
        }
        let mut indexer = indexer.with_health(self.health.clone());
        if let Some(notify) = &self.notify {
            indexer = indexer.with_notify(notify.clone());
        }
        // Retention never compacts what the API's open streams have not been sent.
        if let Some(floor) = &self.floor {
            indexer = indexer.with_change_floor(floor.clone());
        }
        let Some(mut lease) = lease else { return indexer.run(stopped(stop)).await };
        let (chain_id, epoch) = (lease.chain_id, lease.epoch);
        tokio::select! {
            r = indexer.run(stopped(stop)) => r,
            () = lease.lost() => {
                tracing::warn!(chain_id, "lost the writer lock; standing by");
                Err(holdfast_store::Error::Fenced { chain_id, epoch, current: None }.into())
            }
        }
    }
}

/// Whether indexing stopped because this process's writer lease was taken over.
fn is_fenced(e: &holdfast_indexer::Error) -> bool {
    matches!(e, holdfast_indexer::Error::Store(holdfast_store::Error::Fenced { .. }))
}

/// This process, as recorded in a writer lease: `pid=… host=… (what)`.
pub(crate) fn holder(what: &str) -> String {
    format!(
        "pid={} host={} ({what})",
        std::process::id(),
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim()
    )
}
