//! `holdfast run`: indexer and API in one process (the production entry).

use clap::Args;
use eyre::Context;
use holdfast_api::{ApiConfig, AppState, router, serve_with};
use holdfast_indexer::{IndexerConfig, sync::Indexer};
use holdfast_primitives::IndexerHealth;
use holdfast_store::Store;
use tokio::sync::{broadcast, watch};

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
    #[command(flatten)]
    pub(crate) delivery: super::webhooks::DeliveryOpts,
}

pub(crate) async fn run(args: RunArgs) -> eyre::Result<()> {
    let shutdown = Shutdown::install()?;
    let render = install_metrics()?;
    let cfg = indexer_config(&args.rpc, &args.deployments, &args.index)?;
    let url = args.db.url()?;
    let api_cfg = args.api.config(&args.deployments)?;
    let delivery = args.delivery.config()?;
    let listener = tokio::net::TcpListener::bind(args.api.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {}", args.api.listen))?;
    tracing::info!(addr = %args.api.listen, rpc = %args.rpc.rpc_url, "indexing and serving the API (docs at /docs)");
    run_stack(cfg, &url, api_cfg, delivery, render, listener, shutdown.requested()).await
}

/// Index and serve until `shutdown` resolves or the indexer halts (shared by `run` and `dev`).
pub(crate) async fn run_stack(
    cfg: IndexerConfig,
    db_url: &str,
    api_cfg: ApiConfig,
    delivery: holdfast_webhooks::WorkerConfig,
    render: impl Fn() -> String + Send + Sync + 'static,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> eyre::Result<()> {
    let store = Store::connect(db_url).await.wrap_err_with(|| format!("cannot open store {db_url}"))?;
    // The channels exist before the indexer does: the API serves (and reports the indexer's health) while
    // the node is still unreachable.
    let (notify, notifications) = broadcast::channel(1024);
    let (health, health_rx) = watch::channel(IndexerHealth::Starting);
    let exit_when_caught_up = cfg.exit_when_caught_up;
    let mut state = AppState::new(store.clone(), api_cfg.clone())
        .with_notifications(notifications)
        .with_indexer_health(health_rx)
        .with_metrics(render);
    if let Ok(chain_id) = cfg.chain_id() {
        state = state.with_tx_lookup(crate::node_lookup::NodeLookup::new(cfg.rpc_url.clone(), chain_id));
    }

    // The webhook worker: woken by each commit, reads the queue every second regardless.
    let worker = {
        let worker = holdfast_webhooks::Worker::new(store.clone(), api_cfg.clone(), delivery)
            .wrap_err("cannot build the webhook worker")?;
        let wake = notify.subscribe();
        (worker, wake)
    };
    // One stop signal for both halves: Ctrl-C/SIGTERM (or a one-shot indexer that caught up).
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
    let worker = {
        let (worker, wake) = worker;
        tokio::spawn(worker.run(Some(wake), stopped(stop_rx.clone())))
    };
    let mut idx_task = {
        let shutdown = stopped(stop_rx.clone());
        let floor = state.change_floor();
        tokio::spawn(async move {
            tokio::select! {
                r = index(cfg, store, notify, health, floor) => r,
                () = shutdown => Ok(()),
            }
        })
    };
    tokio::pin!(shutdown);
    let early = tokio::select! {
        _ = &mut shutdown => None,
        r = &mut idx_task => Some(r),
    };
    if let Some(Ok(Err(e))) = &early {
        // A halted indexer does not take the API down: it keeps serving what was indexed (not ready, with
        // the reason) until the process is told to stop.
        tracing::error!(error = %e, "indexing halted; the API keeps serving the indexed data until stopped");
        shutdown.await;
    } else if matches!(early, Some(Ok(Ok(())))) && !exit_when_caught_up {
        shutdown.await;
    }
    let _ = stop_tx.send(true);
    let idx = match early {
        Some(r) => r,
        None => idx_task.await,
    };
    let api = api.await;
    let _ = worker.await;
    idx?.wrap_err("indexing halted")?;
    api?.wrap_err("API server failed")?;
    Ok(())
}

/// Connect to the node (retrying while it is unreachable, reporting the fault in `health`), then index
/// until stopped. Returns only for a fault retrying cannot fix (the indexer halted) or a one-shot run that
/// caught up.
async fn index(
    cfg: IndexerConfig,
    store: Store,
    notify: broadcast::Sender<holdfast_primitives::IndexNotification>,
    health: watch::Sender<IndexerHealth>,
    floor: watch::Receiver<Option<i64>>,
) -> holdfast_indexer::Result<()> {
    let started =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let Store::Postgres(pg) = &store else {
        return index_as_writer(cfg, store, notify, health, floor, None).await;
    };
    // Postgres: index only while this process holds the chain's writer lock (see `holdfast index`); until
    // then, or after another process took over, the API serves what the writer commits, not ready.
    let chain_id = cfg.chain_id()?;
    let holder = format!("pid={} (holdfast run)", std::process::id());
    let liveness = std::time::Duration::from_secs(5);
    let mut retries = 0;
    loop {
        let lease = match pg.try_acquire_writer(chain_id, &holder, liveness).await {
            Ok(Some(lease)) => lease,
            found => {
                retries += 1;
                let fault = match found {
                    Err(e) => format!("cannot take the writer lock: {e}"),
                    _ => format!("standby: another process writes chain {chain_id}"),
                };
                if retries == 1 {
                    tracing::info!(chain_id, "{fault}; retrying");
                }
                health.send_replace(IndexerHealth::Faulted { fault, since: started, retries });
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                continue;
            }
        };
        retries = 0;
        tracing::info!(chain_id, epoch = lease.epoch, "writer of this chain");
        match index_as_writer(
            cfg.clone(),
            store.clone(),
            notify.clone(),
            health.clone(),
            floor.clone(),
            Some(lease),
        )
        .await
        {
            Err(holdfast_indexer::Error::Store(e @ holdfast_store::Error::Fenced { .. })) => {
                tracing::warn!(error = %e, "fenced: another process took over; standing by");
            }
            other => return other,
        }
    }
}

/// Connect to the node (retrying while it is unreachable), then index until stopped, or until `lease` (the
/// writer lock on Postgres) is lost, which is reported as the fenced error it would meet at its next commit.
async fn index_as_writer(
    cfg: IndexerConfig,
    store: Store,
    notify: broadcast::Sender<holdfast_primitives::IndexNotification>,
    health: watch::Sender<IndexerHealth>,
    floor: watch::Receiver<Option<i64>>,
    lease: Option<holdfast_store::WriterLease>,
) -> holdfast_indexer::Result<()> {
    let mut backoff = holdfast_indexer::sync::fault_backoff();
    let started =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut retries = 0;
    let indexer = loop {
        match Indexer::new(cfg.clone(), store.clone()).await {
            Ok(indexer) => break indexer,
            Err(e) if e.is_fatal() => {
                health.send_replace(IndexerHealth::Halted { reason: e.to_string() });
                return Err(e);
            }
            Err(e) => {
                retries += 1;
                if retries == 1 {
                    tracing::warn!(error = %e, "cannot reach the node; serving the stored data and retrying");
                }
                health.send_replace(IndexerHealth::Faulted { fault: e.to_string(), since: started, retries });
                tokio::time::sleep(backoff.next().unwrap_or(std::time::Duration::from_secs(15))).await;
            }
        }
    };
    // Retention never compacts what the API's open streams have not been sent.
    let indexer = indexer.with_notify(notify).with_health(health).with_change_floor(floor);
    let Some(mut lease) = lease else { return indexer.run(std::future::pending()).await };
    let (chain_id, epoch) = (lease.chain_id, lease.epoch);
    tokio::select! {
        r = indexer.run(std::future::pending()) => r,
        () = lease.lost() => {
            Err(holdfast_store::Error::Fenced { chain_id, epoch, current: None }.into())
        }
    }
}
