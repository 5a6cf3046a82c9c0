//! Test harness: the indexer's (a real anvil per test, contracts from forge's artifacts, a fresh SQLite file
//! or Postgres database per store — shared, not copied) plus helpers to call the router.

#[path = "../../../indexer/tests/it/harness.rs"]
mod chain;

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, Request, StatusCode},
};
pub use chain::*;
use holdfast_api::{ApiConfig, AppState, EscrowInfo, TokenInfo};
use holdfast_store::Store;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The API over `store` for `chain` (token configured as MockUSDC), with its router.
/// No indexer runs here to confirm the head every 2 s, so the default config gives readiness an hour
/// rather than the production 15 s (tests that check staleness pass their own config).
pub fn app(chain: &Chain, store: &Store, cfg: Option<ApiConfig>) -> AppState {
    let mut cfg =
        cfg.unwrap_or(ApiConfig { ready_max_stall: Duration::from_secs(3600), ..ApiConfig::default() });
    cfg.escrows = vec![EscrowInfo {
        chain_id: 31337,
        escrow: chain.escrow,
        token: TokenInfo { address: Some(chain.token), symbol: "USDC".into(), decimals: 6 },
    }];
    cfg.poll_interval = Duration::from_millis(50);
    AppState::new(store.clone(), cfg)
}

/// A response, its body parsed as JSON (`Null` if empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

/// GET `uri` with extra headers.
pub async fn get_with(router: &Router, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

/// GET `uri`.
pub async fn get(router: &Router, uri: &str) -> Reply {
    get_with(router, uri, &[]).await
}

/// Send any request.
pub async fn send(router: &Router, req: Request<Body>) -> Reply {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply { status, headers, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null), text }
}

/// Assert an error envelope with `code` and `status`.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.text);
    assert_eq!(r.json["error"]["code"], code, "body: {}", r.text);
    assert!(r.json["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {}", r.text);
    assert!(r.json["error"]["retryable"].is_boolean(), "body: {}", r.text);
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// An open SSE response body, parsed event by event.
pub struct SseStream {
    body: Body,
    buf: String,
}

impl SseStream {
    /// Open `uri` as a stream (asserting 200 and the content type).
    pub async fn open(router: &Router, uri: &str, headers: &[(&str, &str)]) -> Self {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Self { body: resp.into_body(), buf: String::new() }
    }

    /// The next event (keep-alive comments skipped), or `None` after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() && id.is_none() {
                    continue; // a comment (keep-alive)
                }
                return Some(Sse { event, id, data: serde_json::from_str(&data).unwrap_or(Value::Null) });
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await.ok()??.ok()?;
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    /// Skip events until one satisfies `pred` (panics after `within`).
    pub async fn until(&mut self, within: Duration, what: &str, pred: impl Fn(&Sse) -> bool) -> Sse {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("no {what} within {within:?}"),
            }
        }
    }
}

/// The API's node for transaction lookups, as `holdfast run` plugs in its own (`cli/src/node_lookup.rs`):
/// the receipt from anvil.
pub struct TestNode(pub alloy::providers::DynProvider);

impl holdfast_api::TxLookup for TestNode {
    fn chain_id(&self) -> u64 {
        31337
    }

    fn lookup(
        &self,
        tx: alloy::primitives::B256,
    ) -> futures::future::BoxFuture<'_, Result<holdfast_api::NodeTx, holdfast_api::LookupError>> {
        use alloy::providers::Provider;
        Box::pin(async move {
            Ok(match self.0.get_transaction_receipt(tx).await? {
                None => holdfast_api::NodeTx::NotMined,
                Some(r) if r.status() => {
                    holdfast_api::NodeTx::Succeeded { block: r.block_number.unwrap_or_default() }
                }
                Some(r) => holdfast_api::NodeTx::Failed { block: r.block_number.unwrap_or_default() },
            })
        })
    }
}
