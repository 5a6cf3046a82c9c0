//! The RPC side: one transport (http or ws) behind alloy's retry layer with our policy ([`crate::retry`]),
//! `eth_getLogs` split adaptively when the node refuses a range.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU64, Ordering},
};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    primitives::{Address, B256, BlockNumber},
    providers::{DynProvider, Provider, ProviderBuilder, WebSocketConfig, WsConnect},
    pubsub::PubSubConnect,
    rpc::{
        client::{ClientBuilder, RpcClient, RpcClientInner},
        types::{Filter, Log},
    },
    transports::{
        BoxTransport, IntoBoxTransport, RpcError, TransportError, TransportErrorKind,
        http::{Http, reqwest},
        utils::guess_local_url,
    },
};
use url::Url;

use crate::{
    ConfigError, Error, Result,
    config::{FinalityPolicy, RetryConfig},
    retry::{AttemptTimeoutLayer, FaultKind, HoldfastRetryPolicy, Retries, classify},
};
use holdfast_primitives::{BlockRef, Heights, bindings::IHoldfastEscrow};

alloy::sol! {
    #[sol(rpc)]
    /// The one ERC-20 view the reconciliation needs.
    interface IERC20Balance {
        function balanceOf(address account) external view returns (uint256);
    }
}

/// The node, behind retries ([`crate::retry`]).
///
/// One transport (one websocket, or one pool of http connections) with a client per retry behaviour:
/// ordinary calls retry every transient failure, `eth_getLogs` over a range hands a refusal back at once
/// (to split the range), calls pinned to a block hash are not retried.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Ordinary calls ([`Retries::All`]).
    calls: DynProvider,
    /// `eth_getLogs` over more than one block ([`Retries::LogRange`]), with a generation number. Over a
    /// websocket, on a connection of its own that [`Chain::logs`] replaces after a failed range (see
    /// [`Chain::ws_ranges`]); over http, the shared transport.
    ranges: Arc<RwLock<(u64, DynProvider)>>,
    /// Calls pinned to a block hash ([`Retries::None`]).
    pinned: DynProvider,
    retry: RetryConfig,
    is_ws: bool,
    url: Url,
    /// The chain id the node reported when connected.
    chain_id: u64,
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

/// The websocket of `url`, with the configured message limit.
fn ws_connect(url: &Url, retry: &RetryConfig) -> WsConnect {
    let n = retry.max_response_bytes;
    WsConnect::new(url.as_str())
        .with_config(WebSocketConfig::default().max_message_size(Some(n)).max_frame_size(Some(n)))
}

/// A client over `transport` with the retry behaviour `retries`, numbering its requests from `first_id`
/// (clients sharing a websocket must not reuse each other's ids).
fn client(
    transport: &BoxTransport,
    retry: &RetryConfig,
    retries: Retries,
    first_id: u64,
    is_local: bool,
) -> DynProvider {
    let service = tower::ServiceBuilder::new()
        .layer(HoldfastRetryPolicy::new(retry, retries).layer())
        .layer(AttemptTimeoutLayer::new(retry.request_timeout))
        .service(transport.clone());
    let client = RpcClient::from_inner(RpcClientInner::new(service, is_local).with_id(first_id));
    DynProvider::new(ProviderBuilder::new().connect_client(client))
}

/// Every log of blocks `from..=to` (one piece of a range, see [`Chain::logs_in_pieces`]), in chain order.
#[derive(Debug, Clone)]
pub struct LogPiece {
    /// First block.
    pub from: BlockNumber,
    /// Last block.
    pub to: BlockNumber,
    /// The logs.
    pub logs: Vec<Log>,
}

/// The capped http transport's refusal, if `e` is one (it may say the response's size).
fn response_too_large(e: &TransportError) -> Option<&crate::capped_http::ResponseTooLarge> {
    match e {
        RpcError::Transport(TransportErrorKind::Custom(inner)) => inner.downcast_ref(),
        _ => None,
    }
}

/// Whether `e` says the websocket under the request is gone (broken by a response over its message limit,
/// or by the node).
fn connection_lost(e: &TransportError) -> bool {
    matches!(e, RpcError::Transport(TransportErrorKind::BackendGone | TransportErrorKind::PubsubUnavailable))
}

