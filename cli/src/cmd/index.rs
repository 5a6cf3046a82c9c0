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
}

pub(crate) async fn run(args: IndexArgs) -> eyre::Result<()> {
    let shutdown = Shutdown::install()?;
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .wrap_err("cannot start the metrics listener")?;
    }
    let cfg = indexer_config(&args.rpc, &args.deployments, &args.index)?;
    let url = args.db.url()?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    tracing::info!(rpc = %cfg.rpc_url, store = store.backend(), escrows = cfg.deployments.len(), "indexing");
    let indexer = Indexer::new(cfg, store).await?;
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(|| tokio::spawn(draw_progress(indexer.progress())));
    let result = indexer.run(shutdown.requested()).await;
    if let Some(bar) = bar {
        bar.abort();
    }
    result?;
    Ok(())
}

/// A one-line backfill progress bar on stderr (only when it is a terminal): blocks, events/s and ETA.
async fn draw_progress(mut rx: tokio::sync::watch::Receiver<Option<BackfillProgress>>) {
    use std::io::Write;
    while rx.changed().await.is_ok() {
        let Some(p) = *rx.borrow_and_update() else { continue };
        let total = (p.end + 1).saturating_sub(p.first).max(1);
        let done = (p.cursor + 1).saturating_sub(p.first).min(total);
        let secs = p.elapsed.as_secs_f64().max(1e-3);
        let eta = (total - done) as f64 * secs / done.max(1) as f64;
        let filled = (done * 30 / total) as usize;
        eprint!(
            "\r[{}{}] {:>3}% block {}/{} · {} events · {:.0} events/s · ETA {:.0}s ",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            done * 100 / total,
            p.cursor,
            p.end,
            p.events,
            p.events as f64 / secs,
            eta
        );
        if done == total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}
