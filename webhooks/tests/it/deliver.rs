//! `post` against local receivers on 127.0.0.1.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post as route_post;
use holdfast_webhooks::{Attempt, Outcome, Signer, generate_secret, http_client, post};
use tokio::net::TcpListener;
use url::Url;

use crate::{change_body, now};

const TIMEOUT: Duration = Duration::from_millis(700);

/// Requests per path, and the headers of the last one.
#[derive(Default)]
struct Seen {
    hits: HashMap<String, usize>,
    last_headers: Option<HeaderMap>,
}

type Shared = Arc<Mutex<Seen>>;

/// Middleware counting every request that reaches the receiver.
async fn record(State(seen): State<Shared>, request: Request, next: Next) -> Response {
    {
        let mut seen = seen.lock().unwrap();
        *seen.hits.entry(request.uri().path().to_owned()).or_default() += 1;
        seen.last_headers = Some(request.headers().clone());
    }
    next.run(request).await
}

/// A receiver with one path per behaviour; returns its address and what it saw.
async fn receiver() -> (SocketAddr, Shared) {
    let seen = Shared::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/ok", route_post(|| async { (StatusCode::OK, "thanks") }))
        .route("/gone", route_post(|| async { StatusCode::GONE }))
        .route(
            "/busy",
            route_post(|| async { (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "7")], "busy") }),
        )
        .route(
            "/redirect",
            route_post(move || async move {
                (StatusCode::FOUND, [(header::LOCATION, format!("http://{addr}/target"))])
            }),
        )
        .route("/target", route_post(|| async { StatusCode::OK }))
        .route(
            "/slow",
            route_post(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::OK
            }),
        )
        .route("/big", route_post(|| async { "x".repeat(100 * 1024).into_response() }))
        .layer(middleware::from_fn_with_state(seen.clone(), record));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, seen)
}

async fn deliver(client: &reqwest::Client, url: &str, allow_private: bool) -> Attempt {
    let body = change_body();
    let headers =
        Signer::new(&generate_secret(), None).unwrap().headers("msg_deliver", now(), &body).unwrap();
    post(client, &Url::parse(url).unwrap(), headers, body, allow_private).await
}

fn hits(seen: &Shared, path: &str) -> usize {
    seen.lock().unwrap().hits.get(path).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_2xx_is_delivered_with_the_signed_headers() {
    let (addr, seen) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/ok"), true).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.error, None);
    assert_eq!(attempt.response_excerpt.as_deref(), Some("thanks"));
    assert!(attempt.latency < TIMEOUT, "{attempt:?}");

    let headers = seen.lock().unwrap().last_headers.clone().unwrap();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert!(headers.contains_key(name), "{name} missing: {headers:?}");
    }
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["user-agent"], holdfast_webhooks::client::USER_AGENT);
    assert!(headers["user-agent"].to_str().unwrap().starts_with("holdfast-webhooks/"));
}

#[tokio::test]
async fn a_410_is_gone() {
    let (addr, _) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/gone"), true).await;
    assert_eq!((attempt.outcome, attempt.status), (Outcome::Gone, Some(410)), "{attempt:?}");
}

#[tokio::test]
async fn a_503_is_retried_after_its_retry_after() {
    let (addr, _) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/busy"), true).await;
    assert_eq!(attempt.outcome, Outcome::Retry, "{attempt:?}");
    assert_eq!(attempt.status, Some(503));
    assert_eq!(attempt.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(attempt.response_excerpt.as_deref(), Some("busy"));
    assert!(holdfast_webhooks::retry_delay(1, attempt.retry_after) >= Duration::from_secs(7));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (addr, seen) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/redirect"), true).await;
    assert_eq!((attempt.outcome, attempt.status), (Outcome::Retry, Some(302)), "{attempt:?}");
    assert_eq!(hits(&seen, "/redirect"), 1);
    assert_eq!(hits(&seen, "/target"), 0, "the redirect was followed");
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let (addr, seen) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/slow"), true).await;
    assert_eq!((attempt.outcome, attempt.status), (Outcome::Retry, None), "{attempt:?}");
    let error = attempt.error.unwrap();
    assert!(error.contains("timed out"), "{error}");
    assert!(attempt.latency >= TIMEOUT && attempt.latency < Duration::from_secs(4), "{:?}", attempt.latency);
    assert_eq!(hits(&seen, "/slow"), 1);
}

#[tokio::test]
async fn only_a_prefix_of_the_response_is_kept() {
    let (addr, _) = receiver().await;
    let client = http_client(true, TIMEOUT).unwrap();
    let attempt = deliver(&client, &format!("http://{addr}/big"), true).await;
    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    let excerpt = attempt.response_excerpt.unwrap();
    assert_eq!(excerpt.len(), holdfast_webhooks::client::RESPONSE_EXCERPT_BYTES);
    assert!(excerpt.bytes().all(|b| b == b'x'));
}

/// With `allow_private = false`, neither an IP literal nor a name resolving to loopback is connected to:
/// the listener never sees a connection.
#[tokio::test]
async fn private_targets_are_refused_before_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = http_client(false, TIMEOUT).unwrap();

    let literal = deliver(&client, &format!("http://127.0.0.1:{port}/ok"), false).await;
    assert_eq!((literal.outcome, literal.status), (Outcome::Retry, None), "{literal:?}");
    let error = literal.error.unwrap();
    assert!(error.contains("127.0.0.1 is a loopback address"), "{error}");

    // A name passes the URL check; the resolver refuses what it resolves to…
    let named = deliver(&client, &format!("http://localhost:{port}/ok"), false).await;
    assert_eq!((named.outcome, named.status), (Outcome::Retry, None), "{named:?}");
    let error = named.error.unwrap();
    assert!(error.contains("localhost resolves to a refused address"), "{error}");

    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "a connection reached the receiver: {accepted:?}");

    // …while the listener is reachable at all: a client allowing private targets connects.
    let open = http_client(true, TIMEOUT).unwrap();
    let reach =
        tokio::spawn(async move { deliver(&open, &format!("http://localhost:{port}/ok"), true).await });
    let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
    assert!(matches!(accepted, Ok(Ok(_))), "{accepted:?}");
    reach.abort();
}
