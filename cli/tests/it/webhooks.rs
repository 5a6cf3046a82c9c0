//! Webhooks end to end: a subscription added with `holdfast webhooks add`, `holdfast run` indexing a real
//! anvil and delivering to a real HTTP receiver in this test, every change of two full lifecycles arriving
//! once and in order per order, each signature verified by the independent Python implementation of
//! Standard Webhooks (`standardwebhooks`, installed by `make deps`).

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, wait_ready},
    harness::{Chain, TestDb, root},
};

/// What the receiver got: (webhook-id, webhook-timestamp, webhook-signature, body).
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

async fn receiver() -> (u16, Received) {
    let got: Received = Arc::default();
    let app = Router::new().route(
        "/hook",
        post({
            let got = got.clone();
            move |headers: HeaderMap, body: Bytes| async move {
                let h =
                    |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                got.lock().unwrap().push((
                    h("webhook-id"),
                    h("webhook-timestamp"),
                    h("webhook-signature"),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

fn holdfast(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast")).args(args).output().unwrap();
    assert!(out.status.success(), "holdfast {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Wait until the receiver holds a delivery of `order` whose order status is `status`.
async fn arrived(got: &Received, order: B256, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = order.to_string();
    loop {
        let seen = got.lock().unwrap().iter().any(|(_, _, _, body)| {
            let v: Value = serde_json::from_str(body).unwrap_or_default();
            v["orderId"] == id.as_str() && v["order"]["status"] == status
        });
        if seen {
            return;
        }
        assert!(Instant::now() < deadline, "no {status} delivery of {order} within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Verify every delivery with the Python `standardwebhooks` package (not our code); returns how many
/// passed. A wrong secret must make every one fail.
fn python_verifies(secret: &str, got: &[(String, String, String, String)]) -> usize {
    let python = root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run `make deps`", python.display());
    let input: Vec<Value> = got
        .iter()
        .map(|(id, ts, sig, body)| serde_json::json!({"id": id, "ts": ts, "sig": sig, "body": body}))
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, items = sys.argv[1], json.loads(sys.stdin.read())
ok = 0
for it in items:
    try:
        Webhook(secret).verify(it["body"], {"webhook-id": it["id"], "webhook-timestamp": it["ts"], "webhook-signature": it["sig"]})
        ok += 1
    except Exception as e:
        print("refused", it["id"], e, file=sys.stderr)
print(ok)
"#;
    let mut child = Command::new(python)
        .args(["-c", script, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the python verifier failed");
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

async fn lifecycle(backend: &str) {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "webhooks");
    let db = TestDb::of(backend).await;
    let (hook_port, got) = receiver().await;
    let target = format!("http://127.0.0.1:{hook_port}/hook");

    // A private target is refused without the flag, and nothing is stored.
    let refused = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["webhooks", "add", "--url", &target, "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a loopback target was accepted without --allow-private-targets");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused target"));
    assert!(holdfast(&["webhooks", "list", "--database-url", &db.url]).contains("no subscriptions"));

    let added = holdfast(&[
        "webhooks",
        "add",
        "--url",
        &target,
        "--allow-private-targets",
        "--database-url",
        &db.url,
    ]);
    let secret = added
        .split_whitespace()
        .find(|w| w.starts_with("whsec_"))
        .unwrap_or_else(|| panic!("no secret printed: {added}"))
        .to_string();
    let listed = holdfast(&["webhooks", "list", "--database-url", &db.url]);
    assert!(
        listed.contains(&target) && !listed.contains(&secret),
        "list shows the target, never the secret: {listed}"
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let run = Killed(
        Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "run", "--rpc-url", &c.anvil.endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll-ms", "100", "--allow-private-targets"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;

    let deliver_by = c.now().await + 86_400;
    // Order one: held → delivered → released.
    let one = B256::with_last_byte(0x11);
    c.lock(1, one, c.addr(2), 1_000_000, Address::ZERO, deliver_by, 60).await;
    arrived(&got, one, "held").await;
    c.escrow()
        .deliver(one, B256::with_last_byte(7))
        .from(c.addr(2))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    arrived(&got, one, "delivered").await;
    c.escrow()
        .release(one, U256::from(1_000_000))
        .from(c.addr(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    arrived(&got, one, "released").await;
    // Order two: held → frozen (by the payee) → split by the arbiter.
    let two = B256::with_last_byte(0x22);
    c.lock(1, two, c.addr(2), 500_000, c.addr(3), deliver_by, 60).await;
    arrived(&got, two, "held").await;
    c.escrow()
        .freeze(two, B256::with_last_byte(9))
        .from(c.addr(2))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    arrived(&got, two, "frozen").await;
    c.escrow()
        .resolve(two, U256::from(200_000))
        .from(c.addr(3))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    arrived(&got, two, "split").await;
    // Nothing more is coming: no duplicate shows up later.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let got = got.lock().unwrap().clone();
    let mut per_order: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut ids = std::collections::HashSet::new();
    let mut last_seq = 0;
    for (id, _, _, body) in &got {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "order.updated", "{body}");
        assert!(ids.insert(id.clone()), "delivered twice: {id}");
        assert!(v["seq"].as_i64().unwrap() > last_seq, "deliveries out of order: {body}");
        last_seq = v["seq"].as_i64().unwrap();
        per_order
            .entry(v["orderId"].as_str().unwrap().to_string())
            .or_default()
            .push(v["order"]["status"].as_str().unwrap().to_string());
        assert!(v["order"]["amount"].is_string(), "amounts are decimal strings: {body}");
    }
    assert_eq!(per_order[&one.to_string()], ["held", "delivered", "released"]);
    assert_eq!(per_order[&two.to_string()], ["held", "frozen", "split"]);
    assert_eq!(python_verifies(&secret, &got), got.len(), "every signature verifies with the Python library");
    let wrong = holdfast_webhooks::generate_secret();
    assert_eq!(python_verifies(&wrong, &got), 0, "a wrong secret verifies nothing");

    // The attempt history is readable with the CLI.
    let history = holdfast(&["webhooks", "deliveries", "1", "--database-url", &db.url]);
    assert_eq!(history.matches("HTTP 204").count(), 6, "{history}");
    drop(run);
    let store = db.store().await;
    db.cleanup(store).await;
    let _ = std::fs::remove_file(deployment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_a_full_lifecycle_signed_sqlite() {
    lifecycle("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_a_full_lifecycle_signed_postgres() {
    lifecycle("postgres").await;
}
