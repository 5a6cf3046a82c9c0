//! RPC retries as transport layers: alloy's [`RetryBackoffLayer`] runs the retry loop, our
//! [`HoldfastRetryPolicy`] decides which failures are retried and how long to wait, and
//! [`AttemptTimeoutLayer`] (under the retry layer) bounds every attempt.
//!
//! What is retried depends on the call ([`Retries`]): a refused or timed-out `eth_getLogs` range goes back
//! to the caller at once, which splits it (`Chain::logs`); a call pinned to a block hash is never retried.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    rpc::json_rpc::{ErrorPayload, RequestPacket, ResponsePacket},
    transports::{
        HttpError, RpcError, TransportError, TransportErrorKind, TransportFut,
        layers::{RateLimitRetryPolicy, RetryBackoffLayer, RetryPolicy},
    },
};
use rand::Rng;

use crate::{config::RetryConfig, metrics};

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

/// Which failures a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// Ordinary calls: transport faults, rate limits, and refusals and timeouts too (nothing smaller can be
    /// asked for; a retry may reach a less loaded node).
    All,
    /// `eth_getLogs` over a range of blocks: transport faults and rate limits; a refusal or timeout
    /// ([`FaultKind::TooLarge`]) is handed to the caller at once, which splits the range.
    LogRange,
    /// Calls pinned to a block hash: no retry. After a reorg the node may no longer know the block, and
    /// retrying would only stall the caller (which falls back to a full step).
    None,
}

impl Retries {
    /// Whether a failure of `kind` is retried.
    pub fn retries(self, kind: FaultKind) -> bool {
        match (self, kind) {
            (Self::None, _) | (_, FaultKind::Fatal) => false,
            (Self::LogRange, FaultKind::TooLarge) => false,
            (
                Self::All | Self::LogRange,
                FaultKind::RateLimited | FaultKind::Transport | FaultKind::TooLarge,
            ) => true,
        }
    }
}

/// Our [`RetryPolicy`] for alloy's [`RetryBackoffLayer`]: which failures are retried ([`classify`],
/// [`Retries`]), at most [`RetryConfig::max_attempts`] attempts per request, and exponential backoff with
/// jitter between them (or the node's own hint).
///
/// Why the policy keeps the attempt count: the layer (alloy 1.8) waits a constant `initial_backoff` unless
/// the policy gives a hint, and when its own retry cap is hit it replaces the error by a string ("Max
/// retries exceeded ..."), losing the typed error the caller classifies. So the policy counts the failures
/// of its request, stops first (the layer then returns the original error), and always gives the delay as
/// the hint. The layer clones its service, and with it the policy, for every request; [`Clone`] therefore
/// starts a fresh count (pinned by the `budget_is_per_request` test).
#[derive(Debug)]
pub struct HoldfastRetryPolicy {
    retries: Retries,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    /// Failed attempts of the request this clone serves.
    failures: AtomicU32,
}

impl Clone for HoldfastRetryPolicy {
    fn clone(&self) -> Self {
        Self { failures: AtomicU32::new(0), ..*self }
    }
}

impl HoldfastRetryPolicy {
    /// A policy from the retry configuration.
    pub fn new(cfg: &RetryConfig, retries: Retries) -> Self {
        Self {
            retries,
            max_attempts: cfg.max_attempts,
            initial_backoff: cfg.initial_backoff,
            max_backoff: cfg.max_backoff,
            failures: AtomicU32::new(0),
        }
    }

    /// alloy's retry layer with this policy.
    pub fn layer(self) -> RetryBackoffLayer<Self> {
        let initial_ms = u64::try_from(self.initial_backoff.as_millis()).unwrap_or(u64::MAX);
        // The layer's own cap is a backstop only: the policy stops after `max_attempts` attempts, one
        // retry before the cap. No compute-unit budget (`u64::MAX` per second): the node says when it is
        // rate limited.
        RetryBackoffLayer::new_with_policy(self.max_attempts, initial_ms, u64::MAX, self)
    }

    /// Delay before the retry that follows failure number `failures`: doubled per failure from the
    /// initial backoff, capped, with jitter (so concurrent requests that failed together do not retry
    /// together).
    fn backoff(&self, failures: u32) -> Duration {
        let base = self.initial_backoff.saturating_mul(1u32 << failures.min(16));
        let capped = base.min(self.max_backoff);
        capped.mul_f64(rand::rng().random_range(0.5..1.0))
    }
}

