//! The RPC side: one provider (http or ws), every call retried with exponential backoff and jitter on
//! transport faults and rate limits, `eth_getLogs` split adaptively when the node refuses a range.

use std::{
    future::IntoFuture,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B256, BlockNumber},
    providers::{DynProvider, Provider, ProviderBuilder, WsConnect},
    rpc::{
        client::RpcClient,
        types::{Filter, Log},
    },
    transports::{RpcError, TransportErrorKind},
};
use rand::Rng;
use url::Url;

use crate::{
    Error, Result,
    config::{FinalityPolicy, RetryConfig},
    metrics,
};
use holdfast_primitives::{BlockRef, Heights, bindings::IHoldfastEscrow};

alloy::sol! {
    #[sol(rpc)]
    /// The one ERC-20 view the reconciliation needs.
    interface IERC20Balance {
        function balanceOf(address account) external view returns (uint256);
    }
}

/// How an RPC failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The node refuses the size of the request (too many results, range too wide, payload too large,
    /// timeout): ask for less.
    TooLarge,
    /// Rate limited (HTTP 429 or a JSON-RPC limit code): back off and retry.
    RateLimited,
    /// Connection or server trouble: back off and retry.
    Transport,
    /// The node answered with an error that retrying will not fix.
    Fatal,
}

impl FaultKind {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::Transport => "transport",
            Self::Fatal => "fatal",
        }
    }
}

/// Classify an RPC error.
pub fn classify(err: &RpcError<TransportErrorKind>) -> FaultKind {
    let text = err.to_string().to_ascii_lowercase();
    let too_large = [
        "more than",
        "too many",
        "limit exceeded",
        "range",
        "too large",
        "response size",
        "query timeout",
        "exceed",
        "413",
    ];
    match err {
        RpcError::ErrorResp(payload) => {
            let msg = payload.message.to_ascii_lowercase();
            if payload.code == 429 || msg.contains("rate limit") || msg.contains("too many requests") {
                FaultKind::RateLimited
            } else if payload.code == -32005 || too_large.iter().any(|p| msg.contains(p)) {
                FaultKind::TooLarge
            } else if payload.code == -32603 || payload.code == -32000 {
                // Internal errors: often transient on real providers.
                FaultKind::Transport
            } else {
                FaultKind::Fatal
            }
        }
        RpcError::Transport(TransportErrorKind::HttpError(h)) => match h.status {
            429 => FaultKind::RateLimited,
            413 => FaultKind::TooLarge,
            _ => FaultKind::Transport,
        },
        RpcError::Transport(_) => FaultKind::Transport,
        RpcError::DeserError { text: body, .. } => {
            let body = body.to_ascii_lowercase();
            if body.contains("429") || body.contains("rate") {
                FaultKind::RateLimited
            } else if too_large.iter().any(|p| body.contains(p)) {
                FaultKind::TooLarge
            } else {
                FaultKind::Transport
            }
        }
        _ if text.contains("timed out") => FaultKind::TooLarge,
        _ => FaultKind::Transport,
    }
}

/// A contract call's error as an RPC error, so [`classify`] and the retries treat both alike.
fn contract_error(e: alloy::contract::Error) -> RpcError<TransportErrorKind> {
    match e {
        alloy::contract::Error::TransportError(t) => t,
        other => RpcError::local_usage_str(&other.to_string()),
    }
}

/// A call's failure after classification.
#[derive(Debug)]
struct Fault {
    kind: FaultKind,
    message: String,
}

/// The node, behind retries.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: DynProvider,
    retry: RetryConfig,
    is_ws: bool,
    url: Url,
}

/// New heads from a `newHeads` subscription on a connection of its own.
///
/// Not on the connection that carries the requests: there, the client's delayed ACKs (it expects to
/// piggyback them on its next request) hold back the server's next small write under the server's
/// Nagle algorithm, and every notification arrived ~40 ms late. A connection that only receives is
/// acknowledged at once.
pub struct Heads {
    _provider: DynProvider,
    stream: alloy::pubsub::SubscriptionStream<alloy::rpc::types::Header>,
}

impl std::fmt::Debug for Heads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Heads")
    }
}

impl Heads {
    /// The next announced head (`None`: the subscription ended).
    pub async fn next(&mut self) -> Option<BlockRef> {
        use futures::StreamExt;
        self.stream.next().await.map(|h| BlockRef {
            number: h.number,
            hash: h.hash,
            parent_hash: h.parent_hash,
            timestamp: h.timestamp,
        })
    }
}

