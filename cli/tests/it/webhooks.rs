//! Webhooks end to end: a subscription added with `holdfast webhooks add`, `holdfast run` indexing a real
//! anvil and delivering to a real HTTP receiver in this test, every change of two full lifecycles arriving
//! once and in order per order, each signature verified by the independent Python implementation of
//! Standard Webhooks (`standardwebhooks`, installed by `make deps`).

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::ext::AnvilApi,
    rpc::types::anvil::ReorgOptions,
};
use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, wait_ready},
    harness::{Chain, TestDb, root},
};

/// What the receiver got: (webhook-id, webhook-timestamp, webhook-signature, body).
type Received = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A receiver that keeps every delivery (always up).
async fn receiver() -> (u16, Received) {
    let r = Switchable::start().await;
    (r.port, r.got)
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
/// passed and what it said about the others. A wrong secret must make every one fail.
fn python_verifies(secret: &str, got: &[(String, String, String, String)]) -> (usize, String) {
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
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(serde_json::to_string(&input).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the python verifier failed: {said}");
    (String::from_utf8(out.stdout).unwrap().trim().parse().unwrap(), said)
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
    // Order three: held → refunded by the payee.
    let three = B256::with_last_byte(0x33);
    c.lock(1, three, c.addr(2), 300_000, Address::ZERO, deliver_by, 60).await;
    arrived(&got, three, "held").await;
    c.escrow()
        .refund(three, U256::from(300_000))
        .from(c.addr(2))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    arrived(&got, three, "refunded").await;
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
    assert_eq!(per_order[&three.to_string()], ["held", "refunded"]);
    let (ok, said) = python_verifies(&secret, &got);
    assert_eq!(ok, got.len(), "every signature verifies with the Python library: {said}");
    let wrong = holdfast_webhooks::generate_secret();
    assert_eq!(python_verifies(&wrong, &got).0, 0, "a wrong secret verifies nothing");

    // The attempt history is readable with the CLI.
    let history = holdfast(&["webhooks", "deliveries", "1", "--database-url", &db.url]);
    assert_eq!(history.matches("HTTP 204").count(), 8, "{history}");
    // The worker's metrics are served with the API's.
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("holdfast_webhook_attempts_total{result=\"delivered\"} 8"), "{metrics}");
    assert!(metrics.contains("# TYPE holdfast_webhook_delivery_lag_seconds histogram"), "{metrics}");
    assert!(metrics.contains("holdfast_webhook_queue_depth 0"), "{metrics}");
    // `webhooks test` sends a signed test message at once, outside the queue.
    let tested = holdfast(&["webhooks", "test", "1", "--allow-private-targets", "--database-url", &db.url]);
    assert!(tested.contains("HTTP 204"), "{tested}");
    drop(run);
    let store = db.store().await;
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_a_full_lifecycle_signed_sqlite() {
    lifecycle("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_deliver_a_full_lifecycle_signed_postgres() {
    lifecycle("postgres").await;
}

/// Crash drill: `holdfast deliver` is killed (SIGKILL) at random moments, 20 times (× HOLDFAST_DRILL_SCALE),
/// while `holdfast index` commits new orders. Afterwards every change the subscription is owed has reached
/// the receiver at least once; a change received twice carries the same `webhook-id`; nothing received is
/// absent from the store's outbox (every id names a queued change of that order).
async fn crash_drill(backend: &str) {
    use holdfast_store::{DeliveryStatus, WebhookStore};
    use rand::Rng;
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "webhooks-crash");
    let db = TestDb::of(backend).await;
    let (hook_port, got) = receiver().await;
    let target = format!("http://127.0.0.1:{hook_port}/hook");
    holdfast(&["webhooks", "add", "--url", &target, "--allow-private-targets", "--database-url", &db.url]);
    let index = Killed(
        Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "index", "--rpc-url", &c.anvil.endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--poll-ms", "100"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deliver = || {
        Killed(
            Command::new(env!("CARGO_BIN_EXE_holdfast"))
                .args(["--log", "error", "deliver", "--database-url", &db.url, "--allow-private-targets"])
                .arg("--deployment")
                .arg(&deployment)
                // A short timeout, so that the lease of a killed worker's claims (5 × timeout + 5 s) expires
                // within the drill.
                .args(["--webhook-poll-ms", "20", "--webhook-timeout-secs", "2"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let kills = 20 * crate::harness::drill_scale();
    let deliver_by = c.now().await + 86_400;
    let mut rng = rand::rng();
    for k in 0..kills {
        let worker = deliver();
        // New orders while the worker runs (each lock is one block, one change).
        for j in 0..2u64 {
            let id = B256::from(U256::from(1_000 + 2 * k as u64 + j));
            c.lock(1, id, c.addr(2), 1_000 + j, Address::ZERO, deliver_by, 60).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..400))).await;
        drop(worker); // SIGKILL, wherever it is
    }
    // A last worker drains the queue.
    let store = db.store().await;
    let _worker = deliver();
    let deadline = Instant::now() + Duration::from_secs(90);
    let owed = loop {
        let d = store.deliveries(1, 10_000).await.unwrap();
        if d.len() as u64 >= 2 * kills as u64 && d.iter().all(|d| d.status == DeliveryStatus::Delivered) {
            break d;
        }
        assert!(Instant::now() < deadline, "the queue was not drained within 90 s after the kills");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(index);
    assert_eq!(owed.len(), 2 * kills, "one delivery per lock");
    let got = got.lock().unwrap().clone();
    let mut by_id: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (id, _, _, body) in &got {
        by_id.entry(id.clone()).or_default().push(body.clone());
    }
    for d in &owed {
        let bodies = by_id.get(&d.message_id()).unwrap_or_else(|| panic!("{} never arrived", d.message_id()));
        for b in bodies {
            let v: Value = serde_json::from_str(b).unwrap();
            assert_eq!(v["seq"], d.change_seq, "a duplicate under {} is another change: {b}", d.message_id());
            assert_eq!(v["orderId"], d.order_id.to_string());
        }
    }
    assert_eq!(by_id.len(), owed.len(), "something arrived that is not in the store: {:?}", by_id.keys());
    let duplicates = got.len() - by_id.len();
    eprintln!(
        "webhook crash drill on {backend}: {kills} kills, {} deliveries, {duplicates} duplicates",
        got.len()
    );
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_kill_9_of_the_worker_sqlite() {
    crash_drill("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_kill_9_of_the_worker_postgres() {
    crash_drill("postgres").await;
}

/// A receiver that can be taken down: while down it answers every delivery `503` (it keeps nothing).
struct Switchable {
    port: u16,
    got: Received,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl Switchable {
    async fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let got: Received = Arc::default();
        let up = Arc::new(AtomicBool::new(true));
        let app = Router::new().route(
            "/hook",
            post({
                let (got, up) = (got.clone(), up.clone());
                move |headers: HeaderMap, body: Bytes| async move {
                    if !up.load(Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let h = |n: &str| {
                        headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
                    };
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
        Self { port, got, up }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The received bodies of one subscription (by the `msg_<subscription>_` prefix of their ids).
fn bodies_of(got: &Received, sub: i64) -> Vec<Value> {
    let prefix = format!("msg_{sub}_");
    got.lock()
        .unwrap()
        .iter()
        .filter(|(id, ..)| id.starts_with(&prefix))
        .map(|(.., body)| serde_json::from_str(body).unwrap())
        .collect()
}

/// (type, order id, status) of what a subscription received, in arrival order.
fn seen(got: &Received, sub: i64) -> Vec<(String, String, String)> {
    bodies_of(got, sub)
        .iter()
        .map(|v| {
            (
                v["type"].as_str().unwrap_or_default().to_string(),
                v["orderId"].as_str().unwrap_or_default().to_string(),
                v["order"]["status"].as_str().unwrap_or("null").to_string(),
            )
        })
        .collect()
}

async fn wait_for(got: &Received, sub: i64, what: (&str, B256, &str), secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let want = (what.0.to_string(), what.1.to_string(), what.2.to_string());
    while !seen(got, sub).contains(&want) {
        assert!(
            Instant::now() < deadline,
            "subscription {sub}: no {want:?} within {secs} s: {:?}",
            seen(got, sub)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Finality, reorgs and a receiver outage through `holdfast run` and a real receiver: a `safe` subscription is
/// sent a change only once its block is safe, a `finalized` one only once it is finalized; a reorg that reverts
/// a delivered change is followed by its retraction, and the subscriptions that were not sent it never see it;
/// a receiver down for a while (10 s × HOLDFAST_DRILL_SCALE) then gets everything, in order per order, with
/// the backoff visible in the attempt history.
async fn finality_reorg_outage(backend: &str) {
    use holdfast_store::{AttemptResult, WebhookStore};
    // safe = head − 2, finalized = head − 4.
    let c = Chain::start_with(&["--slots-in-an-epoch", "2"]).await;
    let deployment = deployment_file(&c, "webhooks-finality");
    let db = TestDb::of(backend).await;
    let hook = Switchable::start().await;
    let target = format!("http://127.0.0.1:{}/hook", hook.port);
    for finality in ["pending", "safe", "finalized"] {
        holdfast(&[
            "webhooks",
            "add",
            "--url",
            &target,
            "--allow-private-targets",
            "--finality",
            finality,
            "--database-url",
            &db.url,
        ]);
    }
    let (pending, safe, finalized) = (1, 2, 3);
    let port = free_port();
    let run = Killed(
        Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "run", "--rpc-url", &c.anvil.endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll-ms", "100", "--allow-private-targets"])
            .args(["--webhook-timeout-secs", "2"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let provider = &c.provider;
    let mine = |n: u64| async move { provider.anvil_mine(Some(n), None).await.unwrap() };
    let deliver_by = c.now().await + 86_400;

    // Finality: the lock reaches `pending` at once, `safe` two blocks later, `finalized` four.
    let one = B256::with_last_byte(1);
    c.lock(1, one, c.addr(2), 1_000, Address::ZERO, deliver_by, 60).await;
    wait_for(&hook.got, pending, ("order.updated", one, "held"), 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(seen(&hook.got, safe).is_empty(), "sent to `safe` before its block was safe");
    mine(2).await;
    wait_for(&hook.got, safe, ("order.updated", one, "held"), 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(seen(&hook.got, finalized).is_empty(), "sent to `finalized` before its block was finalized");
    mine(2).await;
    wait_for(&hook.got, finalized, ("order.updated", one, "held"), 20).await;

    // A reorg reverts a release `pending` was sent: its retraction follows; the others never see either.
    c.release_all(1, one).await;
    wait_for(&hook.got, pending, ("order.updated", one, "released"), 20).await;
    c.provider.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![] }).await.unwrap();
    wait_for(&hook.got, pending, ("order.retracted", one, "held"), 20).await;
    mine(6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for sub in [safe, finalized] {
        assert_eq!(
            seen(&hook.got, sub),
            [("order.updated".to_string(), one.to_string(), "held".to_string())],
            "subscription {sub} was sent a change the reorg reverted"
        );
    }

    // The receiver goes down; changes keep coming; it comes back; everything arrives, in order per order.
    hook.set_up(false);
    let two = B256::with_last_byte(2);
    c.lock(1, two, c.addr(2), 2_000, Address::ZERO, deliver_by, 60).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.escrow()
        .deliver(two, B256::with_last_byte(5))
        .from(c.addr(2))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let down = Duration::from_secs(10 * crate::harness::drill_scale() as u64);
    tokio::time::sleep(down).await;
    hook.set_up(true);
    wait_for(&hook.got, pending, ("order.updated", two, "delivered"), 90).await;
    let of_two: Vec<String> = seen(&hook.got, pending)
        .into_iter()
        .filter(|(_, o, _)| *o == two.to_string())
        .map(|(_, _, s)| s)
        .collect();
    assert_eq!(of_two, ["held", "delivered"], "order two's changes out of order or repeated");
    // The attempt history shows the backoff: failures, growing gaps, then the delivery.
    let store = db.store().await;
    let first = store
        .deliveries(pending, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.order_id == two && d.state.as_ref().is_some_and(|o| o.status.as_str() == "held"))
        .unwrap();
    let attempts = store.attempts(first.id).await.unwrap();
    assert!(attempts.len() >= 2, "no failed attempt recorded during the outage: {attempts:?}");
    let (failed, last) = attempts.split_at(attempts.len() - 1);
    assert!(
        failed.iter().all(|a| a.result == AttemptResult::Failed && a.status_code == Some(503)),
        "{attempts:?}"
    );
    assert_eq!(last[0].result, AttemptResult::Delivered);
    let gaps: Vec<i64> = attempts.windows(2).map(|w| w[1].attempted_at - w[0].attempted_at).collect();
    assert!(gaps.iter().all(|g| *g >= 4_000), "retries came faster than the backoff allows: {gaps:?}");
    drop(run);
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_follow_finality_reorgs_and_an_outage_sqlite() {
    finality_reorg_outage("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_follow_finality_reorgs_and_an_outage_postgres() {
    finality_reorg_outage("postgres").await;
}

/// Two `holdfast deliver` workers on one Postgres queue, woken by the indexer's commits: every change is
/// delivered exactly once (no double delivery in the normal case: claims are leased under `FOR UPDATE SKIP
/// LOCKED`), in order per order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_postgres_queue() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "webhooks-two");
    let db = TestDb::postgres().await;
    let (hook_port, got) = receiver().await;
    let target = format!("http://127.0.0.1:{hook_port}/hook");
    holdfast(&["webhooks", "add", "--url", &target, "--allow-private-targets", "--database-url", &db.url]);
    let spawn = |args: &[&str]| {
        Killed(
            Command::new(env!("CARGO_BIN_EXE_holdfast"))
                .args(["--log", "warn"])
                .args(args)
                .args(["--database-url", &db.url, "--deployment"])
                .arg(&deployment)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let index = spawn(&["index", "--rpc-url", &c.anvil.endpoint(), "--poll-ms", "100"]);
    // Polling once a minute: they deliver within the test's seconds only because each commit wakes them
    // (LISTEN/NOTIFY).
    let workers =
        [0, 1].map(|_| spawn(&["deliver", "--allow-private-targets", "--webhook-poll-ms", "60000"]));
    let deliver_by = c.now().await + 86_400;
    let orders: Vec<B256> = (0..15u64).map(|i| B256::from(U256::from(500 + i))).collect();
    for id in &orders {
        c.lock(1, *id, c.addr(2), 1_000, Address::ZERO, deliver_by, 60).await;
    }
    for id in &orders {
        c.escrow()
            .deliver(*id, B256::with_last_byte(1))
            .from(c.addr(2))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }
    for id in &orders {
        wait_for(&got, 1, ("order.updated", *id, "delivered"), 30).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(workers);
    drop(index);
    let all = got.lock().unwrap().clone();
    let ids: std::collections::HashSet<_> = all.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(ids.len(), all.len(), "a change was delivered twice by the two workers");
    for id in &orders {
        let statuses: Vec<String> =
            seen(&got, 1).into_iter().filter(|(_, o, _)| *o == id.to_string()).map(|(_, _, s)| s).collect();
        assert_eq!(statuses.last().map(String::as_str), Some("delivered"), "{id}: {statuses:?}");
        assert!(statuses.len() <= 2 && !statuses.is_empty(), "{id}: {statuses:?}");
    }
    let store = db.store().await;
    db.cleanup(store).await;
}
