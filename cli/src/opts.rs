//! Option groups shared by subcommands, and building the one indexer config from them.

use std::path::{Path, PathBuf};

use alloy::primitives::Address;
use clap::{Args, ValueEnum};
use eyre::{Context, bail};
use holdfast_api::{ApiConfig, EscrowInfo, TokenInfo};
use holdfast_indexer::{Deployment, FinalityPolicy, IndexerConfig};
use serde::Deserialize;
use url::Url;

/// Node connection.
#[derive(Debug, Clone, Args)]
pub(crate) struct RpcOpts {
    /// JSON-RPC endpoint: http(s) (polling) or ws(s) (new heads by subscription).
    #[arg(long, env = "HOLDFAST_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub(crate) rpc_url: Url,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub(crate) struct DbOpts {
    /// Database URL: `sqlite://PATH` (embedded, default) or `postgres://USER@HOST/DB`.
    /// Default: `sqlite://<data-dir>/holdfast.db`.
    #[arg(long, env = "HOLDFAST_DATABASE_URL")]
    pub(crate) database_url: Option<String>,
    /// Directory for the default SQLite store.
    #[arg(long, env = "HOLDFAST_DATA_DIR", default_value = "data")]
    pub(crate) data_dir: PathBuf,
}

impl DbOpts {
    /// The database URL, creating the data directory for the SQLite default.
    pub(crate) fn url(&self) -> eyre::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir)
            .wrap_err_with(|| format!("cannot create data directory {}", self.data_dir.display()))?;
        Ok(format!("sqlite://{}", self.data_dir.join("holdfast.db").display()))
    }
}

impl DeploymentOpts {
    /// The default API config with the deployments' token symbols and decimals: all that rendering order
    /// records needs (the webhook worker's payloads).
    pub(crate) fn records_config(&self) -> eyre::Result<ApiConfig> {
        let mut cfg = ApiConfig::default();
        let files = if self.deployments.is_empty() {
            default_deployment().map(|d| vec![d]).unwrap_or_default()
        } else {
            self.deployments.clone()
        };
        for f in files {
            let (d, token) = read_deployment_with_token(&f)?;
            if let Some(token) = token {
                cfg.escrows.push(EscrowInfo { chain_id: d.chain_id, escrow: d.escrow, token });
            }
        }
        Ok(cfg)
    }
}

/// Which escrows to follow.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct DeploymentOpts {
    /// Deployment file(s) written by `script/deploy.sh` (chainId, escrow, deploymentBlock, token).
    /// Default: deployments/31337.local.json (in the current directory, else in the Holdfast checkout
    /// found from it upwards) when no --escrow is given.
    #[arg(long = "deployment", env = "HOLDFAST_DEPLOYMENTS", value_delimiter = ',')]
    pub(crate) deployments: Vec<PathBuf>,
    /// Escrow address (instead of a deployment file); needs --start-block and --chain-id.
    #[arg(long, requires_all = ["start_block", "chain_id"])]
    pub(crate) escrow: Option<Address>,
    /// First block to index for --escrow (its deployment block).
    #[arg(long)]
    pub(crate) start_block: Option<u64>,
    /// Chain id for --escrow.
    #[arg(long)]
    pub(crate) chain_id: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentFile {
    chain_id: u64,
    escrow: Address,
    deployment_block: Option<u64>,
    #[serde(default)]
    token: Option<TokenEntry>,
}

#[derive(Debug, Deserialize)]
struct TokenEntry {
    address: Address,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    decimals: Option<u8>,
}