impl Chain {
    /// Connect to `url` (http, https, ws or wss).
    pub async fn connect(url: &Url, retry: RetryConfig) -> Result<Self> {
        let is_ws = matches!(url.scheme(), "ws" | "wss");
        let provider = if is_ws {
            let p = ProviderBuilder::new()
                .connect_ws(WsConnect::new(url.as_str()))
                .await
                .map_err(|e| Error::Rpc(format!("cannot connect to {url}: {e}")))?;
            DynProvider::new(p)
        } else if matches!(url.scheme(), "http" | "https") {
            let client = RpcClient::new_http(url.clone());
            DynProvider::new(ProviderBuilder::new().connect_client(client))
        } else {
            return Err(Error::Config(format!("unsupported RPC URL scheme {:?}", url.scheme())));
        };
        Ok(Self { provider, retry, is_ws, url: url.clone() })
    }

    /// Subscribe to new heads on a separate websocket connection (see [`Heads`]).
    pub async fn heads(&self) -> Result<Heads> {
        if !self.is_ws {
            return Err(Error::Config("new heads need a ws:// or wss:// RPC URL".into()));
        }
        let provider = DynProvider::new(
            ProviderBuilder::new()
                .connect_ws(WsConnect::new(self.url.as_str()))
                .await
                .map_err(|e| Error::Rpc(format!("cannot connect to {}: {e}", self.url)))?,
        );
        let sub = provider.subscribe_blocks().await.map_err(|e| Error::Rpc(format!("eth_subscribe: {e}")))?;
        Ok(Heads { stream: sub.into_stream(), _provider: provider })
    }

    /// The underlying provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Whether new heads can be subscribed to.
    pub fn is_ws(&self) -> bool {
        self.is_ws
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.retry.initial_backoff.saturating_mul(1u32 << attempt.min(16));
        let capped = base.min(self.retry.max_backoff);
        let jitter = rand::rng().random_range(0.5..1.0);
        capped.mul_f64(jitter)
    }

