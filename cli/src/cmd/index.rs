//! `holdfast index`.

use std::{net::SocketAddr, sync::Arc};

use clap::Args;
use eyre::Context;
use holdfast_indexer::sync::BackfillProgress;
use holdfast_store::Store;

use crate::{
    chain_task::{ChainTask, OnProgress},
    chains::ChainsOpts,
    opts::{DbOpts, DeploymentOpts, IndexOpts, RpcOpts, Shutdown},
};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Follow the devnet escrow written by script/deploy.sh into ./data/holdfast.db
  holdfast index --rpc-url ws://127.0.0.1:8545

  # Production: Postgres, an explicit deployment file, metrics on :9100
  holdfast index --rpc-url wss://node.example/ws --deployment deployments/8453.json \\
      --database-url postgres://holdfast@db/holdfast --metrics-addr 0.0.0.0:9100

  # One-shot backfill
  holdfast index --escrow 0x… --start-block 123456 --chain-id 8453 --exit-when-caught-up

  # Several chains, one writer per chain across all the processes run like this (Postgres)
  holdfast index --chains chains.toml --database-url postgres://holdfast@db/holdfast";

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
    pub(crate) chains: ChainsOpts,
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
    let chains = args.chains.resolve(&args.rpc, &args.deployments, &args.index)?.configs;
    let url = args.db.url()?;
    let _writer = crate::sqlite_lock::lock_sqlite_writer(&url, "holdfast index")?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    // The progress bar: one chain, on a terminal.
    let on_progress: Option<OnProgress> =
        (chains.len() == 1 && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let f: OnProgress = Arc::new(|rx| {
                tokio::spawn(draw_progress(rx));
            });
            f
        });
    // Postgres: one writer per chain. Each chain's task stands by until this process holds the chain's
    // writer lock, writes while it does, and stands by again when another process took over (fenced).
    let holder = crate::chain_task::holder("holdfast index");
    let liveness = std::time::Duration::from_secs(args.writer_liveness_secs.max(1));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for cfg in chains {
        let chain_id = cfg.chain_id()?;
        tracing::info!(chain_id, rpc = %cfg.rpc_url, store = store.backend(), escrows = cfg.deployments.len(), "indexing");
        let task = ChainTask {
            cfg,
            store: store.clone(),
            holder: holder.clone(),
            liveness,
            health: tokio::sync::watch::Sender::new(holdfast_primitives::IndexerHealth::Starting),
            notify: None,
            floor: None,
            on_progress: on_progress.clone(),
        };
        let stop = stop_rx.clone();
        tasks.spawn(async move { (chain_id, task.run(stop).await) });
    }
    tokio::spawn(async move {
        shutdown.requested().await;
        let _ = stop_tx.send(true);
    });
    // Every chain runs until the process is stopped (or caught up, one-shot). A chain that halts is
    // reported and the others go on; the process then exits with its error.
    let mut halted = None;
    while let Some(joined) = tasks.join_next().await {
        if let Err(report) = crate::chain_task::join_outcome(joined) {
            tracing::error!(error = format!("{report:#}"), "the other chains go on");
            halted.get_or_insert(report);
        }
    }
    clear_progress();
    halted.map_or(Ok(()), Err)
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
