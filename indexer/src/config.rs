//! Indexer configuration: built once by the CLI and passed down (the library reads no environment).

use std::time::Duration;

use alloy::primitives::{Address, BlockNumber};
use serde::{Deserialize, Serialize};
use url::Url;

/// One escrow deployment to follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id the escrow lives on.
    pub chain_id: u64,
    /// Escrow contract address.
    pub escrow: Address,
    /// First block to index (the deployment block).
    pub start_block: BlockNumber,
    /// Token the escrow holds, if known (used for reconciliation).
    #[serde(default)]
    pub token: Option<Address>,
}

/// How the indexer decides which blocks are safe and finalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalityPolicy {
    /// Use the node's `safe` and `finalized` block tags; fall back to these depths if the node has none.
    Tags {
        /// Depth below the head treated as safe when the node has no `safe` tag.
        fallback_safe_depth: u64,
        /// Depth below the head treated as finalized when the node has no `finalized` tag.
        fallback_finalized_depth: u64,
    },
    /// Ignore the node's tags and use fixed depths below the head.
    Depth {
        /// Depth treated as safe.
        safe: u64,
        /// Depth treated as finalized.
        finalized: u64,
    },
}

impl Default for FinalityPolicy {
    fn default() -> Self {
        Self::Tags { fallback_safe_depth: 32, fallback_finalized_depth: 64 }
    }
}

/// Backfill tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillConfig {
    /// Initial `eth_getLogs` block range.
    pub initial_range: u64,
    /// Smallest range the adaptive sizing shrinks to.
    pub min_range: u64,
    /// Largest range the adaptive sizing grows to.
    pub max_range: u64,
    /// Ranges fetched concurrently.
    pub concurrency: usize,
    /// Logs wanted per `eth_getLogs` response: ranges shrink when one returns more, so memory stays
    /// bounded by about `concurrency × target_logs` logs.
    pub target_logs: u64,
    /// On a store that holds no events yet, defer its read-path indexes until the backfill reaches the
    /// finalized height, and build them then in one pass (see `holdfast_store::DeferredIndexes`). `None`:
    /// the store's default (Postgres yes, SQLite no).
    pub defer_indexes: Option<bool>,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            initial_range: 100,
            min_range: 1,
            max_range: 100_000,
            concurrency: 4,
            target_logs: 5_000,
            defer_indexes: None,
        }
    }
}

/// Retry policy for RPC calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts before an RPC call is given up. The indexer then reports the fault (readiness, metrics,
    /// logs) and retries its step without limit, with a backoff of its own: a small budget here makes a
    /// dead node visible within seconds.
    pub max_attempts: u32,
    /// First backoff delay; doubled each attempt, with jitter.
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Timeout of one RPC request.
    pub request_timeout: Duration,
    /// Largest `eth_getLogs` range response accepted, in bytes: over http the body is read up to this and
    /// abandoned beyond it; over a websocket it is the message (and frame) limit, and a larger response
    /// breaks its connection, which is replaced. Either way the range is split (see `Chain::logs`), so no
    /// response held in memory is larger, whatever the node sends. See [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: usize,
}

/// Default [`RetryConfig::max_response_bytes`]: 8 MiB, about 9,000 escrow logs (almost twice the
/// backfill's target of 5,000 per response, so a well-sized range never meets it).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// Everything the indexer needs.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    /// RPC endpoint (http, https, ws or wss). With ws(s), new heads arrive by subscription.
    pub rpc_url: Url,
    /// Escrows to follow; all on the RPC's chain.
    pub deployments: Vec<Deployment>,
    /// Finality source.
    pub finality: FinalityPolicy,
    /// Backfill tuning.
    pub backfill: BackfillConfig,
    /// RPC retries.
    pub retry: RetryConfig,
    /// Poll interval for new blocks over http (and the fallback wake-up over ws).
    pub poll_interval: Duration,
    /// If the chain was reset, wipe this chain's data and re-index instead of halting.
    pub reset_on_chain_reset: bool,
    /// Stop once the indexer has caught up with the head (for one-shot backfills and tests).
    pub exit_when_caught_up: bool,
    /// Change-log retention: keep the newest this many entries of the change log (the API's change feed),
    /// and of older ones only each order's latest; `None` keeps everything. See [`DEFAULT_CHANGE_LOG_KEEP`].
    pub change_log_keep: Option<u64>,
}

/// Default change-log retention: the newest million entries (about 1 GB with typical order states), and
/// every order's latest entry.
pub const DEFAULT_CHANGE_LOG_KEEP: u64 = 1_000_000;

impl IndexerConfig {
    /// A configuration with defaults for everything but the endpoint and deployments.
    pub fn new(rpc_url: Url, deployments: Vec<Deployment>) -> Self {
        Self {
            rpc_url,
            deployments,
            finality: FinalityPolicy::default(),
            backfill: BackfillConfig::default(),
            retry: RetryConfig::default(),
            poll_interval: Duration::from_millis(500),
            reset_on_chain_reset: false,
            exit_when_caught_up: false,
            change_log_keep: Some(DEFAULT_CHANGE_LOG_KEEP),
        }
    }

    /// The chain id all deployments share.
    pub fn chain_id(&self) -> crate::Result<u64> {
        let first = self.deployments.first().ok_or(crate::ConfigError::NoDeployment)?;
        if let Some(other) = self.deployments.iter().find(|d| d.chain_id != first.chain_id) {
            return Err(
                crate::ConfigError::MixedChains { first: first.chain_id, other: other.chain_id }.into()
            );
        }
        Ok(first.chain_id)
    }

    /// The lowest start block of all deployments.
    pub fn start_block(&self) -> BlockNumber {
        self.deployments.iter().map(|d| d.start_block).min().unwrap_or(0)
    }
}