    /// Run one RPC call with a timeout, classifying its failure.
    async fn once<T, Fut>(&self, fut: Fut) -> std::result::Result<T, Fault>
    where
        Fut: IntoFuture<Output = std::result::Result<T, RpcError<TransportErrorKind>>>,
    {
        match tokio::time::timeout(self.retry.request_timeout, fut.into_future()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Fault { kind: classify(&e), message: e.to_string() }),
            Err(_) => Err(Fault { kind: FaultKind::TooLarge, message: "request timed out".into() }),
        }
    }

    /// Retry `f` on transport faults and rate limits (and on `TooLarge` when `retry_too_large`).
    async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        retry_too_large: bool,
        f: F,
    ) -> std::result::Result<T, Fault>
    where
        F: Fn() -> Fut,
        Fut: IntoFuture<Output = std::result::Result<T, RpcError<TransportErrorKind>>>,
    {
        let mut attempt = 0;
        loop {
            match self.once(f()).await {
                Ok(v) => return Ok(v),
                Err(fault) => {
                    metrics::rpc_error(fault.kind.as_str());
                    let retryable = match fault.kind {
                        FaultKind::RateLimited | FaultKind::Transport => true,
                        FaultKind::TooLarge => retry_too_large,
                        FaultKind::Fatal => false,
                    };
                    attempt += 1;
                    if !retryable || attempt >= self.retry.max_attempts {
                        return Err(fault);
                    }
                    let delay = self.backoff(attempt);
                    tracing::debug!(what, kind = fault.kind.as_str(), error = %fault.message, attempt,
                        delay_ms = delay.as_millis() as u64, "rpc call failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn call<T, F, Fut>(&self, what: &str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: IntoFuture<Output = std::result::Result<T, RpcError<TransportErrorKind>>>,
    {
        self.retrying(what, true, f).await.map_err(|f| Error::Rpc(format!("{what}: {}", f.message)))
    }

    /// One attempt, no retry: for calls pinned to a block hash, which a reorg can make unanswerable for
    /// good (the node no longer knows the block; retrying would stall the caller).
    async fn call_once<T, Fut>(&self, what: &str, fut: Fut) -> Result<T>
    where
        Fut: IntoFuture<Output = std::result::Result<T, RpcError<TransportErrorKind>>>,
    {
        self.once(fut).await.map_err(|f| {
            metrics::rpc_error(f.kind.as_str());
            Error::Rpc(format!("{what}: {}", f.message))
        })
    }

    /// The node's chain id.
    pub async fn chain_id(&self) -> Result<u64> {
        self.call("eth_chainId", || self.provider.get_chain_id()).await
    }

    /// Latest block number.
    pub async fn head(&self) -> Result<BlockNumber> {
        self.call("eth_blockNumber", || self.provider.get_block_number()).await
    }

    /// A header by number or tag (`None` if the node has no such block).
    pub async fn header(&self, at: BlockNumberOrTag) -> Result<Option<BlockRef>> {
        let block = self.call("eth_getBlockByNumber", || self.provider.get_block_by_number(at)).await?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
            timestamp: b.header.timestamp,
        }))
    }

    /// Headers of `from..=to`, fetched concurrently. Errors if the node lacks one.
    pub async fn headers(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<BlockRef>> {
        use futures::{StreamExt, TryStreamExt};
        // Owned clones in the closures keep the returned future `Send` for any lifetime.
        let this = self.clone();
        futures::stream::iter(from..=to)
            .map(move |n| {
                let this = this.clone();
                async move {
                    this.header(BlockNumberOrTag::Number(n))
                        .await?
                        .ok_or_else(|| Error::Rpc(format!("node has no block {n} (chain moved?)")))
                }
            })
            .buffered(16)
            .try_collect()
            .await
    }

    /// Head, safe and finalized heights by the policy.
    pub async fn heights(&self, policy: FinalityPolicy) -> Result<Heights> {
        let head = self.head().await?;
        match policy {
            FinalityPolicy::Depth { safe, finalized } => Ok(Heights {
                head,
                safe: head.saturating_sub(safe),
                finalized: head.saturating_sub(finalized),
            }),
            FinalityPolicy::Tags { fallback_safe_depth, fallback_finalized_depth } => {
                let tag = |t: BlockNumberOrTag, depth: u64| async move {
                    match self
                        .retrying("eth_getBlockByNumber", true, || self.provider.get_block_by_number(t))
                        .await
                    {
                        Ok(Some(b)) => Ok(b.header.number),
                        Ok(None) => Ok(head.saturating_sub(depth)),
                        Err(f) if f.kind == FaultKind::Fatal => Ok(head.saturating_sub(depth)),
                        Err(f) => Err(Error::Rpc(format!("finality tag {t}: {}", f.message))),
                    }
                };
                let safe = tag(BlockNumberOrTag::Safe, fallback_safe_depth).await?;
                let finalized = tag(BlockNumberOrTag::Finalized, fallback_finalized_depth).await?;
                Ok(Heights { head, safe: safe.min(head), finalized: finalized.min(safe).min(head) })
            }
        }
    }

    /// All logs of `addresses` with `topics0` in `from..=to`. A range the node refuses as too large is
    /// split in halves (recursively, down to single blocks); `range_hint` is shrunk so later ranges start
    /// smaller.
    pub async fn logs(
        &self,
        addresses: &[Address],
        topics0: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range_hint: &AtomicU64,
        min_range: u64,
    ) -> Result<Vec<Log>> {
        let mut out = Vec::new();
        let mut stack = vec![(from, to)];
        while let Some((a, b)) = stack.pop() {
            let filter = Filter::new()
                .address(addresses.to_vec())
                .event_signature(topics0.to_vec())
                .from_block(a)
                .to_block(b);
            match self.retrying("eth_getLogs", false, || self.provider.get_logs(&filter)).await {
                Ok(logs) => out.extend(logs),
                Err(f) if f.kind == FaultKind::TooLarge && b > a => {
                    let mid = a + (b - a) / 2;
                    let half = (b - a + 1).div_ceil(2).max(min_range.max(1));
                    range_hint.fetch_min(half, Ordering::Relaxed);
                    tracing::debug!(from = a, to = b, error = %f.message, "log range refused; splitting");
                    // Pushed in reverse so the lower half is fetched first.
                    stack.push((mid + 1, b));
                    stack.push((a, mid));
                }
                Err(f) if f.kind == FaultKind::TooLarge => {
                    // A single block refused: retry it with backoff like a transport fault.
                    let logs = self
                        .call("eth_getLogs", || self.provider.get_logs(&filter))
                        .await
                        .map_err(|e| Error::Rpc(format!("block {a}: {e} (after {})", f.message)))?;
                    out.extend(logs);
                }
                Err(f) => return Err(Error::Rpc(format!("eth_getLogs {a}..={b}: {}", f.message))),
            }
        }
        out.sort_by_key(|l| (l.block_number, l.log_index));
        Ok(out)
    }

    /// All logs of `addresses` with `topics0` in the block with this hash (one block: never split). One
    /// attempt: after a reorg the node may no longer know the block.
    pub async fn block_logs(&self, addresses: &[Address], topics0: &[B256], block: B256) -> Result<Vec<Log>> {
        let filter =
            Filter::new().address(addresses.to_vec()).event_signature(topics0.to_vec()).at_block_hash(block);
        let mut logs = self.call_once("eth_getLogs", self.provider.get_logs(&filter)).await?;
        logs.sort_by_key(|l| l.log_index);
        Ok(logs)
    }

    /// `token.balanceOf(holder)` at a block hash.
    pub async fn balance_of(
        &self,
        token: Address,
        holder: Address,
        at: B256,
    ) -> Result<alloy::primitives::U256> {
        let erc20 = IERC20Balance::new(token, &self.provider);
        self.call_once("balanceOf", async {
            erc20.balanceOf(holder).block(BlockId::hash(at)).call().await.map_err(contract_error)
        })
        .await
    }

    /// The escrow's token.
    pub async fn escrow_token(&self, escrow: Address) -> Result<Address> {
        let c = IHoldfastEscrow::new(escrow, &self.provider);
        self.call("token", || async { c.token().call().await.map_err(contract_error) }).await
    }
}
