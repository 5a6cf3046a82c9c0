//! Holdfast read API: orders, payments, event histories and transactions from the indexer's store, a
//! resumable Server-Sent Events change feed with reorg retractions, long-polling until a finality, health,
//! readiness, metrics, and an OpenAPI document with a self-contained docs page.
//!
//! ```no_run
//! # async fn run(store: holdfast_store::Store) -> std::io::Result<()> {
//! use holdfast_api::{ApiConfig, AppState, router, serve_with};
//! let config = ApiConfig::default();
//! let state = AppState::new(store, config.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let shutdown = { let s = state.clone(); async move { let _ = tokio::signal::ctrl_c().await; s.shutdown(); } };
//! serve_with(listener, router(state.clone()), shutdown, &config).await
//! # }
//! ```
//!
//! The library reads no environment: the caller builds [`ApiConfig`] (token symbol and decimals per escrow,
//! limits, timeouts) and, when the indexer runs in the same process, passes its notifications with
//! [`AppState::with_notifications`].

use std::{future::Future, time::Duration};

use axum::{
    Router,
    http::{HeaderName, HeaderValue, Method, header},
    middleware::{self, Next},
    routing::get,
};
use tower_http::{
    compression::{
        CompressionLayer,
        predicate::{NotForContentType, Predicate, SizeAbove},
    },
    cors::{AllowOrigin, Any, CorsLayer},
};

mod cache;
pub mod config;
pub mod docs;
pub mod error;
pub mod format;
mod http;
pub mod ledger;
pub mod model;
mod ops;
pub mod routes;
mod server;
pub mod state;
pub mod stream;

pub use config::{ApiConfig, EscrowInfo, TokenInfo};
pub use error::{ApiError, ErrorCode};
pub use server::serve_with;
pub use state::{AppState, LookupError, NodeTx, TxLookup};

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Responses smaller than this are sent uncompressed: gzip costs more CPU than a single record (1–2 KB)
/// saves on the wire. Lists, the OpenAPI document and the docs page are larger.
pub const COMPRESS_ABOVE_BYTES: u16 = 2048;

/// tower-http's default predicate (not gRPC, images or Server-Sent Events) with a larger size threshold.
fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(
        SizeAbove::new(COMPRESS_ABOVE_BYTES)
            .and(NotForContentType::GRPC)
            .and(NotForContentType::IMAGES)
            .and(NotForContentType::SSE),
    )
}

fn cors(origins: Option<&[String]>) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER])
        .max_age(Duration::from_secs(3600));
    match origins {
        None => layer.allow_origin(Any),
        Some(list) => {
            layer.allow_origin(AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())))
        }
    }
}

/// The API's routes with every layer (CORS, compression, timeouts, request limits, metrics). Starts the
/// state's watcher, so it must be called inside a Tokio runtime.
pub fn router(state: AppState) -> Router {
    state.start();
    let cfg = state.config().clone();
    let timeout = cfg.request_timeout;
    let max_wait = cfg.max_wait;
    let ordinary = Router::new()
        .route("/v1/orders", get(routes::list_orders))
        .route("/v1/orders/{orderId}/payment", get(routes::get_payment))
        .route("/v1/orders/{orderId}/events", get(routes::get_order_events))
        .route("/v1/accounts/{address}/credits", get(ledger::get_credits))
        .route("/v1/reconciliation", get(ledger::get_reconciliation))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(docs::openapi_handler))
        .route("/docs", get(docs::docs_handler))
        .route_layer(middleware::from_fn(move |req, next: Next| http::with_timeout(timeout, req, next)));
    // Records that accept `?wait=`: the ordinary timeout plus the wait, read from the query as the handler
    // reads it (percent-decoded keys), capped at `max_wait` (a larger wait is the handler's 400).
    let long_poll = Router::new()
        .route("/v1/orders/{orderId}", get(routes::get_order))
        .route("/v1/transactions/{txHash}", get(routes::get_transaction))
        .route_layer(middleware::from_fn(move |req: axum::extract::Request, next: Next| {
            let wait = http::requested_wait(req.uri()).map_or(Duration::ZERO, Duration::from_secs);
            http::with_timeout(timeout + wait.min(max_wait), req, next)
        }));
    // The stream has no timeout: it ends with the client or at shutdown.
    let streaming = Router::new().route("/v1/stream", get(stream::stream));
    Router::new()
        .merge(ordinary)
        .merge(long_poll)
        .merge(streaming)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), http::limit_request))
        .layer(middleware::from_fn(http::observe))
        .layer(compression())
        .layer(cors(cfg.cors_origins.as_deref()))
        .layer(middleware::from_fn(http::options_only_preflight))
        .with_state(state)
}

/// How long [`serve`] waits for open requests after shutdown was requested.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serve `router` on `listener` until `shutdown` resolves, then wait up to [`DEFAULT_SHUTDOWN_GRACE`] for
/// open requests, with the default connection limits ([`ApiConfig::default`]; [`serve_with`] takes the
/// configured ones). Call [`AppState::shutdown`] in `shutdown` so that event streams and long-polls end at
/// once.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_grace(listener, router, shutdown, DEFAULT_SHUTDOWN_GRACE).await
}

/// [`serve`] with another grace period.
pub async fn serve_with_grace(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_with(listener, router, shutdown, &ApiConfig { shutdown_grace: grace, ..ApiConfig::default() }).await
}