impl RetryPolicy for HoldfastRetryPolicy {
    fn should_retry(&self, error: &TransportError) -> bool {
        let kind = classify(error);
        // Every failed attempt is counted, retried or not.
        metrics::rpc_error(kind.as_str());
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        self.retries.retries(kind) && failures < self.max_attempts
    }

    fn backoff_hint(&self, error: &TransportError) -> Option<Duration> {
        let failures = self.failures.load(Ordering::Relaxed);
        // The node's own hint (Infura's `backoff_seconds`, "try again in 4ms"; alloy parses them), within
        // our cap: a misbehaving node cannot park the indexer for longer than `max_backoff` per attempt.
        let delay = match RateLimitRetryPolicy::default().backoff_hint(error) {
            Some(hint) => hint.min(self.max_backoff),
            None => self.backoff(failures),
        };
        tracing::debug!(kind = classify(error).as_str(), %error, attempt = failures,
            delay_ms = delay.as_millis() as u64, "rpc call failed; retrying");
        Some(delay)
    }
}

/// Classify an RPC failure: by error variant, HTTP status and JSON-RPC error code first; by message text
/// only where those say nothing (see [`classify_payload`]).
pub fn classify(err: &TransportError) -> FaultKind {
    match err {
        RpcError::ErrorResp(payload) => classify_payload(payload),
        RpcError::Transport(kind) => classify_transport(kind),
        // A 200 response that is not a JSON-RPC response for us: some nodes send an error object without
        // `id`, which still carries a code; anything else (an HTML page of a proxy, a bare string) carries
        // nothing but its text.
        RpcError::DeserError { text, .. } => match embedded_payload(text) {
            Some(payload) => classify_payload(&payload),
            None => {
                let text = text.to_ascii_lowercase();
                if is_rate_limit_text(&text) {
                    FaultKind::RateLimited
                } else if is_too_large_text(&text) {
                    FaultKind::TooLarge
                } else {
                    FaultKind::Transport
                }
            }
        },
        // No response where one was due: the node or a load balancer in front of it hiccuped.
        RpcError::NullResp => FaultKind::Transport,
        // Our own request could not be serialized, or the call is unsupported: the same again next time.
        _ => FaultKind::Fatal,
    }
}

fn classify_transport(kind: &TransportErrorKind) -> FaultKind {
    match kind {
        TransportErrorKind::HttpError(h) => classify_http(h),
        TransportErrorKind::Custom(e) => {
            if e.downcast_ref::<AttemptTimedOut>().is_some()
                || e.downcast_ref::<crate::capped_http::ResponseTooLarge>().is_some()
            {
                return FaultKind::TooLarge;
            }
            if let Some(e) = e.downcast_ref::<alloy::transports::http::reqwest::Error>() {
                return if e.is_timeout() { FaultKind::TooLarge } else { FaultKind::Transport };
            }
            // Connection refused or dropped, a websocket error.
            FaultKind::Transport
        }
        TransportErrorKind::MissingBatchResponse(_) => FaultKind::Transport,
        // The websocket's connection task has ended: alloy's pubsub service reconnects by itself and stops
        // only when its own reconnects failed. Every retry would fail at once.
        TransportErrorKind::BackendGone => FaultKind::Fatal,
        TransportErrorKind::PubsubUnavailable => FaultKind::Fatal,
        _ => FaultKind::Transport,
    }
}

fn classify_http(h: &HttpError) -> FaultKind {
    match h.status {
        429 => return FaultKind::RateLimited,
        413 => return FaultKind::TooLarge,
        _ => {}
    }
    // alloy's http transport keeps a non-2xx body as text; some nodes put a JSON-RPC error in it (a result
    // cap answered with 400, say), whose code says more than the status.
    let by_payload = embedded_payload(&h.body).map(|p| classify_payload(&p));
    match (by_payload, h.status) {
        (Some(kind), _) if kind != FaultKind::Fatal => kind,
        // Server trouble, a gateway or request timeout: transient.
        (_, 408 | 500..=599) => FaultKind::Transport,
        // Unauthorized, forbidden, not found, bad request: the same again next time.
        _ => FaultKind::Fatal,
    }
}

/// A JSON-RPC error object in a response text (`{"error": {...}}`, with or without an `id`, or the bare
/// error object).
fn embedded_payload(text: &str) -> Option<ErrorPayload> {
    #[derive(serde::Deserialize)]
    struct Response {
        error: ErrorPayload,
    }
    serde_json::from_str::<Response>(text)
        .map(|r| r.error)
        .or_else(|_| serde_json::from_str::<ErrorPayload>(text))
        .ok()
}

