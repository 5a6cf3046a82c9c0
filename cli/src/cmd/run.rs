//! `holdfast run`: indexer and API in one process (the production entry).

use clap::Args;
use eyre::Context;
use holdfast_api::{ApiConfig, AppState, router, serve_with};
use holdfast_indexer::IndexerConfig;
use holdfast_primitives::IndexerHealth;
use holdfast_store::Store;
use tokio::sync::{broadcast, watch};

use crate::{
    chain_task::ChainTask,
    chains::ChainsOpts,
    opts::{ApiOpts, DbOpts, DeploymentOpts, IndexOpts, RpcOpts, Shutdown, install_metrics},
};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Devnet: index the escrow in deployments/31337.local.json and serve http://127.0.0.1:8080
  holdfast run --rpc-url ws://127.0.0.1:8545

  # Production
  holdfast run --rpc-url wss://node.example/ws --deployment deployments/8453.json \\
      --database-url postgres://holdfast@db/holdfast --listen 0.0.0.0:8080

  # Several chains in one process (see the README, \"Several chains\")
  holdfast run --chains chains.toml --database-url postgres://holdfast@db/holdfast";

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
    pub(crate) chains: ChainsOpts,
    #[command(flatten)]
    pub(crate) index: IndexOpts,
    #[command(flatten)]
    pub(crate) api: ApiOpts,
    #[command(flatten)]
    pub(crate) delivery: super::webhooks::DeliveryOpts,
}

pub(crate) async fn run(args: RunArgs) -> eyre::Result<()> {
    let shutdown = Shutdown::install()?;
    let render = install_metrics()?;
    let chains = args.chains.resolve(&args.rpc, &args.deployments, &args.index)?;
    let url = args.db.url()?;
    let api_cfg = args.api.config(&chains.deployments)?;
    let delivery = args.delivery.config()?;
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}", args.api.listen))?;
    for cfg in &chains.configs {
        tracing::info!(addr = %args.api.listen, chain_id = ?cfg.chain_id().ok(), rpc = %cfg.rpc_url,
            "indexing and serving the API (docs at /docs)");
    }
    run_stack(chains.configs, &url, api_cfg, delivery, render, listener, shutdown.requested()).await
}

/// Index every chain of `chains` (one task each) and serve until `shutdown` resolves, or until every
/// one-shot indexer caught up (shared by `run` and `dev`). A chain whose indexer halts leaves the other
/// chains and the API running (the API reports it not ready, with the reason) until the process is told
/// to stop; the process then exits with the error.
pub(crate) async fn run_stack(
    chains: Vec<IndexerConfig>,
    db_url: &str,
    api_cfg: ApiConfig,
    delivery: holdfast_webhooks::WorkerConfig,
    render: impl Fn() -> String + Send + Sync + 'static,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> eyre::Result<()> {
    let _writer = crate::sqlite_lock::lock_sqlite_writer(db_url, "holdfast run")?;
    let store = Store::connect(db_url).await.wrap_err_with(|| format!("cannot open store {db_url}"))?;
    // The channels exist before the indexers do: the API serves (and reports each indexer's health) while
    // a node is still unreachable.
    let (notify, notifications) = broadcast::channel(1024);
    let exit_when_caught_up = chains.iter().all(|c| c.exit_when_caught_up);
    let mut state =
        AppState::new(store.clone(), api_cfg.clone()).with_notifications(notifications).with_metrics(render);
    let mut tasks = Vec::new();
    for cfg in chains {
        let chain_id = cfg.chain_id()?;
        let (health, health_rx) = watch::channel(IndexerHealth::Starting);
        state = state
            .with_chain_health(chain_id, health_rx)
            .with_tx_lookup(crate::node_lookup::NodeLookup::new(cfg.rpc_url.clone(), chain_id));
        tasks.push((chain_id, cfg, health));
    }

    // The webhook worker: woken by each commit, reads the queue every second regardless.
    let worker = {
        let worker = holdfast_webhooks::Worker::new(store.clone(), api_cfg.clone(), delivery)
            .wrap_err("cannot build the webhook worker")?;
        let wake = notify.subscribe();
        (worker, wake)
    };
    // One stop signal for everything: Ctrl-C/SIGTERM (or one-shot indexers that caught up).
    let (stop_tx, stop_rx) = watch::channel(false);
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
    let worker = {
        let (worker, wake) = worker;
        tokio::spawn(worker.run(Some(wake), stopped(stop_rx.clone())))
    };
    // SQLite: one process owns the file; Postgres: each chain's writer is elected (`holdfast index`).
    let holder = crate::chain_task::holder("holdfast run");
    let mut indexers = tokio::task::JoinSet::new();
    for (chain_id, cfg, health) in tasks {
        let task = ChainTask {
            cfg,
            store: store.clone(),
            holder: holder.clone(),
            liveness: std::time::Duration::from_secs(5),
            health,
            notify: Some(notify.clone()),
            floor: Some(state.change_floor()),
            on_progress: None,
        };
        let stop = stop_rx.clone();
        indexers.spawn(async move { (chain_id, task.run(stop).await) });
    }
    tokio::pin!(shutdown);
    let mut halted = Vec::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            next = indexers.join_next() => match next {
                Some(joined) => {
                    if let Err(report) = crate::chain_task::join_outcome(joined) {
                        // A halted chain does not take the API or the other chains down: the API keeps
                        // serving what was indexed (not ready, with the reason) until the process is told
                        // to stop.
                        tracing::error!(error = format!("{report:#}"),
                            "the API and the other chains keep running until stopped");
                        halted.push(report);
                    }
                }
                None => {
                    if !exit_when_caught_up || !halted.is_empty() {
                        (&mut shutdown).await;
                    }
                    break;
                }
            }
        }
    }
    let _ = stop_tx.send(true);
    while let Some(joined) = indexers.join_next().await {
        halted.extend(crate::chain_task::join_outcome(joined).err());
    }
    let api = api.await;
    let _ = worker.await;
    if let Some(first) = halted.into_iter().next() {
        return Err(first);
    }
    api?.wrap_err("API server failed")?;
    Ok(())
}

/// Resolves once `stop` turns true.
async fn stopped(stop: watch::Receiver<bool>) {
    crate::chain_task::stopped(stop).await;
}
