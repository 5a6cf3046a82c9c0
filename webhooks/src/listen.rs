//! A developer's webhook receiver: verifies deliveries and reports each one.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use standardwebhooks::Webhook;

use crate::secret::{HEADER_ID, HEADER_TIMESTAMP, validate_secret};
use crate::{Error, Result};

/// One delivery the receiver got.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The `webhook-id` header, if present.
    pub id: Option<String>,
    /// The `webhook-timestamp` header (Unix seconds), if present and an integer.
    pub timestamp: Option<i64>,
    /// Whether the signature and the timestamp (within five minutes of now) verified.
    pub verified: bool,
    /// Why verification failed.
    pub error: Option<String>,
    /// The body.
    pub body: ReceivedBody,
}

/// A received body: JSON when it parses, else the text as received.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceivedBody {
    /// The body parsed as JSON.
    Json(Value),
    /// The body is not JSON (lossily decoded as UTF-8).
    Raw(String),
}

struct Receiver {
    webhook: Webhook,
    on_delivery: Box<dyn Fn(Received) + Send + Sync>,
}

/// Serves `listener` until `shutdown` completes: every POST, on any path, is verified against `secret`
/// with the Standard Webhooks library (signature and timestamp tolerance) and answered 204 when it
/// verifies, 400 with `{"error": "…"}` when not; `on_delivery` is called for both. Other methods get 405.
///
/// Fails at once if `secret` is malformed, or later if the server fails.
pub async fn listen<F, S>(
    listener: tokio::net::TcpListener,
    secret: &str,
    on_delivery: F,
    shutdown: S,
) -> Result<()>
where
    F: Fn(Received) + Send + Sync + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    validate_secret(secret)?;
    let webhook = Webhook::new(secret).map_err(|e| Error::Secret(crate::SecretError::Rejected(e)))?;
    let receiver = Arc::new(Receiver { webhook, on_delivery: Box::new(on_delivery) });
    let router = Router::new().fallback(receive).with_state(receiver);
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(Error::Serve)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({"error": "webhooks are POSTed"})))
            .into_response();
    }
    let verdict = receiver.webhook.verify(&body, &headers);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let received = Received {
        id: header(HEADER_ID).map(str::to_owned),
        timestamp: header(HEADER_TIMESTAMP).and_then(|t| t.parse().ok()),
        verified: verdict.is_ok(),
        error: verdict.as_ref().err().map(ToString::to_string),
        body: match serde_json::from_slice(&body) {
            Ok(value) => ReceivedBody::Json(value),
            Err(_) => ReceivedBody::Raw(String::from_utf8_lossy(&body).into_owned()),
        },
    };
    let response = match &received.error {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(error) => (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error }))).into_response(),
    };
    tracing::debug!(id = received.id.as_deref(), verified = received.verified, "webhook received");
    (receiver.on_delivery)(received);
    response
}

/// One human line for a delivery, e.g.
/// `✔ msg_2b… order.updated 0xe7f1…0512:0x0000…002a  status=released  block 123`, from the change
/// record's `type`, `escrow`, `orderId`, `order.status` and `blockNumber` (each left out when missing);
/// a failed verification shows `✘` and the reason.
pub fn describe(received: &Received) -> String {
    let mut line = String::from(if received.verified { "✔" } else { "✘" });
    line.push(' ');
    line.push_str(received.id.as_deref().unwrap_or("(no id)"));
    match &received.body {
        ReceivedBody::Json(body) => {
            let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
            if let Some(kind) = text("/type") {
                line.push(' ');
                line.push_str(kind);
            }
            match (text("/escrow"), text("/orderId")) {
                (Some(escrow), Some(order)) => line.push_str(&format!(" {}:{}", short(escrow), short(order))),
                (None, Some(order)) => line.push_str(&format!(" {}", short(order))),
                (Some(escrow), None) => line.push_str(&format!(" {}", short(escrow))),
                (None, None) => {}
            }
            if let Some(status) = text("/order/status") {
                line.push_str(&format!("  status={status}"));
            }
            if let Some(block) = body.get("blockNumber").filter(|b| !b.is_null()) {
                line.push_str(&format!("  block {block}"));
            }
        }
        ReceivedBody::Raw(raw) => line.push_str(&format!("  (not JSON, {} bytes)", raw.len())),
    }
    if let Some(error) = &received.error {
        line.push_str(&format!("  [{error}]"));
    }
    line
}

/// `0x1234…cdef` for long hex strings, the string itself otherwise.
fn short(hex: &str) -> String {
    match (hex.get(..6), hex.get(hex.len().saturating_sub(4)..)) {
        (Some(head), Some(tail)) if hex.len() > 13 && hex.is_ascii() => format!("{head}…{tail}"),
        _ => hex.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(verified: bool, body: ReceivedBody) -> Received {
        Received {
            id: Some("msg_1".into()),
            timestamp: Some(1),
            verified,
            error: (!verified).then(|| "signature invalid".into()),
            body,
        }
    }

    #[test]
    fn describe_renders_a_change_record() {
        let body = json!({
            "seq": 7, "type": "order.updated", "chainId": 31337,
            "escrow": "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
            "orderId": "0x000000000000000000000000000000000000000000000000000000000000002a",
            "blockNumber": 123, "order": {"status": "released"}
        });
        assert_eq!(
            describe(&received(true, ReceivedBody::Json(body))),
            "✔ msg_1 order.updated 0xe7f1…0512:0x0000…002a  status=released  block 123"
        );
    }

    #[test]
    fn describe_is_lenient_and_shows_failures() {
        let retracted =
            json!({"type": "order.retracted", "orderId": "0x2a", "blockNumber": 9, "order": null});
        assert_eq!(
            describe(&received(false, ReceivedBody::Json(retracted))),
            "✘ msg_1 order.retracted 0x2a  block 9  [signature invalid]"
        );
        assert_eq!(describe(&received(true, ReceivedBody::Json(json!([1, 2])))), "✔ msg_1");
        let mut raw = received(false, ReceivedBody::Raw("hello".into()));
        raw.id = None;
        assert_eq!(describe(&raw), "✘ (no id)  (not JSON, 5 bytes)  [signature invalid]");
    }
}