/// Classify a JSON-RPC error object.
///
/// Codes first: 429, and the rate-limit codes of the common providers (alloy's list:
/// [`ErrorPayload::is_retry_err`]). The message is read where the code is ambiguous or generic:
/// - `-32005` (EIP-1474 "limit exceeded") is a result cap at some nodes ("query returned more than 10000
///   results") and a rate limit at others (Infura: "project ID request rate exceeded", with `data.rate`);
/// - a refused log range has no code of its own anywhere: Alchemy answers `-32602` (invalid params)
///   "log response size exceeded", QuickNode `-32614`, geth-likes `-32000` "query timeout exceeded";
/// - `-32000` (geth's catch-all server error) and `-32603` (internal error) are transient at real
///   providers ("header not found" behind a load balancer), unless the message says otherwise.
pub fn classify_payload(payload: &ErrorPayload) -> FaultKind {
    let msg = payload.message.to_ascii_lowercase();
    let rate_data = payload
        .try_data_as::<serde_json::Value>()
        .and_then(Result::ok)
        .is_some_and(|d| d.get("rate").is_some());
    match payload.code {
        429 => return FaultKind::RateLimited,
        -32005 if rate_data || is_rate_limit_text(&msg) => return FaultKind::RateLimited,
        -32005 => return FaultKind::TooLarge,
        -32016 | -32012 | -32007 | -32055 | 1008 if payload.is_retry_err() => return FaultKind::RateLimited,
        _ => {}
    }
    if rate_data || is_rate_limit_text(&msg) {
        FaultKind::RateLimited
    } else if is_too_large_text(&msg) {
        FaultKind::TooLarge
    } else if matches!(payload.code, -32000 | -32603) {
        FaultKind::Transport
    } else {
        FaultKind::Fatal
    }
}

fn is_rate_limit_text(msg: &str) -> bool {
    ["rate limit", "rate exceeded", "too many requests", "request limit", "credits limited"]
        .iter()
        .any(|p| msg.contains(p))
}