impl Chain {
    /// Connect to `url` (http, https, ws or wss) and ask the node for its chain id (with retries).
    /// [`Error::Connect`] if the node does not answer at all.
    pub async fn connect(url: &Url, retry: RetryConfig) -> Result<Self> {
        let is_ws = matches!(url.scheme(), "ws" | "wss");
        let transport = if is_ws {
            ws_connect(url, &retry)
                .into_service()
                .await
                .map_err(|source| Error::Connect { url: url.clone(), source: source.into() })?
                .into_box_transport()
        } else if matches!(url.scheme(), "http" | "https") {
            Http::with_client(reqwest::Client::new(), url.clone()).into_box_transport()
        } else {
            return Err(ConfigError::UnsupportedScheme(url.scheme().to_owned()).into());
        };
        // Over http, log ranges read at most `max_response_bytes` of a response (see `capped_http`).
        let ranges = (!is_ws).then(|| {
            BoxTransport::new(crate::capped_http::CappedHttp::new(url.clone(), retry.max_response_bytes))
        });
        Self::over(transport, ranges, guess_local_url(url.as_str()), retry, is_ws, url.clone()).await
    }

    /// A fresh connection to the same node with the same retry settings.
    pub async fn reconnect(&self) -> Result<Self> {
        Self::connect(&self.url, self.retry.clone()).await
    }

    /// The clients over one transport, and the node's chain id. The clients share the transport, so each
    /// numbers its requests from a base of its own: on a websocket, responses are matched to requests by
    /// id.
    async fn over(
        transport: BoxTransport,
        http_ranges: Option<BoxTransport>,
        is_local: bool,
        retry: RetryConfig,
        is_ws: bool,
        url: Url,
    ) -> Result<Self> {
        let client =
            |retries: Retries, first_id: u64| client(&transport, &retry, retries, first_id, is_local);
        let calls = client(Retries::All, 0);
        // An http client connects on its first request: this one.
        let chain_id = calls.get_chain_id().await.map_err(|source| match source {
            RpcError::Transport(_) => Error::Connect { url: url.clone(), source: source.into() },
            source => Error::Rpc { call: "eth_chainId", source },
        })?;
        let ranges = match (is_ws, &http_ranges) {
            (true, _) => Self::ws_ranges(&url, &retry).await?,
            (false, Some(capped)) => self::client(capped, &retry, Retries::LogRange, 1 << 48, is_local),
            (false, None) => client(Retries::LogRange, 1 << 48),
        };
        Ok(Self {
            calls,
            ranges: Arc::new(RwLock::new((0, ranges))),
            pinned: client(Retries::None, 2 << 48),
            retry,
            is_ws,
            url,
            chain_id,
        })
    }

    /// The connection of log ranges over a websocket, of its own. A response over the websocket's message
    /// limit (`RetryConfig::ws_max_message_bytes`) breaks the connection that carries it, and alloy's pubsub
    /// sends the requests in flight again on every reconnect: the oversized range would break it again,
    /// forever, together with every call sharing it. So ranges get a connection that never reconnects
    /// (`max_retries(0)`): when it breaks, its requests fail at once, and [`Chain::logs`] replaces it and
    /// splits the range.
    async fn ws_ranges(url: &Url, retry: &RetryConfig) -> Result<DynProvider> {
        let transport = ws_connect(url, retry)
            .with_max_retries(0)
            .into_service()
            .await
            .map_err(|source| Error::Connect { url: url.clone(), source: source.into() })?
            .into_box_transport();
        Ok(client(&transport, retry, Retries::LogRange, 1 << 48, guess_local_url(url.as_str())))
    }