/// Read a deployment file: the escrow to index and its token for the API (read and parsed once).
pub(crate) fn read_deployment_with_token(path: &Path) -> eyre::Result<(Deployment, Option<TokenInfo>)> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("cannot read deployment file {}", path.display()))?;
    let f: DeploymentFile = serde_json::from_str(&text)
        .wrap_err_with(|| format!("{} is not a deployment file", path.display()))?;
    let Some(start_block) = f.deployment_block else {
        bail!("{}: deploymentBlock is missing (was the deployment broadcast?)", path.display());
    };
    let token = f.token.map(|t| TokenInfo {
        address: Some(t.address),
        symbol: t.symbol.unwrap_or_else(|| "USDC".into()),
        decimals: t.decimals.unwrap_or(6),
    });
    let deployment = Deployment {
        chain_id: f.chain_id,
        escrow: f.escrow,
        start_block,
        token: token.as_ref().and_then(|t| t.address),
    };
    Ok((deployment, token))
}

/// The deployment file every command reads when given none, relative to the project root.
pub(crate) const DEFAULT_DEPLOYMENT: &str = "deployments/31337.local.json";

/// The Holdfast checkout: `HOLDFAST_PROJECT_ROOT`, else the nearest directory, from the current one
/// upwards, that holds foundry.toml and script/deploy.sh (as `holdfast dev` finds it).
pub(crate) fn find_project_root() -> eyre::Result<PathBuf> {
    if let Some(root) = std::env::var_os("HOLDFAST_PROJECT_ROOT").filter(|r| !r.is_empty()) {
        let root = PathBuf::from(root);
        return root.canonicalize().wrap_err_with(|| format!("HOLDFAST_PROJECT_ROOT {}", root.display()));
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join("foundry.toml").is_file() && dir.join("script/deploy.sh").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "no Holdfast checkout here or above {} (looked for foundry.toml and script/deploy.sh)",
        cwd.display()
    )
}

/// The default deployment file: `deployments/31337.local.json` in the current directory if it is there,
/// else in the project root found from the current directory upwards (so every command finds the
/// devnet's escrow from anywhere in the checkout). `Err` says where it looked.
pub(crate) fn default_deployment() -> Result<PathBuf, String> {
    let here = PathBuf::from(DEFAULT_DEPLOYMENT);
    if here.is_file() {
        return Ok(here);
    }
    match find_project_root() {
        Ok(root) if root.join(DEFAULT_DEPLOYMENT).is_file() => Ok(root.join(DEFAULT_DEPLOYMENT)),
        Ok(root) => Err(format!("{} does not exist", root.join(DEFAULT_DEPLOYMENT).display())),
        Err(e) => Err(format!("{DEFAULT_DEPLOYMENT} does not exist and {e}")),
    }
}

/// Read a deployment file.
pub(crate) fn read_deployment(path: &Path) -> eyre::Result<Deployment> {
    read_deployment_with_token(path).map(|(d, _)| d)
}

impl DeploymentOpts {
    /// The deployments to follow.
    pub(crate) fn resolve(&self) -> eyre::Result<Vec<Deployment>> {
        let mut out = Vec::new();
        if let (Some(escrow), Some(start_block), Some(chain_id)) =
            (self.escrow, self.start_block, self.chain_id)
        {
            out.push(Deployment { chain_id, escrow, start_block, token: None });
        }
        let files = if self.deployments.is_empty() && out.is_empty() {
            vec![default_deployment().map_err(|why| eyre::eyre!("no deployment given and {why}"))?]
        } else {
            self.deployments.clone()
        };
        for f in files {
            out.push(read_deployment(&f)?);
        }
        Ok(out)
    }
}

