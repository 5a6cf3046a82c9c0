//! `serve` over a real TCP socket: requests, Prometheus metrics from an installed recorder, and a graceful
//! shutdown that also ends open event streams.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use holdfast_api::{ApiConfig, AppState, router, serve_with_grace};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

use crate::harness::TestDb;

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_tcp_with_metrics_and_graceful_shutdown() {
    // The only test that installs the global recorder.
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let state = AppState::new(store.clone(), ApiConfig::default()).with_metrics(move || handle.render());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let on_shutdown = state.clone();
    let server = tokio::spawn(serve_with_grace(
        listener,
        router(state.clone()),
        async move {
            let _ = stopped.await;
            on_shutdown.shutdown();
        },
        Duration::from_secs(20),
    ));

    let health = http_get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"ok\""));
    let head = {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"HEAD /v1/orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("holdfast_api_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");

    // An open event stream does not hold the shutdown up: streams end when it starts.
    let mut sse = TcpStream::connect(addr).await.unwrap();
    sse.write_all(b"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = sse.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200") && head.contains("text/event-stream"), "{head}");
    let started = Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returned").unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The stream's connection was closed.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sse.read_to_end(&mut rest)).await.expect("closed").unwrap();
    db.cleanup(store).await;
}
