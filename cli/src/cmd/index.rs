//! `holdfast index`.

use std::net::SocketAddr;

use clap::Args;
use eyre::Context;
use holdfast_indexer::sync::{BackfillProgress, Indexer};
use holdfast_store::Store;

use crate::opts::{DbOpts, DeploymentOpts, IndexOpts, RpcOpts, Shutdown, indexer_config};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Follow the devnet escrow written by script/deploy.sh into ./data/holdfast.db
  holdfast index --rpc-url ws://127.0.0.1:8545

  # Production: Postgres, an explicit deployment file, metrics on :9100
  holdfast index --rpc-url wss://node.example/ws --deployment deployments/8453.json \\
      --database-url postgres://holdfast@db/holdfast --metrics-addr 0.0.0.0:9100

  # One-shot backfill
  holdfast index --escrow 0x… --start-block 123456 --chain-id 8453 --exit-when-caught-up";

/// Arguments of `holdfast index`.
#[derive(Debug, Clone, Args)]
pub(crate) struct IndexArgs {
    #[command(flatten)]
    pub(crate) rpc: RpcOpts,
    #[command(flatten)]
    pub(crate) db: DbOpts,
    #[command(flatten)]
    pub(crate) deployments: DeploymentOpts,
    #[command(flatten)]
    pub(crate) index: IndexOpts,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long, env = "HOLDFAST_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
    /// Postgres: seconds after which a writer that stopped answering (paused, partitioned) loses the
    /// chain's writer lock to a standby. Any number of `holdfast index` may run against one Postgres: one
    /// writes each chain, the others stand by and take over.
    #[arg(long, env = "HOLDFAST_WRITER_LIVENESS_SECS", default_value_t = 5)]
    pub(crate) writer_liveness_secs: u64,
}

pub(crate) async fn run(args: IndexArgs) -> eyre::Result<()> {
    let shutdown = Shutdown::install()?;
    if let Some(addr) = args.metrics_addr {
        crate::opts::metrics_builder()?
            .with_http_listener(addr)
            .install()
            .wrap_err("cannot start the metrics listener")?;
    }
    let cfg = indexer_config(&args.rpc, &args.deployments, &args.index)?;
    let url = args.db.url()?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    tracing::info!(rpc = %cfg.rpc_url, store = store.backend(), escrows = cfg.deployments.len(), "indexing");
    let Store::Postgres(pg) = &store else {
        return index_once(cfg, store, shutdown).await;
    };
    // Postgres: one writer per chain. Stand by until this process holds the chain's writer lock, write
    // while it does, and stand by again when another process took over (fenced).
    let chain_id = cfg.chain_id()?;
    let holder = format!(
        "pid={} host={}",
        std::process::id(),
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim()
    );
    let liveness = std::time::Duration::from_secs(args.writer_liveness_secs.max(1));
    let mut standing_by = false;
    loop {
        let mut lease = match pg.try_acquire_writer(chain_id, &holder, liveness).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                if !standing_by {
                    let current = pg.writer_lease(chain_id).await.ok().flatten();
                    tracing::info!(
                        chain_id,
                        writer = current.as_ref().map(|l| l.holder.as_str()).unwrap_or("?"),
                        "standby: another process writes this chain; taking over when it stops"
                    );
                    metrics::gauge!("holdfast_writer_role", "role" => "standby").set(1.0);
                    metrics::gauge!("holdfast_writer_role", "role" => "writer").set(0.0);
                    standing_by = true;
                }
                tokio::select! {
                    () = shutdown.clone().requested() => return Ok(()),
                    () = tokio::time::sleep(std::time::Duration::from_millis(250)) => continue,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the writer lock; retrying");
                tokio::select! {
                    () = shutdown.clone().requested() => return Ok(()),
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                }
            }
        };
        standing_by = false;
        tracing::info!(chain_id, epoch = lease.epoch, "writer of this chain");
        metrics::gauge!("holdfast_writer_role", "role" => "writer").set(1.0);
        metrics::gauge!("holdfast_writer_role", "role" => "standby").set(0.0);
        metrics::gauge!("holdfast_writer_epoch").set(lease.epoch as f64);
        let indexer = match Indexer::new(cfg.clone(), store.clone()).await {
            Ok(i) => i,
            Err(e) if is_fenced(&e) => {
                tracing::warn!(error = %e, "fenced before starting; standing by");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        tokio::select! {
            r = indexer.run(shutdown.clone().requested()) => match r {
                Ok(()) => return Ok(()),
                Err(e) if is_fenced(&e) => tracing::warn!(error = %e, "fenced: another process took over; standing by"),
                Err(e) => return Err(e.into()),
            },
            () = lease.lost() => tracing::warn!(chain_id, "lost the writer lock; standing by"),
        }
    }
}

/// Whether indexing stopped because this process's writer lease was taken over.
fn is_fenced(e: &holdfast_indexer::Error) -> bool {
    matches!(e, holdfast_indexer::Error::Store(holdfast_store::Error::Fenced { .. }))
}

/// Index without a writer lock (SQLite: one process owns the file).
async fn index_once(
    cfg: holdfast_indexer::IndexerConfig,
    store: Store,
    shutdown: crate::opts::Shutdown,
) -> eyre::Result<()> {
    let indexer = Indexer::new(cfg, store).await?;
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(|| tokio::spawn(draw_progress(indexer.progress())));
    let result = indexer.run(shutdown.requested()).await;
    if let Some(bar) = bar {
        bar.abort();
        clear_progress();
    }
    result?;
    Ok(())
}

/// What the progress bar shows for one [`BackfillProgress`]: its length and position (blocks), and the
/// message after it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BarState {
    /// Blocks in this backfill.
    len: u64,
    /// Blocks committed (at most `len`).
    pos: u64,
    /// `block CURSOR/END · N events · R events/s`.
    msg: String,
}

