//! The OpenAPI document against the server, by a property-based fuzzer: Schemathesis (installed by `make
//! deps` into `.venv`) generates requests from the served document — valid ones and invalid ones — and
//! checks every response against it (status codes, content types, headers, bodies, that valid input is
//! accepted and invalid input refused, no server error). The server is the real one (`serve_with` on a TCP
//! port) over a SQLite store indexed from an anvil chain with an order in every status.
//! `HOLDFAST_FUZZ_EXAMPLES=N` generates N cases per operation (default 30).

use std::{process::Stdio, time::Duration};

use holdfast_api::{ApiConfig, router, serve_with};
use tokio::net::TcpListener;

use crate::{
    harness::{TestDb, app, index, root},
    router::fixture,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_under_a_property_based_fuzzer() {
    let tool = root().join(".venv/bin/schemathesis");
    assert!(
        tool.exists(),
        "{} is missing: run `make deps` (it installs the pinned Schemathesis)",
        tool.display()
    );
    let f = fixture().await;
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    index(&f.c, &store).await;
    // Long-polls are capped at 2 s here so that a generated `wait` costs little; the served document says so.
    // No indexer runs beside this server to confirm the head every 2 s: readiness gets an hour instead of
    // 15 s, or `/readyz` would (rightly) answer 503 during the run, which the fuzzer counts as a server error.
    let cfg = ApiConfig {
        max_wait: Duration::from_secs(2),
        ready_max_stall: Duration::from_secs(3600),
        ..ApiConfig::default()
    };
    let state = app(&f.c, &store, Some(cfg.clone()))
        .with_metrics(|| "# TYPE holdfast_up gauge\nholdfast_up 1\n".into());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let on_shutdown = state.clone();
    let server = tokio::spawn({
        let cfg = cfg.clone();
        async move {
            serve_with(
                listener,
                router(state),
                async move {
                    let _ = stopped.await;
                    on_shutdown.shutdown();
                },
                &cfg,
            )
            .await
        }
    });
    let examples = std::env::var("HOLDFAST_FUZZ_EXAMPLES").unwrap_or_else(|_| "30".into());
    let out = tokio::process::Command::new(&tool)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--checks", "all", "--max-examples", &examples, "--seed", "1", "--workers", "2"])
        .args(["--request-timeout", "15", "--no-color", "--generation-database", "none"])
        // The event stream never ends by itself; its contract is checked by the stream tests.
        .args(["--exclude-path", "/v1/stream"])
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "Schemathesis found the server and its document disagreeing:\n{text}");
    assert!(text.contains("passed"), "{text}");
    db.cleanup(store).await;
}
