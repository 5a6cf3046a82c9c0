//! The one error type of the API and its JSON envelope:
//! `{"error": {"code": "ORDER_NOT_FOUND", "message": "…", "retryable": false}}`.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// Stable, documented error codes. The HTTP status and `retryable` follow from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// 400: a malformed id, address, cursor or number, an unknown or repeated query parameter, or a value
    /// out of range. `details.field` names the offending parameter when there is one.
    ValidationError,
    /// 404: no such route, or a disabled feature (`/metrics` without a recorder).
    NotFound,
    /// 405: a method other than GET and HEAD (the API is read-only); `OPTIONS` only as a CORS preflight
    /// (with `Origin` and `Access-Control-Request-Method`). Sent with `Allow: GET, HEAD`.
    MethodNotAllowed,
    /// 404: no order with this id is indexed (for the given chain and escrow, if any).
    OrderNotFound,
    /// 404: the transaction is unknown or emitted no escrow event (also after a `wait` ran out). A server
    /// with a node to ask (`holdfast run`) answers at once, even with `wait`, when the transaction was mined
    /// without an escrow event in a block already indexed, and answers a failed one with `TX_FAILED`; a
    /// server without one (`holdfast serve`) cannot tell "failed" or "not for the escrow" from "not mined
    /// yet" and waits.
    TxNotFound,
    /// 408: `wait` ran out before the order or transaction reached the requested finality; `details`
    /// holds its current record: an OrderRecord for `GET /v1/orders/{orderId}`, a TransactionRecord for
    /// `GET /v1/transactions/{txHash}`. Repeat the request to keep waiting.
    WaitTimeout,
    /// 409: a transaction waited on (`wait` or `finality`) has no canonical event left: a reorg removed every
    /// escrow event it emitted, so it cannot reach any finality unless the chain includes it again. Answered
    /// as soon as it is seen, not when the wait runs out; `details` is its TransactionRecord (`status:
    /// "reverted"`). Not retryable: check the transaction with a node, and send it again if it was dropped.
    TxReverted,
    /// 409: the transaction was mined but failed (receipt status 0): a reverted call emits no escrow event,
    /// so it will never be indexed. Answered at once, with or without `wait`, by a server that has a node to
    /// ask (`holdfast run`, `holdfast serve --rpc-url`); `details`: `transactionHash`, `chainId`, `blockNumber`. Not retryable: fix the
    /// call and send a new transaction.
    TxFailed,
    /// 414: the query string is longer than the configured limit.
    QueryTooLong,
    /// 414: the path is longer than the configured limit.
    PathTooLong,
    /// 431: more request headers, or more header bytes, than the configured limits.
    HeadersTooLarge,
    /// 413: the declared request body is larger than the configured limit (the API reads no body).
    BodyTooLarge,
    /// 503: the request took longer than the server's request timeout.
    RequestTimeout,
    /// 503: the server is shutting down.
    ShuttingDown,
    /// 503: as many long-polls (`wait`) and event streams are open as the server allows; `Retry-After`
    /// says when to try again.
    TooManyWaits,
    /// 503 (`/readyz`): the indexer lags the chain head, the head stopped advancing, or the database is
    /// unreachable; `details` tells which.
    NotReady,
    /// 500: an unexpected server-side failure (logged, never detailed in the response).
    Internal,
}

impl ErrorCode {
    /// HTTP status of the code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::ValidationError => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::OrderNotFound | Self::TxNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::WaitTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TxReverted | Self::TxFailed => StatusCode::CONFLICT,
            Self::QueryTooLong | Self::PathTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout | Self::ShuttingDown | Self::TooManyWaits | Self::NotReady => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether repeating the same request may succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::WaitTimeout
                | Self::RequestTimeout
                | Self::ShuttingDown
                | Self::TooManyWaits
                | Self::NotReady
                | Self::Internal
        )
    }

    /// The `Retry-After` header (seconds) sent with the code: 1 for retryable codes, 5 when the server is
    /// full of waiters (so that rejected clients do not come back at once), none for `WAIT_TIMEOUT` (repeat
    /// at once to keep waiting) and for codes that are not retryable.
    pub fn retry_after(self) -> Option<&'static str> {
        match self {
            Self::TooManyWaits => Some("5"),
            Self::WaitTimeout => None,
            c if c.retryable() => Some("1"),
            _ => None,
        }
    }

    /// Stable name, as served.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "VALIDATION_ERROR",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::OrderNotFound => "ORDER_NOT_FOUND",
            Self::TxNotFound => "TX_NOT_FOUND",
            Self::WaitTimeout => "WAIT_TIMEOUT",
            Self::TxReverted => "TX_REVERTED",
            Self::TxFailed => "TX_FAILED",
            Self::QueryTooLong => "QUERY_TOO_LONG",
            Self::PathTooLong => "PATH_TOO_LONG",
            Self::HeadersTooLarge => "HEADERS_TOO_LARGE",
            Self::BodyTooLarge => "BODY_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::TooManyWaits => "TOO_MANY_WAITS",
            Self::NotReady => "NOT_READY",
            Self::Internal => "INTERNAL",
        }
    }

    /// Every code (for documentation and tests).
    pub const ALL: [Self; 17] = [
        Self::ValidationError,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::OrderNotFound,
        Self::TxNotFound,
        Self::WaitTimeout,
        Self::TxReverted,
        Self::TxFailed,
        Self::QueryTooLong,
        Self::PathTooLong,
        Self::HeadersTooLarge,
        Self::BodyTooLarge,
        Self::RequestTimeout,
        Self::ShuttingDown,
        Self::TooManyWaits,
        Self::NotReady,
        Self::Internal,
    ];
}

