//! `holdfast run`: indexer and API in one process (the production entry).

use std::sync::Arc;

use clap::Args;
use eyre::Context;
use holdfast_api::{ApiConfig, AppState, router, serve_with};
use holdfast_indexer::{IndexerConfig, sync::Indexer};
use holdfast_store::Store;
use tokio::sync::watch;

use crate::opts::{
    ApiOpts, DbOpts, DeploymentOpts, IndexOpts, RpcOpts, Shutdown, indexer_config, install_metrics,
};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Devnet: index the escrow in deployments/31337.local.json and serve http://127.0.0.1:8080
  holdfast run --rpc-url ws://127.0.0.1:8545

  # Production
  holdfast run --rpc-url wss://node.example/ws --deployment deployments/8453.json \\
      --database-url postgres://holdfast@db/holdfast --listen 0.0.0.0:8080";

/// Arguments of `holdfast run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) rpc: RpcOpts,
    #[command(flatten)]
    pub(crate) db: DbOpts,
    #[command(flatten)]
    pub(crate) deployments: DeploymentOpts,
    #[command(flatten)]
    pub(crate) index: IndexOpts,
    #[command(flatten)]
    pub(crate) api: ApiOpts,
}

pub(crate) async fn run(args: RunArgs) -> eyre::Result<()> {
    let shutdown = Shutdown::install()?;
    let render = install_metrics()?;
    let cfg = indexer_config(&args.rpc, &args.deployments, &args.index)?;
    let url = args.db.url()?;
    let api_cfg = args.api.config(&args.deployments)?;
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}", args.api.listen))?;
    tracing::info!(addr = %args.api.listen, rpc = %args.rpc.rpc_url, "indexing and serving the API (docs at /docs)");
    run_stack(cfg, &url, api_cfg, render, listener, shutdown.requested()).await
}

/// Index and serve until `shutdown` resolves or the indexer halts (shared by `run` and `dev`).
pub(crate) async fn run_stack(
    cfg: IndexerConfig,
    db_url: &str,
    api_cfg: ApiConfig,
    render: impl Fn() -> String + Send + Sync + 'static,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> eyre::Result<()> {
    let store = Store::connect(db_url).await.wrap_err_with(|| format!("cannot open store {db_url}"))?;
    let indexer = Arc::new(Indexer::new(cfg, store.clone()).await?);
    let state =
        AppState::new(store, api_cfg.clone()).with_notifications(indexer.subscribe()).with_metrics(render);

    // One stop signal for both halves: Ctrl-C/SIGTERM, or the indexer halting on an error.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let api = {
        let state = state.clone();
        let shutdown = stopped(stop_rx.clone());
        tokio::spawn(async move {
            let stop = {
                let state = state.clone();
                async move {
                    shutdown.await;
                    state.shutdown();
                }
            };
            serve_with(listener, router(state), stop, &api_cfg).await
        })
    };
    let mut idx = {
        let indexer = indexer.clone();
        let shutdown = stopped(stop_rx.clone());
        tokio::spawn(async move { indexer.run(shutdown).await })
    };
    let finished = tokio::select! {
        _ = shutdown => None,
        r = &mut idx => Some(r),
    };
    let _ = stop_tx.send(true);
    let idx = match finished {
        Some(r) => r,
        None => idx.await,
    };
    let api = api.await;
    idx?.wrap_err("indexer halted")?;
    api?.wrap_err("API server failed")?;
    Ok(())
}
