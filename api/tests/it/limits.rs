//! Bounded resources per client: the long-poll timeout read from the parsed query, the request limits and the
//! cap on waiters answered with the error envelope (through the router), and the server's own limits over
//! TCP (header-read timeout, connection cap, what hyper answers itself). An empty SQLite store is enough:
//! no chain is needed to be rejected.

use std::{
    collections::HashSet,
    net::SocketAddr,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use holdfast_api::{ApiConfig, AppState, router, serve_with};
use holdfast_store::Store;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

use crate::harness::{TestDb, assert_error, get};

fn hex(b: B256) -> String {
    format!("{b:#x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_timeout_follows_the_parsed_wait() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    // A request timeout well below the wait: a wait the timeout layer does not see is cut at 300 ms.
    let cfg = ApiConfig { request_timeout: Duration::from_millis(300), ..Default::default() };
    let r = router(AppState::new(store.clone(), cfg));
    let tx = hex(B256::repeat_byte(0xab));
    let order = hex(B256::repeat_byte(0xcd));
    for (uri, code) in [
        (format!("/v1/transactions/{tx}?w%61it=1"), "TX_NOT_FOUND"),
        (format!("/v1/orders/{order}?w%61it=1"), "ORDER_NOT_FOUND"),
        (format!("/v1/transactions/{tx}?finality=safe&%77ait=1"), "TX_NOT_FOUND"),
    ] {
        let started = Instant::now();
        let reply = get(&r, &uri).await;
        let took = started.elapsed();
        assert_error(&reply, 404, code);
        assert!(took >= Duration::from_millis(950), "{uri}: the 1 s wait was honoured, took {took:?}");
        assert!(took < Duration::from_secs(3), "{uri}: took {took:?}");
    }
    // An invalid wait is a typed 400 naming the parameter, however its name is spelled.
    for uri in [
        format!("/v1/transactions/{tx}?wait=abc"),
        format!("/v1/transactions/{tx}?w%61it=-1"),
        format!("/v1/orders/{order}?wait=1.5"),
        format!("/v1/transactions/{tx}?wait=61"),
    ] {
        let reply = get(&r, &uri).await;
        assert_error(&reply, 400, "VALIDATION_ERROR");
        assert_eq!(reply.json["error"]["details"]["field"], "wait", "{uri}: {}", reply.text);
    }
    // A repeated wait is rejected by the handler, not waited for.
    let started = Instant::now();
    let reply = get(&r, &format!("/v1/transactions/{tx}?wait=1&w%61it=1")).await;
    assert_error(&reply, 400, "VALIDATION_ERROR");
    assert!(started.elapsed() < Duration::from_millis(500));
    db.cleanup(store).await;
}

/// `serve_with` over `store` on a free local port.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(store: &Store, cfg: ApiConfig) -> Self {
        let state = AppState::new(store.clone(), cfg.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let on_stop = state.clone();
        let shutdown = async move {
            let _ = stopped.await;
            on_stop.shutdown();
        };
        let task = tokio::spawn(async move { serve_with(listener, router(state), shutdown, &cfg).await });
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("stopped").unwrap().unwrap();
    }
}

/// A response read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: String,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The error envelope with `code`, as `assert_error` checks it.
    #[track_caller]
    fn assert_envelope(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}{}", self.head, self.body);
        assert!(self.head.to_ascii_lowercase().contains("content-type: application/json"), "{}", self.head);
        let j = self.json();
        assert_eq!(j["error"]["code"], code, "{}", self.body);
        assert!(j["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", self.body);
        assert!(j["error"]["retryable"].is_boolean(), "{}", self.body);
    }
}

/// Send `request` as is on a new connection and read the response until the server closes it.
async fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Until EOF; a reset after the response (the server closed with unread input) ends it too.
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Raw { status, head: head.to_string(), body: body.to_string() }
}

/// A GET with extra header lines, closing the connection after the response.
fn get_request(target: &str, extra: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n").into_bytes()
}

