//! The HTTP server: hyper's HTTP/1.1 connection driver over a Tokio listener, with the per-client bounds
//! `axum::serve` cannot set.
//!
//! `axum::serve` (0.8) builds hyper-util's connection builder inside its accept loop, without a timer, so
//! hyper's header-read timeout never runs, and it accepts every connection. So this module runs the accept
//! loop that hyper-util documents (`serve_connection` per accepted stream, `TowerToHyperService` around the
//! router, graceful shutdown per connection as `axum::serve` does it) with:
//!
//! - **Header-read timeout** (`ApiConfig::header_read_timeout`): hyper's own, on a `TokioTimer`. hyper
//!   starts it when it waits for a request head (on a new connection, and again on a kept-alive one once the
//!   previous response is written), so it is the keep-alive idle timeout as well. hyper closes the
//!   connection when it fires; it sends no response (there is no request to answer yet).
//! - **Connection cap** (`ApiConfig::max_connections`): a semaphore permit per open connection, taken before
//!   `accept`. When all are taken the loop stops accepting, and new connections wait in the kernel's listen
//!   backlog until one closes: the process never holds more than the cap in file descriptors, and no
//!   client is refused while the slow ones are timed out. (Answering the overflow with a 503 would need an
//!   accepted socket, a descriptor, per refused client: what the cap is for.)
//! - **hyper's own limits set above the router's**: hyper parses the request before the router sees it, and
//!   answers a request over its limits itself, with an empty body. Its header count and read buffer are
//!   raised well above `max_headers`/`max_header_bytes` (and hyper's fixed 64 KiB URI limit), so that an
//!   oversized request reaches [`crate::http`]'s limits and gets the error envelope. What is left to hyper:
//!   a URI over 65,534 bytes (hyper's compile-time `MAX_URI_LEN`: bare 414), more headers or header bytes
//!   than the backstops below (bare 431), and malformed HTTP (bare 400).
//! - **HTTP/1.1 only**: HTTP/2 (cleartext, prior knowledge; TLS belongs to the reverse proxy) is not
//!   served, because hyper has no header-read or idle timeout for it nor for the protocol sniffing of
//!   hyper-util's `auto` builder: a client that connects and sends nothing would hold its descriptor forever.

use std::{future::Future, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};

use crate::config::ApiConfig;

/// hyper's URI limit (`MAX_URI_LEN` in hyper's `proto/h1/role.rs`, not configurable).
const HYPER_MAX_URI: usize = 65_534;

/// hyper's read buffer: room for the longest URI hyper accepts plus four times the header bytes the router
/// accepts (at least 64 KiB), so that a request with a too-long path or query or too many header bytes is
/// parsed and then refused by the router with the envelope.
fn hyper_max_buf(cfg: &ApiConfig) -> usize {
    HYPER_MAX_URI + 1024 + cfg.max_header_bytes.saturating_mul(4).max(64 * 1024)
}

/// hyper's header count: ten times the router's limit (at least 1,000), for the same reason. hyper
/// allocates this many slots per request head parsed (64 bytes each).
fn hyper_max_headers(cfg: &ApiConfig) -> usize {
    cfg.max_headers.saturating_mul(10).max(1000)
}

/// Serve `router` on `listener` with the connection limits of `cfg` (`header_read_timeout`,
/// `max_connections`; see the module documentation) until `shutdown` resolves, then wait up to
/// `cfg.shutdown_grace` for open requests and close what is left. Call [`crate::AppState::shutdown`] in
/// `shutdown` so that event streams and long-polls end at once. Pass the `ApiConfig` the router's state was
/// built with.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    cfg: &ApiConfig,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_headers(hyper_max_headers(cfg))
        .max_buf_size(hyper_max_buf(cfg));
    let max = cfg.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (closing_tx, closing) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut full = false;
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections, so that the set only holds open ones.
        while conns.try_join_next().is_some() {}
        // One line per episode of a full server, not one per waiting client.
        match (slots.available_permits() == 0, full) {
            (true, false) => {
                tracing::warn!(max, "connection cap reached; new connections wait in the listen backlog");
            }
            (false, true) => tracing::info!("below the connection cap again"),
            _ => {}
        }
        full = slots.available_permits() == 0;
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let mut closing = closing.clone();
        let open = OpenConnection::new(permit, slots.clone(), max);
        conns.spawn(async move {
            let _open = open;
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                // A client that went away, a header-read timeout, a request hyper refused.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closing_tx.send_replace(true);
    let grace = cfg.shutdown_grace;
    let drained = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            ?grace,
            open = conns.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// An accepted connection's place under the cap; exports `holdfast_api_open_connections` when it is taken
/// and given back.
struct OpenConnection {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
    max: usize,
}

impl OpenConnection {
    fn new(permit: OwnedSemaphorePermit, slots: Arc<Semaphore>, max: usize) -> Self {
        let open = Self { permit: Some(permit), slots, max };
        open.record();
        open
    }

    fn record(&self) {
        let open = self.max.saturating_sub(self.slots.available_permits());
        metrics::gauge!("holdfast_api_open_connections").set(open as f64);
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.record();
    }
}

/// What `axum::serve` does when `accept` fails: a connection that failed before it was accepted is
/// skipped; anything else (out of file descriptors, above all) is logged and retried after a second.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