/// The read API.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiOpts {
    /// Address to serve the API on.
    #[arg(long, env = "HOLDFAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Allowed CORS origins, comma-separated (default: any origin).
    #[arg(long = "cors-origin", env = "HOLDFAST_CORS_ORIGINS", value_delimiter = ',')]
    pub(crate) cors_origins: Vec<String>,
    /// Longest `?wait=` accepted by GET /v1/transactions/{txHash} and GET /v1/orders/{orderId}, in seconds.
    #[arg(long, env = "HOLDFAST_MAX_WAIT_SECS", default_value_t = 60)]
    pub(crate) max_wait_secs: u64,
    /// /readyz fails when the indexer lags the head by more than this many blocks.
    #[arg(long, env = "HOLDFAST_READY_MAX_LAG", default_value_t = 64)]
    pub(crate) ready_max_lag: u64,
    /// /readyz fails when the indexer has not confirmed the node's head for this many seconds (it does so
    /// at least every 2 s while the node answers, also on an idle chain).
    #[arg(long, env = "HOLDFAST_READY_MAX_STALL_SECS", default_value_t = 15)]
    pub(crate) ready_max_stall_secs: u64,
    /// Most connections open at once; further clients wait in the listen backlog until one closes.
    #[arg(long, env = "HOLDFAST_MAX_CONNECTIONS", default_value_t = 512)]
    pub(crate) max_connections: usize,
    /// Most long-polls (`?wait=`) and event streams open at once; one more is answered 503 TOO_MANY_WAITS.
    /// Must be below --max-connections.
    #[arg(long, env = "HOLDFAST_MAX_WAITS", default_value_t = 256)]
    pub(crate) max_waits: usize,
    /// Seconds a client has to send a request's headers, from when the server waits for them (also the
    /// keep-alive idle timeout); then the connection is closed. Behind a proxy that keeps idle upstream
    /// connections, set it above the proxy's idle timeout.
    #[arg(long, env = "HOLDFAST_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub(crate) header_read_timeout_secs: u64,
    /// Most request headers (more: 431 HEADERS_TOO_LARGE).
    #[arg(long, env = "HOLDFAST_MAX_HEADERS", default_value_t = 100)]
    pub(crate) max_headers: usize,
    /// Largest total of request header names and values, in bytes (more: 431 HEADERS_TOO_LARGE).
    #[arg(long, env = "HOLDFAST_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub(crate) max_header_bytes: usize,
    /// Largest declared request body, in bytes (more: 413 BODY_TOO_LARGE; the API reads no body).
    #[arg(long, env = "HOLDFAST_MAX_BODY_BYTES", default_value_t = 1024)]
    pub(crate) max_body_bytes: u64,
}

impl ApiOpts {
    /// The API's config; token symbols and decimals come from the deployment files.
    pub(crate) fn config(&self, deployments: &DeploymentOpts) -> eyre::Result<ApiConfig> {
        let mut cfg = deployments.records_config()?;
        cfg.max_wait = std::time::Duration::from_secs(self.max_wait_secs);
        cfg.ready_max_lag_blocks = self.ready_max_lag;
        cfg.ready_max_stall = std::time::Duration::from_secs(self.ready_max_stall_secs.max(1));
        if self.max_connections == 0 || self.header_read_timeout_secs == 0 || self.max_headers == 0 {
            bail!("--max-connections, --header-read-timeout-secs and --max-headers must be at least 1");
        }
        if self.max_waits >= self.max_connections {
            bail!(
                "--max-waits ({}) must be below --max-connections ({}), so that ordinary requests always find \
                 a connection",
                self.max_waits,
                self.max_connections
            );
        }
        cfg.max_connections = self.max_connections;
        cfg.max_waits = self.max_waits;
        cfg.header_read_timeout = std::time::Duration::from_secs(self.header_read_timeout_secs);
        cfg.max_headers = self.max_headers;
        cfg.max_header_bytes = self.max_header_bytes;
        cfg.max_body_bytes = self.max_body_bytes;
        if !self.cors_origins.is_empty() {
            cfg.cors_origins = Some(self.cors_origins.clone());
        }
        Ok(cfg)
    }
}

