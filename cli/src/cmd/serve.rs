//! `holdfast serve`.

use clap::Args;
use eyre::Context;
use holdfast_api::{AppState, router, serve_with};
use holdfast_store::Store;

use crate::opts::{ApiOpts, DbOpts, DeploymentOpts, Shutdown, install_metrics};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Serve the devnet store on http://127.0.0.1:8080 (an indexer writes it from another process)
  holdfast serve

  # A replica on Postgres, open to one dApp origin
  holdfast serve --database-url postgres://holdfast@db/holdfast --listen 0.0.0.0:8080 \\
      --cors-origin https://app.example --deployment deployments/8453.json

  # With a node to ask about transactions the store has no event of (TX_FAILED at once)
  holdfast serve --rpc-url http://127.0.0.1:8545

  curl -s localhost:8080/v1/orders/0x…  |  open http://127.0.0.1:8080/docs";

/// Arguments of `holdfast serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    pub(crate) db: DbOpts,
    #[command(flatten)]
    pub(crate) api: ApiOpts,
    #[command(flatten)]
    pub(crate) deployments: DeploymentOpts,
    /// With --chains, the chains' deployments give the token symbols, and their nodes answer about
    /// transactions (instead of --deployment and --rpc-url).
    #[command(flatten)]
    pub(crate) chains: crate::chains::ChainsOpts,
    /// A node of the deployments' chain, asked for the receipt of a transaction the store has no escrow
    /// event of, so that a failed one is answered `TX_FAILED` at once (optional: without it such a
    /// transaction looks like one not mined yet).
    #[arg(long, env = "HOLDFAST_RPC_URL")]
    pub(crate) rpc_url: Option<url::Url>,
    /// Milliseconds between re-reads of the indexing state. On Postgres the API also wakes on every commit
    /// of the indexer (LISTEN/NOTIFY), so this is only a safety net there; on SQLite it is the only wake-up.
    #[arg(long, env = "HOLDFAST_STORE_POLL_MS", default_value_t = 200)]
    pub(crate) store_poll_ms: u64,
    /// On Postgres, most single-order lookups (GET /v1/orders/{id}, /v1/payments/{id}) answered from
    /// memory, each until the next commit is signalled; 0: off. Ignored on SQLite (reads are inline there).
    #[arg(long, env = "HOLDFAST_ORDER_CACHE", default_value_t = 10_000)]
    pub(crate) order_cache: usize,
}

pub(crate) async fn run(args: ServeArgs) -> eyre::Result<()> {
    let stop = Shutdown::install()?;
    let chains = args.chains.nodes()?;
    let deployments = chains.as_ref().map_or(&args.deployments, |(_, d)| d);
    let mut cfg = args.api.config(deployments)?;
    cfg.poll_interval = std::time::Duration::from_millis(args.store_poll_ms.max(10));
    let render = install_metrics()?;
    let url = args.db.url()?;
    let store = Store::connect(&url).await.wrap_err_with(|| format!("cannot open store {url}"))?;
    let signals = store.commit_signals();
    // Only where commits are signalled (Postgres): an entry lives until the next one is.
    cfg.order_cache = if signals.is_some() { args.order_cache } else { 0 };
    let mut state = AppState::new(store, cfg.clone()).with_metrics(render);
    if let Some(rx) = signals {
        state = state.with_commit_signals(rx);
    }
    for (chain_id, rpc) in chains.map(|(nodes, _)| nodes).unwrap_or_default() {
        state = state.with_tx_lookup(crate::node_lookup::NodeLookup::new(rpc, chain_id));
    }
    if let Some(rpc) = args.rpc_url.filter(|_| args.chains.chains.is_none()) {
        let chain_id = match cfg.escrows.first() {
            Some(e) => e.chain_id,
            None => eyre::bail!("--rpc-url needs the deployments (--deployment) to know the node's chain"),
        };
        state = state.with_tx_lookup(crate::node_lookup::NodeLookup::new(rpc, chain_id));
    }
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}", args.api.listen))?;
    tracing::info!(addr = %args.api.listen, "serving the API (docs at /docs)");
    let shutdown = {
        let state = state.clone();
        async move {
            stop.requested().await;
            state.shutdown();
        }
    };
    serve_with(listener, router(state), shutdown, &cfg).await?;
    Ok(())
}