    /// After a failed range over a websocket: a fresh connection for ranges, unless another range replaced
    /// generation `failed` already. A node that cannot be reached leaves the broken one, whose requests fail
    /// at once: ranges split down to single blocks, which go through the ordinary, retried calls.
    async fn replace_ranges(&self, failed: u64) {
        if self.ranges.read().expect("not poisoned").0 != failed {
            return;
        }
        match Self::ws_ranges(&self.url, &self.retry).await {
            Ok(fresh) => {
                let mut ranges = self.ranges.write().expect("not poisoned");
                if ranges.0 == failed {
                    *ranges = (failed + 1, fresh);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reconnect the log-range websocket"),
        }
    }

    /// Subscribe to new heads on a separate websocket connection (see [`Heads`]).
    pub async fn heads(&self) -> Result<Heads> {
        if !self.is_ws {
            return Err(ConfigError::HeadsNeedWebsocket.into());
        }
        let client = ClientBuilder::default()
            .layer(HoldfastRetryPolicy::new(&self.retry, Retries::All).layer())
            .layer(AttemptTimeoutLayer::new(self.retry.request_timeout))
            .ws(WsConnect::new(self.url.as_str()))
            .await
            .map_err(|source| Error::Connect { url: self.url.clone(), source: source.into() })?;
        let provider = DynProvider::new(ProviderBuilder::new().connect_client(client));
        let sub = provider
            .subscribe_blocks()
            .await
            .map_err(|source| Error::Rpc { call: "eth_subscribe", source })?;
        Ok(Heads { stream: sub.into_stream(), _provider: provider })
    }

    /// The provider of ordinary calls (every transient failure retried).
    pub fn provider(&self) -> &DynProvider {
        &self.calls
    }

    /// Whether new heads can be subscribed to.
    pub fn is_ws(&self) -> bool {
        self.is_ws
    }

    /// A call's result, its failure as [`Error::Rpc`].
    fn rpc<T>(call: &'static str, r: std::result::Result<T, TransportError>) -> Result<T> {
        r.map_err(|source| Error::Rpc { call, source })
    }

    /// The node's chain id (as reported when connected).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Latest block number.
    pub async fn head(&self) -> Result<BlockNumber> {
        Self::rpc("eth_blockNumber", self.calls.get_block_number().await)
    }

    /// A header by number or tag (`None` if the node has no such block).
    pub async fn header(&self, at: BlockNumberOrTag) -> Result<Option<BlockRef>> {
        let block = Self::rpc("eth_getBlockByNumber", self.calls.get_block_by_number(at).await)?;
        Ok(block.map(|b| BlockRef {
            number: b.header.number,
            hash: b.header.hash,
            parent_hash: b.header.parent_hash,
            timestamp: b.header.timestamp,
        }))
    }

    /// Headers of `from..=to`, fetched concurrently. [`Error::MissingBlock`] if the node lacks one.
    pub async fn headers(&self, from: BlockNumber, to: BlockNumber) -> Result<Vec<BlockRef>> {
        use futures::{StreamExt, TryStreamExt};
        // Owned clones in the closures keep the returned future `Send` for any lifetime.
        let this = self.clone();
        futures::stream::iter(from..=to)
            .map(move |n| {
                let this = this.clone();
                async move {
                    this.header(BlockNumberOrTag::Number(n)).await?.ok_or(Error::MissingBlock { number: n })
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
                let tag = |t: BlockNumberOrTag, call: &'static str, depth: u64| async move {
                    match self.calls.get_block_by_number(t).await {
                        Ok(Some(b)) => Ok(b.header.number),
                        // No such tag (an old node, a devnet): the fallback depth.
                        Ok(None) => Ok(head.saturating_sub(depth)),
                        Err(e) if classify(&e) == FaultKind::Fatal => Ok(head.saturating_sub(depth)),
                        Err(source) => Err(Error::Rpc { call, source }),
                    }
                };
                let safe =
                    tag(BlockNumberOrTag::Safe, "eth_getBlockByNumber(safe)", fallback_safe_depth).await?;
                let finalized = tag(
                    BlockNumberOrTag::Finalized,
                    "eth_getBlockByNumber(finalized)",
                    fallback_finalized_depth,
                )
                .await?;
                Ok(Heights { head, safe: safe.min(head), finalized: finalized.min(safe).min(head) })
            }
        }
    }

    /// All logs of `addresses` with `topics0` in `from..=to`, in chain order: [`Chain::logs_in_pieces`]
    /// collected.
    pub async fn logs(
        &self,
        addresses: &[Address],
        topics0: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range_hint: &AtomicU64,
        min_range: u64,
    ) -> Result<Vec<Log>> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let fetch = self.logs_in_pieces(addresses, topics0, from, to, range_hint, min_range, tx);
        let collect = async {
            let mut out = Vec::new();
            while let Some(piece) = rx.recv().await {
                out.extend(piece.logs);
            }
            out
        };
        let (fetched, out) = tokio::join!(fetch, collect);
        fetched.map(|()| out)
    }

    /// The logs of `addresses` with `topics0` in `from..=to`, sent to `sink` in pieces, in chain order: each
    /// [`LogPiece`] holds every log of its blocks, and the pieces cover the range without gaps. A range the
    /// node refuses as too large (or whose response is over the cap, see `capped_http`) is split, and its
    /// parts are sent as they arrive, so a caller can commit each part without ever holding the whole range
    /// (recursively, down to single blocks); `range_hint` is lowered so later ranges start smaller.
    #[allow(clippy::too_many_arguments)]
    pub async fn logs_in_pieces(
        &self,
        addresses: &[Address],
        topics0: &[B256],
        from: BlockNumber,
        to: BlockNumber,
        range_hint: &AtomicU64,
        min_range: u64,
        sink: tokio::sync::mpsc::Sender<LogPiece>,
    ) -> Result<()> {
        let mut stack = vec![(from, to)];
        while let Some((a, b)) = stack.pop() {
            let filter = Filter::new()
                .address(addresses.to_vec())
                .event_signature(topics0.to_vec())
                .from_block(a)
                .to_block(b);
            // A range hands a refusal back at once, to be split; a single block cannot be split and is
            // retried like any call.
            let (generation, provider) = if b > a {
                self.ranges.read().expect("not poisoned").clone()
            } else {
                (0, self.calls.clone())
            };
            match provider.get_logs(&filter).await {
                Ok(mut logs) => {
                    logs.sort_by_key(|l| (l.block_number, l.log_index));
                    if sink.send(LogPiece { from: a, to: b, logs }).await.is_err() {
                        // The receiver is gone: nobody wants the rest.
                        return Ok(());
                    }
                }
                Err(e)
                    if b > a
                        && (classify(&e) == FaultKind::TooLarge || self.is_ws && connection_lost(&e)) =>
                {
                    if self.is_ws {
                        self.replace_ranges(generation).await;
                    }
                    // In halves, or at once into as many parts as a response whose size the node
                    // announced needs (see `capped_http`).
                    let span = b - a + 1;
                    let parts = response_too_large(&e).map_or(2, |t| t.parts()).clamp(2, span);
                    let part = span.div_ceil(parts);
                    range_hint.fetch_min(part.max(min_range.max(1)), Ordering::Relaxed);
                    tracing::debug!(from = a, to = b, parts, error = %e, "log range refused; splitting");
                    // Pushed in reverse so the lowest part is fetched first.
                    let mut start = a;
                    let mut pieces = Vec::new();
                    while start <= b {
                        let end = b.min(start + part - 1);
                        pieces.push((start, end));
                        start = end + 1;
                    }
                    stack.extend(pieces.into_iter().rev());
                }
                Err(source) => return Err(Error::Logs { from: a, to: b, source }),
            }
        }
        Ok(())
    }

    /// All logs of `addresses` with `topics0` in the block with this hash (one block: never split). No
    /// retry: after a reorg the node may no longer know the block.
    pub async fn block_logs(&self, addresses: &[Address], topics0: &[B256], block: B256) -> Result<Vec<Log>> {
        let filter =
            Filter::new().address(addresses.to_vec()).event_signature(topics0.to_vec()).at_block_hash(block);
        let mut logs = Self::rpc("eth_getLogs", self.pinned.get_logs(&filter).await)?;
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
        let erc20 = IERC20Balance::new(token, &self.pinned);
        erc20
            .balanceOf(holder)
            .block(BlockId::hash(at))
            .call()
            .await
            .map_err(|source| Error::Contract { call: "balanceOf", source: source.into() })
    }

    /// The escrow's token.
    pub async fn escrow_token(&self, escrow: Address) -> Result<Address> {
        let c = IHoldfastEscrow::new(escrow, &self.calls);
        c.token().call().await.map_err(|source| Error::Contract { call: "token", source: source.into() })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use alloy::transports::mock::{Asserter, MockTransport};

    use super::*;

    fn quick() -> RetryConfig {
        RetryConfig {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
            request_timeout: Duration::from_secs(5),
            max_response_bytes: crate::config::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// A caller tells a refused connection from a block the node does not have by the variant alone.
    #[tokio::test]
    async fn a_refused_connection_is_not_a_missing_block() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for scheme in ["http", "ws"] {
            let url: Url = format!("{scheme}://127.0.0.1:{closed}").parse().unwrap();
            match Chain::connect(&url, quick()).await {
                Err(Error::Connect { url: at, .. }) => assert_eq!(at, url),
                other => panic!("{scheme}: expected Error::Connect, got {other:?}"),
            }
        }

        let node = Asserter::new();
        node.push_success(&"0x7a69"); // eth_chainId
        node.push_success(&serde_json::Value::Null); // eth_getBlockByNumber: no such block
        let url: Url = "http://node.invalid".parse().unwrap();
        let chain =
            Chain::over(MockTransport::new(node).into_box_transport(), None, true, quick(), false, url)
                .await
                .unwrap();
        assert_eq!(chain.chain_id(), 31337);
        match chain.headers(7, 7).await {
            Err(Error::MissingBlock { number: 7 }) => {}
            other => panic!("expected Error::MissingBlock, got {other:?}"),
        }
    }
}