/// File descriptors this process holds for connections the server on `port` accepted: sockets in
/// /proc/self/fd whose inode /proc/net/tcp lists with `port` as the local port (the listener excluded).
/// Precise where a raw count of /proc/self/fd is not: the tests of this binary run in parallel in one
/// process, and the clients' own sockets are in the same table.
fn accepted_fds(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let inodes: HashSet<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let listening = f.get(3)? == &"0A";
            (local_port == port && !listening).then(|| f.get(9).map(|i| i.to_string()))?
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .filter(|inode| inodes.contains(inode))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_hold_the_server() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let timeout = Duration::from_secs(1);
    let cfg = ApiConfig { max_connections: 8, header_read_timeout: timeout, ..Default::default() };
    let server = Server::start(&store, cfg).await;
    let (addr, port) = (server.addr, server.addr.port());
    assert_eq!(accepted_fds(port), 0, "baseline: no connection");

    // 20 clients (above the cap of 8): 18 send half a request head and stall, 2 send nothing at all.
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 10 != 9 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
        }
        slow.push(s);
    }
    // The server takes 8 of them (however busy the machine) and no more: the others wait in the backlog.
    let deadline = Instant::now() + Duration::from_millis(800);
    while accepted_fds(port) < 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted_fds(port), 8, "the server holds the cap");

    // A normal client is served within a few seconds: the slow ones before it in the backlog are timed
    // out 8 at a time (20 / 8 rounds of 1 s).
    let started = Instant::now();
    let ok = tokio::time::timeout(Duration::from_secs(6), raw(addr, &get_request("/healthz", "")))
        .await
        .expect("a normal client is served while slow clients stall");
    let waited = started.elapsed();
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.json()["status"], "ok");
    assert!(waited < Duration::from_secs(4), "served after {waited:?}");

    // Every slow client was cut off by the header-read timeout: closed, without a response.
    for (i, s) in slow.iter_mut().enumerate() {
        let mut got = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "slow client {i} still open");
        assert!(got.is_empty(), "slow client {i} got {:?}", String::from_utf8_lossy(&got));
    }
    // ... and the server holds no descriptor for them any more.
    assert_eq!(accepted_fds(port), 0, "back to the baseline");
    drop(slow);

    // A kept-alive connection idle for longer than the timeout is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("idle closed")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800), "closed after {:?}", started.elapsed());
    assert_eq!(accepted_fds(port), 0);

    server.stop().await;
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_over_tcp_carries_the_envelope() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let server = Server::start(&store, ApiConfig { max_waits: 1, ..Default::default() }).await;
    let addr = server.addr;
    let envelope = |r: &Raw, status: u16, code: &str| r.assert_envelope(status, code);

    // 414: a path over the limit (1 KiB), a query over it (2 KiB) up to just below hyper's own URI limit.
    let long_path = format!("/v1/orders/0x{}", "a".repeat(2000));
    envelope(&raw(addr, &get_request(&long_path, "")).await, 414, "PATH_TOO_LONG");
    let long_path = format!("/{}", "a".repeat(60_000));
    envelope(&raw(addr, &get_request(&long_path, "")).await, 414, "PATH_TOO_LONG");
    let long_query = format!("/v1/orders?payer={}", "a".repeat(65_000));
    envelope(&raw(addr, &get_request(&long_query, "")).await, 414, "QUERY_TOO_LONG");
    // 431: too many headers (500), too many header bytes (one of 20 KiB, 100 of 1 KiB).
    let many: String = (0..500).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    envelope(&raw(addr, &get_request("/v1/orders", &many)).await, 431, "HEADERS_TOO_LARGE");
    let big = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    envelope(&raw(addr, &get_request("/v1/orders", &big)).await, 431, "HEADERS_TOO_LARGE");
    let bulky: String = (0..99).map(|i| format!("X-H{i}: {}\r\n", "b".repeat(1024))).collect();
    envelope(&raw(addr, &get_request("/healthz", &bulky)).await, 431, "HEADERS_TOO_LARGE");
    // 413: a declared body over the limit (1 KiB), sent or not.
    let body = format!("Content-Length: 2048\r\n\r\n{}", "x".repeat(2048));
    let req = format!("GET /v1/orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{body}");
    envelope(&raw(addr, req.as_bytes()).await, 413, "BODY_TOO_LARGE");
    let req = "POST /v1/orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n";
    envelope(&raw(addr, req.as_bytes()).await, 413, "BODY_TOO_LARGE");
    // 405: a plain OPTIONS, a POST, a DELETE; a CORS preflight is still answered.
    for method in ["OPTIONS", "POST", "DELETE"] {
        let req = format!("{method} /v1/orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let r = raw(addr, req.as_bytes()).await;
        envelope(&r, 405, "METHOD_NOT_ALLOWED");
        assert!(r.head.to_ascii_lowercase().contains("allow: get, head"), "{}", r.head);
    }
    let preflight = raw(
        addr,
        b"OPTIONS /v1/orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
          Origin: https://dapp.example\r\nAccess-Control-Request-Method: GET\r\n\r\n",
    )
    .await;
    assert_eq!(preflight.status, 200, "{preflight:?}");
    assert!(preflight.head.to_ascii_lowercase().contains("access-control-allow-origin: *"));
    // 404: unknown routes.
    envelope(&raw(addr, &get_request("/nope", "")).await, 404, "NOT_FOUND");
    envelope(&raw(addr, &get_request("/v1/orders/0x12/nope", "")).await, 404, "NOT_FOUND");
    // 400: a bad wait, named.
    let tx = hex(B256::repeat_byte(0xab));
    let bad = raw(addr, &get_request(&format!("/v1/transactions/{tx}?w%61it=x"), "")).await;
    envelope(&bad, 400, "VALIDATION_ERROR");
    assert_eq!(bad.json()["error"]["details"]["field"], "wait");

    // 503 TOO_MANY_WAITS: the one place for waiters is taken by an open stream.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    for target in ["/v1/stream".to_string(), format!("/v1/transactions/{tx}?wait=5")] {
        let started = Instant::now();
        let r = raw(addr, &get_request(&target, "")).await;
        envelope(&r, 503, "TOO_MANY_WAITS");
        assert_eq!(r.json()["error"]["retryable"], true);
        assert!(r.head.to_ascii_lowercase().contains("retry-after: 5"), "{}", r.head);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    drop(stream);

    // 503 REQUEST_TIMEOUT: a second server over a store whose every pooled connection is taken, so its
    // first read of the indexing state waits past the 500 ms request timeout.
    let starved = db.store().await;
    let Store::Sqlite(sq) = &starved else { unreachable!() };
    let mut held = Vec::new();
    for _ in 0..sq.pool().options().get_max_connections() {
        held.push(sq.pool().acquire().await.unwrap());
    }
    let slow = Server::start(
        &starved,
        ApiConfig { request_timeout: Duration::from_millis(500), ..Default::default() },
    )
    .await;
    let r = raw(slow.addr, &get_request("/v1/orders", "")).await;
    envelope(&r, 503, "REQUEST_TIMEOUT");
    assert!(r.head.to_ascii_lowercase().contains("retry-after: 1"), "{}", r.head);
    drop(held);
    slow.stop().await;
    starved.close().await;

    // What hyper answers itself, before any of the above: requests beyond its own limits, which the server
    // sets far above the router's (see api/src/server.rs). No envelope is possible there: hyper writes the
    // status line alone. A URI over 65,534 bytes (hyper's fixed limit) ...
    let huge = raw(addr, &get_request(&format!("/{}", "a".repeat(100 * 1024)), "")).await;
    assert_eq!((huge.status, huge.body.as_str()), (414, ""), "{huge:?}");
    // ... more than 1,000 headers (ten times the router's limit) ...
    let flood: String = (0..1100).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let flooded = raw(addr, &get_request("/healthz", &flood)).await;
    assert_eq!((flooded.status, flooded.body.as_str()), (431, ""), "{flooded:?}");
    // ... and what is not HTTP.
    let garbage = raw(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!((garbage.status, garbage.body.as_str()), (400, ""), "{garbage:?}");

    server.stop().await;
    db.cleanup(store).await;
}
