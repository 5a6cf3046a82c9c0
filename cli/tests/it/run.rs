//! `holdfast run` (indexer + API in one process) and `holdfast serve` (API alone, same store) end to end.

use std::process::{Command, Stdio};

use alloy::primitives::{Address, B256, U256};
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, spawn_run, wait_ready},
    harness::{Chain, TestDb},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_indexes_and_serves_then_serve_reads_the_same_store() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "run");
    let db = TestDb::sqlite().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_holdfast");
    let run = Killed(
        Command::new(bin)
            .args(["--log", "warn", "run", "--rpc-url", &c.anvil.ws_endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;

    let id = B256::with_last_byte(0x42);
    let deliver_by = c.now().await + 86_400;
    let receipt = c
        .escrow()
        .lock(id, c.addr(2), U256::from(12_500_000u64), Address::ZERO, deliver_by, 60)
        .from(c.addr(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // The agent's "wait for my transaction": long-poll until indexed.
    let tx: Value =
        reqwest::get(format!("{base}/v1/transactions/{}?wait=20&finality=pending", receipt.transaction_hash))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tx["transactionHash"].as_str().unwrap().to_lowercase(), receipt.transaction_hash.to_string());
    let order: Value = reqwest::get(format!("{base}/v1/orders/{id}")).await.unwrap().json().await.unwrap();
    assert_eq!(order["status"], "held", "{order}");
    assert_eq!(order["amount"], "12500000", "{order}");
    assert_eq!(order["amountDecimal"], "12.5", "{order}");
    assert_eq!(order["payer"], c.addr(1).to_checksum(None));
    // A transaction that failed on chain: `holdfast run` asks its node and answers at once.
    let failed = c
        .escrow()
        .release(B256::with_last_byte(0x99), U256::from(1))
        .from(c.addr(1))
        .gas(300_000)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(!failed.status());
    let started = std::time::Instant::now();
    let reply =
        reqwest::get(format!("{base}/v1/transactions/{}?wait=20", failed.transaction_hash)).await.unwrap();
    assert_eq!(reply.status(), 409);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TX_FAILED", "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answered at once, not after the wait");
    drop(run);

    // The API alone over the same store, with limits from flags and the environment.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _serve = Killed(
        Command::new(bin)
            .args([
                "--log",
                "warn",
                "serve",
                "--database-url",
                &db.url,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--max-headers",
                "20",
                "--header-read-timeout-secs",
                "1",
                "--rpc-url",
                &c.anvil.endpoint(),
            ])
            .arg("--deployment")
            .arg(&deployment)
            .env("HOLDFAST_MAX_WAITS", "1")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;
    limits_are_applied(port).await;
    // `serve --rpc-url` asks the node too.
    let reply = reqwest::get(format!("{base}/v1/transactions/{}", failed.transaction_hash)).await.unwrap();
    assert_eq!(reply.status(), 409);
    let again: Value = reqwest::get(format!("{base}/v1/orders/{id}")).await.unwrap().json().await.unwrap();
    assert_eq!(again["orderId"], order["orderId"]);
    assert_eq!(again["status"], "held");
    let missing = reqwest::get(format!("{base}/v1/orders/0x1234")).await.unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
}

/// The `serve` above runs with `--max-headers 20`, `--header-read-timeout-secs 1` and `HOLDFAST_MAX_WAITS=1`.
async fn limits_are_applied(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{base}/v1/orders"));
    for i in 0..25 {
        req = req.header(format!("x-h{i}"), "1");
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 431);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "HEADERS_TOO_LARGE");
    // One waiter at most: an open stream takes the place.
    let stream = client.get(format!("{base}/v1/stream")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let full = client.get(format!("{base}/v1/stream")).send().await.unwrap();
    assert_eq!(full.status(), 503);
    assert_eq!(full.json::<Value>().await.unwrap()["error"]["code"], "TOO_MANY_WAITS");
    drop(stream);
    // A client that stalls in its request head is cut off after about a second.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stalled.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), stalled.read_to_end(&mut got))
        .await
        .expect("closed by the header-read timeout")
        .unwrap();
    assert!(got.is_empty() && started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn api_limits_are_checked_before_serving() {
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args([
            "serve",
            "--max-connections",
            "100",
            "--max-waits",
            "100",
            "--database-url",
            "sqlite:///nonexistent/x.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-waits (100) must be below --max-connections (100)"), "{err}");
}

/// Readiness follows the node, not only the store: an idle chain (no block for longer than the stall
/// limit) is ready, because the indexer confirms the head every 2 s; a node that disappears makes the
/// process not ready within seconds, with the indexer's fault as the reason, while the API keeps serving
/// the indexed data and the process stays up (before, it exited once the retries ran out, ~25 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_is_ready_on_an_idle_chain_and_not_ready_without_its_node_but_keeps_serving() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "ready");
    let db = TestDb::sqlite().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = spawn_run(&c, &deployment, &db.url, port, 5);
    wait_ready(&base).await;
    let id = B256::with_last_byte(0x51);
    let deliver_by = c.now().await + 86_400;
    let tx_hash = c.lock(1, id, c.addr(2), 1_000_000, Address::ZERO, deliver_by, 60).await;
    let tx =
        reqwest::get(format!("{base}/v1/transactions/{tx_hash}?wait=20&finality=pending")).await.unwrap();
    assert_eq!(tx.status(), 200);

    // Idle: no block for more than twice the stall limit (5 s; the indexer confirms the head every 2 s),
    // and still ready.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    let status = ready.status();
    let body: Value = ready.json().await.unwrap();
    assert_eq!(status, 200, "an idle chain must be ready: {body}");

    // The node goes away: not ready within 10 s, with the indexer's fault as a reason.
    let killed_at = std::time::Instant::now();
    drop(c);
    let reasons = loop {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if r.status() == 503 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "NOT_READY", "{body}");
            break body["error"]["details"]["reasons"].to_string();
        }
        assert!(
            killed_at.elapsed() < std::time::Duration::from_secs(10),
            "still ready 10 s after the node died"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let deadline = killed_at + std::time::Duration::from_secs(10);
    let mut reasons = reasons;
    while !reasons.contains("indexer:") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let body: Value = reqwest::get(format!("{base}/readyz")).await.unwrap().json().await.unwrap();
        reasons = body["error"]["details"]["reasons"].to_string();
    }
    assert!(reasons.contains("indexer:"), "the reason names the indexer's fault: {reasons}");

    // Past the old retry budget the process is still up and serves what it indexed.
    tokio::time::sleep(std::time::Duration::from_secs(30).saturating_sub(killed_at.elapsed())).await;
    assert!(run.0.try_wait().unwrap().is_none(), "holdfast run exited while its node was down");
    let order = reqwest::get(format!("{base}/v1/orders/{id}")).await.unwrap();
    assert_eq!(order.status(), 200);
    let order: Value = order.json().await.unwrap();
    assert_eq!(order["amount"], "1000000", "{order}");
}