impl BarState {
    fn of(p: &BackfillProgress) -> Self {
        let len = (p.end + 1).saturating_sub(p.first).max(1);
        let pos = (p.cursor + 1).saturating_sub(p.first).min(len);
        let secs = p.elapsed.as_secs_f64().max(1e-3);
        let rate = p.events as f64 / secs;
        let events = if p.events == 1 { "event" } else { "events" };
        let msg = format!("block {}/{} · {} {events} · {rate:.0} events/s", p.cursor, p.end, p.events);
        Self { len, pos, msg }
    }

    fn done(&self) -> bool {
        self.pos >= self.len
    }
}

/// The backfill progress bar on stderr (only when it is a terminal): blocks, events/s and a smoothed ETA,
/// fitted to the terminal's width; log lines are written above it (see [`crate::logging`]).
async fn draw_progress(mut rx: tokio::sync::watch::Receiver<Option<BackfillProgress>>) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let style = ProgressStyle::with_template("[{wide_bar}] {percent:>3}% {msg} · ETA {eta}")
        .expect("a valid template")
        .progress_chars("#>-");
    let mut bar: Option<ProgressBar> = None;
    while rx.changed().await.is_ok() {
        let Some(p) = *rx.borrow_and_update() else { continue };
        let state = BarState::of(&p);
        let b = bar.get_or_insert_with(|| {
            let b = ProgressBar::with_draw_target(Some(state.len), ProgressDrawTarget::stderr())
                .with_style(style.clone());
            crate::logging::set_progress_bar(Some(b.clone()));
            b
        });
        b.set_length(state.len);
        b.set_position(state.pos);
        b.set_message(state.msg.clone());
        if state.done() {
            b.finish();
            crate::logging::set_progress_bar(None);
            bar = None;
        }
    }
}

/// Stop drawing the bar (the indexer stopped before the backfill finished).
fn clear_progress() {
    crate::logging::set_progress_bar(None);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn progress(first: u64, cursor: u64, end: u64, events: u64, secs: u64) -> BackfillProgress {
        BackfillProgress { first, cursor, end, events, elapsed: Duration::from_secs(secs) }
    }

    #[test]
    fn bar_counts_blocks_from_the_first_one() {
        let s = BarState::of(&progress(100, 149, 199, 20, 4));
        assert_eq!((s.len, s.pos), (100, 50));
        assert_eq!(s.msg, "block 149/199 · 20 events · 5 events/s");
        assert!(!s.done());
    }

    #[test]
    fn bar_is_done_at_the_end_and_never_past_it() {
        let s = BarState::of(&progress(100, 199, 199, 1, 2));
        assert_eq!((s.len, s.pos), (100, 100));
        assert_eq!(s.msg, "block 199/199 · 1 event · 0 events/s");
        assert!(s.done());
        let s = BarState::of(&progress(100, 250, 199, 0, 0));
        assert_eq!(s.pos, s.len);
    }

    #[test]
    fn bar_before_the_first_range_and_of_one_block() {
        let s = BarState::of(&progress(100, 99, 199, 0, 0));
        assert_eq!((s.len, s.pos), (100, 0));
        let s = BarState::of(&progress(5, 5, 5, 0, 0));
        assert_eq!((s.len, s.pos), (1, 1));
    }
}
