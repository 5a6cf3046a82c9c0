//! `holdfast reindex`.

use clap::Args;
use eyre::{Context, bail};
use holdfast_store::{DeferredIndexes, MetaWriter, Store};

use crate::opts::DbOpts;

pub(crate) const EXAMPLES: &str = "\
Examples:
  # After a change to the derivation logic: rebuild all orders of the devnet from ./data/holdfast.db
  holdfast reindex --from-store --chain-id 31337";

/// Arguments of `holdfast reindex`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReindexArgs {
    #[command(flatten)]
    pub(crate) db: DbOpts,
    /// Re-derive from the stored raw events (no RPC). Required: it is the only mode.
    #[arg(long)]
    pub(crate) from_store: bool,
    /// Chain whose orders to re-derive.
    #[arg(long, env = "HOLDFAST_CHAIN_ID", default_value_t = 31337)]
    pub(crate) chain_id: u64,
}

pub(crate) async fn run(args: ReindexArgs) -> eyre::Result<()> {
    if !args.from_store {
        bail!("reindex needs --from-store (re-deriving from the stored events is the only mode)");
    }
    let url = args.db.url()?;
    let _writer = crate::sqlite_lock::lock_sqlite_writer(&url, "holdfast reindex")?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    // The replay scans events by order: build the indexes a backfill deferred, if any, first, and give the
    // planner current statistics of the tables it reads whole (a build refreshes them itself).
    if store.build_deferred_indexes().await? {
        tracing::info!("built the indexes an unfinished backfill had deferred");
    } else {
        store.refresh_statistics().await?;
    }
    let started = std::time::Instant::now();
    let n = holdfast_indexer::writer::rederive_all(&store, args.chain_id).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "re-derived chain {} from {n} stored events in {secs:.2}s ({:.0} events/s)",
        args.chain_id,
        n as f64 / secs.max(1e-9)
    );
    Ok(())
}
