//! API configuration, built by the caller (the CLI); the library reads no environment.

use std::{collections::BTreeMap, time::Duration};

use alloy::primitives::Address;

/// The token an escrow holds, as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Token contract (unknown: `None`).
    pub address: Option<Address>,
    /// Symbol, e.g. `USDC`.
    pub symbol: String,
    /// Decimals of the base unit, e.g. 6.
    pub decimals: u8,
}

impl Default for TokenInfo {
    /// USDC with 6 decimals and an unknown address: the assumption for escrows not configured.
    fn default() -> Self {
        Self { address: None, symbol: "USDC".into(), decimals: 6 }
    }
}

/// One escrow the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowInfo {
    /// Chain id.
    pub chain_id: u64,
    /// Escrow address.
    pub escrow: Address,
    /// Its token.
    pub token: TokenInfo,
}

/// Everything the API needs besides the store.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Known escrows and their tokens. Escrows not listed are served with [`ApiConfig::default_token`].
    pub escrows: Vec<EscrowInfo>,
    /// Token assumed for escrows not listed.
    pub default_token: TokenInfo,
    /// Chain names used in payment records (`rail.chain`), over the built-in ones (see [`chain_name`]).
    pub chain_names: BTreeMap<u64, String>,
    /// Longest `wait` accepted by `GET /v1/transactions/{txHash}`.
    pub max_wait: Duration,
    /// Timeout of ordinary requests (long-polls get `max_wait` on top; the stream has none).
    pub request_timeout: Duration,
    /// How often the standalone watcher reads the indexing state (with indexer notifications it is only a
    /// safety net).
    pub poll_interval: Duration,
    /// `/readyz` fails when an indexed chain's cursor is more than this many blocks below its head.
    pub ready_max_lag_blocks: u64,
    /// `/readyz` fails when the indexer has not confirmed a chain's head for this long (it records the
    /// node's heights at least every 2 s while it reaches the node, even on an idle chain).
    pub ready_max_stall: Duration,
    /// Allowed CORS origins (`None`: any origin).
    pub cors_origins: Option<Vec<String>>,
    /// Longest accepted query string, in bytes (longer: 414 `QUERY_TOO_LONG`).
    pub max_query_bytes: usize,
    /// Longest accepted path, in bytes (longer: 414 `PATH_TOO_LONG`).
    pub max_path_bytes: usize,
    /// Most request headers (more: 431 `HEADERS_TOO_LARGE`). Each value of a repeated header counts.
    pub max_headers: usize,
    /// Largest total of request header names and values, in bytes (more: 431 `HEADERS_TOO_LARGE`).
    pub max_header_bytes: usize,
    /// Largest declared request body (`Content-Length`), in bytes (more: 413 `BODY_TOO_LARGE`). The API
    /// reads no request body; one without a declared length is never read either (hyper drains what has
    /// arrived and closes the connection).
    pub max_body_bytes: u64,
    /// Most long-polls (requests with `wait`) and event streams open at once; one more is answered
    /// `503 TOO_MANY_WAITS` with `Retry-After`. Keep it below `max_connections`, so that ordinary requests
    /// always find a connection.
    pub max_waits: usize,
    /// Interval of SSE keep-alive comments.
    pub sse_keep_alive: Duration,
    /// Longest time [`crate::serve_with`] waits for open connections after shutdown was requested
    /// ([`crate::serve`] uses [`crate::DEFAULT_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
    /// [`crate::serve_with`]: how long a client may take to send a request's headers, counted from the
    /// moment the server waits for them (a new connection, or a kept-alive one after its last response, so
    /// this is also the keep-alive idle timeout). hyper then closes the connection, without a response.
    pub header_read_timeout: Duration,
    /// [`crate::serve_with`]: most connections open at once. Further clients wait in the listen backlog
    /// (their connect succeeds; their request is read once a connection closes).
    pub max_connections: usize,
    /// Single-order lookups (`GET /v1/orders/{id}`, `GET /v1/payments/{id}`) kept in memory, at most this
    /// many, each valid until the watcher sees the next commit; 0: off. Only used while the watcher is woken
    /// by commits ([`crate::AppState::with_notifications`] or [`crate::AppState::with_commit_signals`]):
    /// meant for Postgres, where every read is a round trip. A read from memory may lag a commit by the
    /// watcher's wake-up (see the README, "Order cache").
    pub order_cache: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            escrows: Vec::new(),
            default_token: TokenInfo::default(),
            chain_names: BTreeMap::new(),
            max_wait: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(200),
            ready_max_lag_blocks: 64,
            ready_max_stall: Duration::from_secs(15),
            cors_origins: None,
            max_query_bytes: 2048,
            max_path_bytes: 1024,
            max_headers: 100,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024,
            max_waits: 256,
            sse_keep_alive: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 512,
            order_cache: 0,
        }
    }
}

impl ApiConfig {
    /// The token of an escrow.
    pub fn token(&self, chain_id: u64, escrow: Address) -> &TokenInfo {
        self.escrows
            .iter()
            .find(|e| e.chain_id == chain_id && e.escrow == escrow)
            .map_or(&self.default_token, |e| &e.token)
    }

    /// The name of a chain: configured, else built in, else `eip155:<id>`.
    pub fn chain_name(&self, chain_id: u64) -> String {
        self.chain_names.get(&chain_id).cloned().unwrap_or_else(|| chain_name(chain_id))
    }
}

/// Built-in chain names (`eip155:<id>` for others).
pub fn chain_name(chain_id: u64) -> String {
    match chain_id {
        1 => "ethereum",
        10 => "optimism",
        137 => "polygon",
        8453 => "base",
        42161 => "arbitrum",
        84532 => "base-sepolia",
        11155111 => "sepolia",
        31337 => "anvil",
        _ => return format!("eip155:{chain_id}"),
    }
    .to_string()
}
