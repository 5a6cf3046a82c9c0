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
    /// 405: the route exists but not for this method (the API is read-only: GET and HEAD).
    MethodNotAllowed,
    /// 404: no order with this id is indexed (for the given chain and escrow, if any).
    OrderNotFound,
    /// 404: the transaction is unknown or emitted no escrow event (also after a `wait` ran out).
    TxNotFound,
    /// 408: `wait` ran out before the transaction reached the requested finality; `details` holds its
    /// current record. Repeat the request to keep waiting.
    WaitTimeout,
    /// 414: the query string is longer than the configured limit.
    QueryTooLong,
    /// 503: the request took longer than the server's request timeout.
    RequestTimeout,
    /// 503: the server is shutting down.
    ShuttingDown,
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
            Self::QueryTooLong => StatusCode::URI_TOO_LONG,
            Self::RequestTimeout | Self::ShuttingDown | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether repeating the same request may succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Self::WaitTimeout | Self::RequestTimeout | Self::ShuttingDown | Self::NotReady | Self::Internal
        )
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
            Self::QueryTooLong => "QUERY_TOO_LONG",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::NotReady => "NOT_READY",
            Self::Internal => "INTERNAL",
        }
    }

    /// Every code (for documentation and tests).
    pub const ALL: [Self; 11] = [
        Self::ValidationError,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::OrderNotFound,
        Self::TxNotFound,
        Self::WaitTimeout,
        Self::QueryTooLong,
        Self::RequestTimeout,
        Self::ShuttingDown,
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
    /// Code-specific details (`field` for validation errors, the current record for `WAIT_TIMEOUT`, the
    /// readiness report for `NOT_READY`).
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
    /// Query string too long.
    #[error("query string of {0} bytes exceeds the limit of {1}")]
    QueryTooLong(usize, usize),
    /// Request timeout.
    #[error("request timed out after {0:?}")]
    RequestTimeout(std::time::Duration),
    /// Shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
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
            Self::QueryTooLong(..) => ErrorCode::QueryTooLong,
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
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
            Self::WaitTimeout { message, details } | Self::NotReady { message, details } => {
                (message.clone(), Some(details.clone()))
            }
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
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if code.retryable() && code != ErrorCode::WaitTimeout {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Result with [`ApiError`].
pub type ApiResult<T> = std::result::Result<T, ApiError>;
