//! API replicas on Postgres wake on the indexer's commits (LISTEN/NOTIFY), not by polling: a `holdfast
//! serve` that re-reads the store only once a minute still answers a long-poll and streams a change within
//! seconds of the commit made by a `holdfast index` in another process, and its order cache answers what
//! was committed: a remembered "not found" or state is replaced once the commit is signalled.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256};
use futures::StreamExt;
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, wait_ready},
    harness::{Chain, TestDb},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_replica_wakes_on_commits_of_another_process() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "replica");
    let db = TestDb::postgres().await;
    let spawn = |args: &[&str]| {
        Killed(
            Command::new(env!("CARGO_BIN_EXE_holdfast"))
                .args(["--log", "warn"])
                .args(args)
                .args(["--database-url", &db.url, "--deployment"])
                .arg(&deployment)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let index = spawn(&["index", "--rpc-url", &c.anvil.endpoint(), "--poll-ms", "100"]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The safety-net re-read once a minute: anything answered sooner came from a commit notification.
    let serve = spawn(&["serve", "--listen", &format!("127.0.0.1:{port}"), "--store-poll-ms", "60000"]);
    wait_ready(&base).await;
    // Let the indexer's first steps and the replica's first read settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stream = reqwest::get(format!("{base}/v1/stream")).await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut stream = stream.bytes_stream();

    let id = B256::with_last_byte(0x77);
    // The replica keeps single-order lookups in memory (`--order-cache`, on by default on Postgres): this
    // "not found" is remembered until a commit is signalled.
    let order_url = format!("{base}/v1/orders/{id}");
    for _ in 0..2 {
        assert_eq!(reqwest::get(&order_url).await.unwrap().status(), 404);
    }
    let deliver_by = c.now().await + 86_400;
    let sent = Instant::now();
    let tx = c.lock(1, id, c.addr(2), 4_000_000, Address::ZERO, deliver_by, 60).await;
    let reply = reqwest::get(format!("{base}/v1/transactions/{tx}?wait=20&finality=pending")).await.unwrap();
    let waited = sent.elapsed();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(status, 200, "the replica's long-poll was not woken by the commit: {body}");
    assert!(waited < Duration::from_secs(20), "answered only at the wait's end ({waited:?})");
    assert!(body.to_string().contains(&id.to_string()), "{body}");
    // The long-poll was woken by the snapshot that saw the commit: the remembered 404 is gone with it.
    let held: Value = {
        let r = reqwest::get(&order_url).await.unwrap();
        assert_eq!(r.status(), 200, "the order cache answered from before the commit");
        r.json().await.unwrap()
    };
    assert_eq!(held["status"], "held", "{held}");

    // The replica's stream delivers the change too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while !(text.contains("event: order.updated") && text.contains(&id.to_string())) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the replica's stream did not deliver the lock within 10 s ({other:?}): {text}"),
        }
    }
    drop(stream);

    // A later commit replaces what the cache holds, without the replica's store poll (once a minute).
    let before: Value = reqwest::get(&order_url).await.unwrap().json().await.unwrap();
    assert_eq!(before, held, "two reads without a commit between them differ");
    c.release_all(1, id).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Value = reqwest::get(&order_url).await.unwrap().json().await.unwrap();
        if now["status"] == "released" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica still answers the order as before the release: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(serve);
    drop(index);
    let store = db.store().await;
    db.cleanup(store).await;
}