fn is_too_large_text(msg: &str) -> bool {
    [
        "more than",
        "too many",
        "limit exceeded",
        "range",
        "too large",
        "response size",
        "query timeout",
        "exceed",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

/// An attempt that got no answer within [`RetryConfig::request_timeout`] (classified
/// [`FaultKind::TooLarge`]: a node that cannot answer in time is most often asked too much at once).
#[derive(Debug, thiserror::Error)]
#[error("{method} timed out after {after:?}")]
pub struct AttemptTimedOut {
    /// The JSON-RPC method.
    pub method: String,
    /// The timeout.
    pub after: Duration,
}

/// A timeout on every attempt, under the retry layer.
///
/// Ours because alloy has none: the retry layer never gives up on an attempt that hangs, and the
/// websocket transport has no request timeout (reqwest's would cover http only). Under the retry layer a
/// hung attempt is one failure, retried (or split) like any other.
#[derive(Debug, Clone, Copy)]
pub struct AttemptTimeoutLayer {
    timeout: Duration,
}

impl AttemptTimeoutLayer {
    /// Every attempt gets at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> tower::Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout { inner, timeout: self.timeout }
    }
}

/// The service of [`AttemptTimeoutLayer`].
#[derive(Debug, Clone)]
pub struct AttemptTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<RequestPacket> for AttemptTimeout<S>
where
    S: tower::Service<
            RequestPacket,
            Response = ResponsePacket,
            Error = TransportError,
            Future = TransportFut<'static>,
        >,
{
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let method = req.method_names().next().unwrap_or("batch").to_owned();
        let after = self.timeout;
        let attempt = self.inner.call(req);
        Box::pin(async move {
            tokio::time::timeout(after, attempt)
                .await
                .unwrap_or_else(|_| Err(TransportErrorKind::custom(AttemptTimedOut { method, after })))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use alloy::rpc::json_rpc::{Id, Request};
    use tower::{Layer, Service, ServiceExt};

    use super::*;

    fn payload(code: i64, message: &'static str) -> TransportError {
        RpcError::ErrorResp(ErrorPayload { code, message: message.into(), data: None })
    }

    fn http(status: u16, body: &str) -> TransportError {
        TransportErrorKind::http_error(status, body.into())
    }

    fn timed_out() -> TransportError {
        TransportErrorKind::custom(AttemptTimedOut { method: "eth_getLogs".into(), after: Duration::ZERO })
    }

    #[test]
    fn classification_by_code_status_and_variant() {
        let infura_rate = RpcError::ErrorResp(ErrorPayload {
            code: -32005,
            message: "project ID request rate exceeded".into(),
            data: Some(
                serde_json::value::to_raw_value(&serde_json::json!({"rate": {"backoff_seconds": 1}}))
                    .unwrap(),
            ),
        });
        let cases = [
            // The result cap of the fault drill and of geth-likes.
            (payload(-32005, "query returned more than 10000 results"), FaultKind::TooLarge),
            // The same code as Infura's rate limit.
            (infura_rate, FaultKind::RateLimited),
            (payload(429, "Too Many Requests"), FaultKind::RateLimited),
            (payload(-32016, "over rate limit"), FaultKind::RateLimited),
            (
                payload(
                    -32602,
                    "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range",
                ),
                FaultKind::TooLarge,
            ),
            (payload(-32000, "header not found"), FaultKind::Transport),
            (payload(-32603, "internal error"), FaultKind::Transport),
            (payload(-32601, "the method eth_foo does not exist"), FaultKind::Fatal),
            (payload(3, "execution reverted"), FaultKind::Fatal),
            (http(429, r#"{"error":"rate limited"}"#), FaultKind::RateLimited),
            (http(500, "upstream exploded"), FaultKind::Transport),
            (http(503, ""), FaultKind::Transport),
            (http(413, ""), FaultKind::TooLarge),
            (
                http(
                    400,
                    r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"query returned more than 10000 results"}}"#,
                ),
                FaultKind::TooLarge,
            ),
            (http(401, "unauthorized"), FaultKind::Fatal),
            (timed_out(), FaultKind::TooLarge),
            (TransportErrorKind::custom_str("connection reset by peer"), FaultKind::Transport),
            (TransportErrorKind::backend_gone(), FaultKind::Fatal),
            (RpcError::NullResp, FaultKind::Transport),
            (
                TransportError::deser_err(
                    serde_json::from_str::<u8>("x").unwrap_err(),
                    "<html>bad gateway</html>",
                ),
                FaultKind::Transport,
            ),
            (
                TransportError::deser_err(
                    serde_json::from_str::<u8>("x").unwrap_err(),
                    r#"{"error":{"code":-32005,"message":"limit exceeded"}}"#,
                ),
                FaultKind::TooLarge,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(classify(&err), kind, "{err}");
        }
    }

    /// The decision that lets `Chain::logs` split: over a range, a refusal or timeout is handed back at
    /// once (one attempt), while transport faults and rate limits are retried; ordinary calls retry all
    /// three; calls pinned to a block hash retry nothing; a fatal answer is never retried.
    #[test]
    fn what_each_client_retries() {
        let cfg = RetryConfig::default();
        let refusals =
            [payload(-32005, "query returned more than 10000 results"), http(413, ""), timed_out()];
        let transient = [
            http(429, ""),
            http(500, ""),
            payload(-32005, "daily request count exceeded, request rate limited"),
            TransportErrorKind::custom_str("connection closed before message completed"),
        ];
        let fatal =
            [payload(-32602, "invalid argument 0: hex string without 0x prefix"), http(403, "forbidden")];
        let retried =
            |retries, err: &TransportError| HoldfastRetryPolicy::new(&cfg, retries).should_retry(err);
        for err in &refusals {
            assert!(!retried(Retries::LogRange, err), "a range is split at once on {err}");
            assert!(retried(Retries::All, err), "an ordinary call retries {err}");
        }
        for err in &transient {
            assert!(retried(Retries::LogRange, err), "{err}");
            assert!(retried(Retries::All, err), "{err}");
        }
        for err in refusals.iter().chain(&transient).chain(&fatal) {
            assert!(!retried(Retries::None, err), "pinned calls are not retried: {err}");
        }
        for err in &fatal {
            assert!(!retried(Retries::All, err), "{err}");
            assert!(!retried(Retries::LogRange, err), "{err}");
        }
    }

    #[test]
    fn node_hints_are_used_within_the_cap() {
        let cfg = RetryConfig { max_backoff: Duration::from_secs(5), ..RetryConfig::default() };
        let policy = HoldfastRetryPolicy::new(&cfg, Retries::All);
        let hinted = payload(-32005, "rate limited, try again in 40ms");
        assert!(policy.should_retry(&hinted));
        assert_eq!(policy.backoff_hint(&hinted), Some(Duration::from_millis(40)));
        let long = payload(-32005, "rate limited, try again in 600s");
        assert_eq!(policy.backoff_hint(&long), Some(Duration::from_secs(5)));
    }

    fn request(method: &'static str) -> RequestPacket {
        Request::new(method, Id::Number(1), ()).serialize().unwrap().into()
    }

    /// A node that fails the first `failures` attempts with `err`, then answers; counts attempts.
    fn node(
        failures: u32,
        err: fn() -> TransportError,
        attempts: Arc<AtomicU32>,
    ) -> impl Service<
        RequestPacket,
        Response = ResponsePacket,
        Error = TransportError,
        Future = TransportFut<'static>,
    > + Clone
    + Send
    + Sync
    + 'static {
        tower::service_fn(move |_req: RequestPacket| {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move {
                if n <= failures {
                    Err(err())
                } else {
                    Ok(serde_json::from_str(r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#).unwrap())
                }
            }) as TransportFut<'static>
        })
    }

    fn stack<S>(
        retries: Retries,
        max_attempts: u32,
        inner: S,
    ) -> impl Service<RequestPacket, Response = ResponsePacket, Error = TransportError>
    where
        S: Service<
                RequestPacket,
                Response = ResponsePacket,
                Error = TransportError,
                Future = TransportFut<'static>,
            > + Clone
            + Send
            + Sync
            + 'static,
    {
        let cfg = RetryConfig {
            max_attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(1),
            max_response_bytes: crate::config::DEFAULT_MAX_RESPONSE_BYTES,
        };
        let timeouts = AttemptTimeoutLayer::new(cfg.request_timeout).layer(inner);
        HoldfastRetryPolicy::new(&cfg, retries).layer().layer(timeouts)
    }

    /// Through alloy's layer: every request gets `max_attempts` attempts of its own (the layer clones
    /// the policy per request), and the error after the last one is the node's, not alloy's "Max retries
    /// exceeded" string.
    #[tokio::test(start_paused = true)]
    async fn budget_is_per_request() {
        let attempts = Arc::new(AtomicU32::new(0));
        let mut svc = stack(Retries::All, 3, node(u32::MAX, || http(500, "down"), attempts.clone()));
        for round in 1..=2 {
            let err = svc.ready().await.unwrap().call(request("eth_blockNumber")).await.unwrap_err();
            assert!(
                matches!(&err, RpcError::Transport(TransportErrorKind::HttpError(h)) if h.status == 500),
                "{err}"
            );
            assert_eq!(attempts.load(Ordering::SeqCst), 3 * round);
        }

        // Exponential backoff with jitter: 20 ms × [0.5, 1) then 40 ms × [0.5, 1) before the third attempt.
        let attempts = Arc::new(AtomicU32::new(0));
        let mut svc = stack(Retries::All, 3, node(2, || http(429, ""), attempts.clone()));
        let started = tokio::time::Instant::now();
        svc.ready().await.unwrap().call(request("eth_blockNumber")).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(waited >= Duration::from_millis(30) && waited < Duration::from_millis(60), "{waited:?}");
    }

    /// A hung attempt times out and is retried as an ordinary call, or handed back at once over a log
    /// range (to be split).
    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_times_out() {
        let hang = |attempts: Arc<AtomicU32>| {
            tower::service_fn(move |_req: RequestPacket| {
                attempts.fetch_add(1, Ordering::SeqCst);
                Box::pin(std::future::pending()) as TransportFut<'static>
            })
        };
        let attempts = Arc::new(AtomicU32::new(0));
        let err = stack(Retries::LogRange, 5, hang(attempts.clone()))
            .oneshot(request("eth_getLogs"))
            .await
            .unwrap_err();
        let timed_out = match &err {
            RpcError::Transport(TransportErrorKind::Custom(e)) => e.downcast_ref::<AttemptTimedOut>(),
            _ => None,
        };
        assert_eq!(timed_out.map(|t| t.method.as_str()), Some("eth_getLogs"), "{err}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "handed back at once");

        let attempts = Arc::new(AtomicU32::new(0));
        stack(Retries::All, 5, hang(attempts.clone())).oneshot(request("eth_blockNumber")).await.unwrap_err();
        assert_eq!(attempts.load(Ordering::SeqCst), 5);
    }
}