/// The Prometheus exporter's settings: histograms with fixed buckets. Without buckets the exporter renders
/// a histogram as a summary over a rolling window, whose quantiles fall back to 0 a minute after the last
/// observation: a reorg seen an hour ago would be invisible to an alert on `holdfast_reorg_depth`.
pub(crate) fn metrics_builder() -> eyre::Result<metrics_exporter_prometheus::PrometheusBuilder> {
    use metrics_exporter_prometheus::Matcher;
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("holdfast_reorg_depth".into()),
            &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0, 64.0, 128.0],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("holdfast_api_request_duration_seconds".into()),
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Prefix("holdfast_webhook_".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
                    600.0, 3600.0,
                ],
            )
        })
        .wrap_err("invalid metric buckets")
}

/// Install the Prometheus recorder; returns a renderer for GET /metrics.
pub(crate) fn install_metrics() -> eyre::Result<impl Fn() -> String + Send + Sync + 'static> {
    let handle = metrics_builder()?.install_recorder().wrap_err("cannot install the metrics recorder")?;
    Ok(move || handle.render())
}

/// Finality source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FinalityMode {
    /// The node's `safe` and `finalized` tags (depths only where the node has none).
    Tags,
    /// Fixed depths below the head.
    Depth,
}

/// Indexing behaviour.
#[derive(Debug, Clone, Args)]
pub(crate) struct IndexOpts {
    /// Finality source.
    #[arg(long, env = "HOLDFAST_FINALITY", value_enum, default_value_t = FinalityMode::Tags)]
    pub(crate) finality: FinalityMode,
    /// Depth treated as safe (with --finality depth, or when the node has no `safe` tag).
    #[arg(long, env = "HOLDFAST_SAFE_DEPTH", default_value_t = 32)]
    pub(crate) safe_depth: u64,
    /// Depth treated as finalized (with --finality depth, or when the node has no `finalized` tag).
    #[arg(long, env = "HOLDFAST_FINALIZED_DEPTH", default_value_t = 64)]
    pub(crate) finalized_depth: u64,
    /// If the chain was reset (new genesis, head far below the stored cursor), wipe this chain's data and
    /// re-index from scratch instead of halting.
    #[arg(long, env = "HOLDFAST_RESET")]
    pub(crate) reset: bool,
    /// Initial eth_getLogs block range (grows while responses stay under the log target, shrinks when
    /// they exceed it or the node refuses).
    #[arg(long, env = "HOLDFAST_LOG_RANGE", default_value_t = 100)]
    pub(crate) log_range: u64,
    /// Largest eth_getLogs block range.
    #[arg(long, env = "HOLDFAST_MAX_LOG_RANGE", default_value_t = 100_000)]
    pub(crate) max_log_range: u64,
    /// Ranges fetched concurrently during backfill.
    #[arg(long, env = "HOLDFAST_CONCURRENCY", default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Largest eth_getLogs range response read, in bytes (over ws: the message limit): a larger one is
    /// abandoned and its range split, so the backfill's memory stays bounded (see the README, "Memory").
    #[arg(long, env = "HOLDFAST_MAX_RESPONSE_BYTES", default_value_t = holdfast_indexer::config::DEFAULT_MAX_RESPONSE_BYTES)]
    pub(crate) max_response_bytes: usize,
    /// On a store that holds no events yet, drop its read-path indexes for the backfill and build them in
    /// one pass when it reaches the finalized block (reads are slower meanwhile); `false`: maintain them
    /// row by row. Unset: yes on Postgres, no on SQLite (see the README, "Deferred indexes").
    #[arg(long, env = "HOLDFAST_DEFER_INDEXES")]
    pub(crate) defer_indexes: Option<bool>,
    /// Poll interval over http, in milliseconds.
    #[arg(long, env = "HOLDFAST_POLL_MS", default_value_t = 500)]
    pub(crate) poll_ms: u64,
    /// Exit once caught up with the head instead of following it.
    #[arg(long)]
    pub(crate) exit_when_caught_up: bool,
    /// Change-log retention: keep the newest N entries of the change log behind `/v1/stream`, and of older
    /// ones only each order's latest (compacted once a minute while caught up); 0 keeps everything. A
    /// stream resumed from a compacted position gets a `resync` event.
    #[arg(long, env = "HOLDFAST_CHANGE_LOG_KEEP", default_value_t = holdfast_indexer::DEFAULT_CHANGE_LOG_KEEP)]
    pub(crate) change_log_keep: u64,
}