/// The error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The error inside the envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation (not stable; do not parse).
    pub message: String,
    /// Whether repeating the same request may succeed.
    pub retryable: bool,
    /// Code-specific details (`field` for validation errors, the current record for `WAIT_TIMEOUT` and
    /// `TX_REVERTED`, the readiness report for `NOT_READY`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input.
    #[error("{message}")]
    Validation {
        /// What is wrong.
        message: String,
        /// The offending parameter.
        field: Option<String>,
    },
    /// Unknown route or disabled feature.
    #[error("{0}")]
    NotFound(String),
    /// Wrong method.
    #[error("method not allowed: the API is read-only (GET, HEAD)")]
    MethodNotAllowed,
    /// Order not indexed.
    #[error("order {0} not found")]
    OrderNotFound(String),
    /// Transaction not indexed.
    #[error("transaction {0} not found (unknown, or it emitted no escrow event)")]
    TxNotFound(String),
    /// Long-poll ran out.
    #[error("{message}")]
    WaitTimeout {
        /// What was awaited.
        message: String,
        /// The current record.
        details: serde_json::Value,
    },
    /// A transaction waited on was removed by a reorg.
    #[error("{message}")]
    TxReverted {
        /// What happened.
        message: String,
        /// The transaction's record.
        details: serde_json::Value,
    },
    /// A transaction waited on failed on chain (receipt status 0).
    #[error("{message}")]
    TxFailed {
        /// What happened.
        message: String,
        /// `transactionHash`, `chainId`, `blockNumber`.
        details: serde_json::Value,
    },
    /// Query string too long.
    #[error("query string of {0} bytes exceeds the limit of {1}")]
    QueryTooLong(usize, usize),
    /// Path too long.
    #[error("path of {0} bytes exceeds the limit of {1}")]
    PathTooLong(usize, usize),
    /// Too many request headers, or too many header bytes.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Declared request body too large.
    #[error("request body of {0} bytes exceeds the limit of {1} (the API reads no request body)")]
    BodyTooLarge(u64, u64),
    /// Request timeout.
    #[error("request timed out after {0:?}")]
    RequestTimeout(std::time::Duration),
    /// Shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The cap on concurrent long-polls and event streams is reached.
    #[error("{0} long-polls and event streams are open, the most this server allows; retry later")]
    TooManyWaits(usize),
    /// Not ready.
    #[error("{message}")]
    NotReady {
        /// Why.
        message: String,
        /// The readiness report.
        details: serde_json::Value,
    },
    /// A store failure.
    #[error("store: {0}")]
    Store(#[from] holdfast_store::Error),
    /// Anything else unexpected.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A validation error about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { message: message.into(), field: Some(field.into()) }
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Validation { .. } => ErrorCode::ValidationError,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::OrderNotFound(_) => ErrorCode::OrderNotFound,
            Self::TxNotFound(_) => ErrorCode::TxNotFound,
            Self::WaitTimeout { .. } => ErrorCode::WaitTimeout,
            Self::TxReverted { .. } => ErrorCode::TxReverted,
            Self::TxFailed { .. } => ErrorCode::TxFailed,
            Self::QueryTooLong(..) => ErrorCode::QueryTooLong,
            Self::PathTooLong(..) => ErrorCode::PathTooLong,
            Self::HeadersTooLarge(_) => ErrorCode::HeadersTooLarge,
            Self::BodyTooLarge(..) => ErrorCode::BodyTooLarge,
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
            Self::TooManyWaits(_) => ErrorCode::TooManyWaits,
            Self::NotReady { .. } => ErrorCode::NotReady,
            Self::Store(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The envelope served for this error (internal details are logged, not served).
    pub fn envelope(&self) -> ErrorEnvelope {
        let code = self.code();
        let (message, details) = match self {
            Self::Store(_) | Self::Internal(_) => ("internal error".to_string(), None),
            Self::Validation { message, field } => {
                (message.clone(), field.as_ref().map(|f| serde_json::json!({ "field": f })))
            }
            Self::WaitTimeout { message, details }
            | Self::TxReverted { message, details }
            | Self::TxFailed { message, details }
            | Self::NotReady { message, details } => (message.clone(), Some(details.clone())),
            other => (other.to_string(), None),
        };
        ErrorEnvelope { error: ErrorBody { code, message, retryable: code.retryable(), details } }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = (code.status(), axum::Json(self.envelope())).into_response();
        let headers = resp.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = code.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(secs));
        }
        if code == ErrorCode::MethodNotAllowed {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        resp
    }
}

/// Result with [`ApiError`].
pub type ApiResult<T> = std::result::Result<T, ApiError>;