/// Build the indexer's config.
pub(crate) fn indexer_config(
    rpc: &RpcOpts,
    deployments: &DeploymentOpts,
    idx: &IndexOpts,
) -> eyre::Result<IndexerConfig> {
    let mut cfg = IndexerConfig::new(rpc.rpc_url.clone(), deployments.resolve()?);
    cfg.finality = match idx.finality {
        FinalityMode::Tags => FinalityPolicy::Tags {
            fallback_safe_depth: idx.safe_depth,
            fallback_finalized_depth: idx.finalized_depth,
        },
        FinalityMode::Depth => FinalityPolicy::Depth { safe: idx.safe_depth, finalized: idx.finalized_depth },
    };
    if idx.log_range == 0 || idx.max_log_range < idx.log_range {
        bail!("--log-range must be at least 1 and at most --max-log-range");
    }
    cfg.backfill.initial_range = idx.log_range;
    cfg.backfill.max_range = idx.max_log_range;
    cfg.backfill.concurrency = idx.concurrency.max(1);
    cfg.backfill.defer_indexes = idx.defer_indexes;
    if idx.max_response_bytes < 64 * 1024 {
        bail!("--max-response-bytes must be at least 65536 (one block's logs are never split)");
    }
    cfg.retry.max_response_bytes = idx.max_response_bytes;
    cfg.poll_interval = std::time::Duration::from_millis(idx.poll_ms.max(10));
    cfg.reset_on_chain_reset = idx.reset;
    cfg.exit_when_caught_up = idx.exit_when_caught_up;
    cfg.change_log_keep = (idx.change_log_keep > 0).then_some(idx.change_log_keep);
    cfg.chain_id()?;
    Ok(cfg)
}

/// Ctrl-C (SIGINT) or SIGTERM, caught from the moment [`Shutdown::install`] returns.
///
/// The handlers are registered eagerly, not on the first poll of a future: a signal that arrives while
/// the command is still starting (a `holdfast dev` deploying, an API already answering before the main
/// task reaches its `select!`) is kept and acted on, instead of killing the process with the default
/// action and leaving anvil, which runs in its own process group, behind.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Register the handlers now; a signal from here on resolves every clone's [`Shutdown::requested`].
    pub(crate) fn install() -> eyre::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).wrap_err("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).wrap_err("cannot handle SIGTERM")?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            tracing::info!("shutting down");
            let _ = tx.send(true);
            // A second signal while stopping: the user insists; stop now (a leftover anvil is stopped by
            // the next `holdfast dev`).
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
            eprintln!("second stop signal: exiting without waiting");
            std::process::exit(130);
        });
        Ok(Self(rx))
    }

    /// Resolves once a stop signal has arrived (at once if one already did).
    pub(crate) async fn requested(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reorg depth is a histogram with buckets (a count that never decays), not a rolling summary.
    #[test]
    fn reorg_depth_is_a_histogram_that_keeps_its_counts() {
        let recorder = metrics_builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("holdfast_reorg_depth").record(3.0);
            metrics::histogram!("holdfast_api_request_duration_seconds", "route" => "/x").record(0.004);
        });
        let text = handle.render();
        assert!(text.contains("# TYPE holdfast_reorg_depth histogram"), "{text}");
        assert!(text.contains("holdfast_reorg_depth_bucket{le=\"2\"} 0"), "{text}");
        assert!(text.contains("holdfast_reorg_depth_bucket{le=\"3\"} 1"), "{text}");
        assert!(text.contains("holdfast_reorg_depth_count 1"), "{text}");
        assert!(text.contains("# TYPE holdfast_api_request_duration_seconds histogram"), "{text}");
    }
}
