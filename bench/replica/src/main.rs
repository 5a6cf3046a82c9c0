//! Replica wake-up benchmark (figures for BENCHMARKS.md; not a test): on Postgres, `holdfast index` commits
//! a lock in one process and a `holdfast serve` in another answers a long-poll that was already waiting for
//! that order (`GET /v1/orders/{id}?wait=10`). The commit time is the outbox row's `created_at` (a paused
//! webhook subscription: the indexer writes the row in the commit's transaction, in unix milliseconds), the
//! answer time is when the response arrived; same machine clock. The replica re-reads the store only every
//! second (`--store-poll-ms 1000`), so a median well below 500 ms is the LISTEN/NOTIFY wake-up.
//!
//! Run: `cargo build --release -p holdfast && cargo run --release -p holdfast-replica-bench -- [SAMPLES]`
//! (default 200).
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

#[allow(dead_code)]
#[path = "../../../indexer/tests/it/harness.rs"]
mod harness;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use harness::{Chain, TestDb, random_hex, root};
use holdfast_primitives::{Finality, webhook::SubscriptionFilter};
use holdfast_store::{NewSubscription, Store, SubscriptionState, WebhookStore, now_ms};

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9))
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let samples: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let bin = root().join("target/release/holdfast");
    eyre::ensure!(bin.exists(), "build it first: cargo build --release -p holdfast");
    let c = Chain::start().await;
    let deployment = std::env::temp_dir().join(format!("holdfast-replica-bench-{}.json", random_hex()));
    let json = serde_json::json!({
        "chainId": 31337, "escrow": c.escrow.to_string(), "deploymentBlock": c.deploy_block,
        "token": { "address": c.token.to_string(), "symbol": "USDC", "decimals": 6 },
    });
    std::fs::write(&deployment, json.to_string())?;
    let db = TestDb::postgres().await;
    let store = db.store().await;
    // A paused subscription: the indexer writes one outbox row per change in the commit's transaction,
    // stamped with the commit time; nothing is delivered.
    let sub = store
        .add_subscription(&NewSubscription {
            url: "http://127.0.0.1:9/".into(),
            description: "commit clock".into(),
            filter: SubscriptionFilter::default(),
            finality: Finality::Pending,
            secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        })
        .await?;
    store.set_subscription_state(sub.id, SubscriptionState::Paused, Some("benchmark")).await?;
    let spawn = |args: &[&str]| -> eyre::Result<Killed> {
        Ok(Killed(
            Command::new(&bin)
                .args(["--log", "warn"])
                .args(args)
                .args(["--database-url", &db.url, "--deployment"])
                .arg(&deployment)
                .stdout(Stdio::null())
                .spawn()?,
        ))
    };
    let ws = c.anvil.ws_endpoint();
    let index = spawn(&["index", "--rpc-url", &ws])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let serve = spawn(&["serve", "--listen", &format!("127.0.0.1:{port}"), "--store-poll-ms", "1000"])?;
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        eyre::ensure!(ready.elapsed() < Duration::from_secs(20), "serve never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let deliver_by = c.now().await + 86_400;
    let (mut after_commit, mut after_send) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let id = B256::from(U256::from(1_000_000u64 + i as u64));
        // The long-poll waits on the replica before the transaction exists.
        let poll = tokio::spawn({
            let (http, url) = (http.clone(), format!("{base}/v1/orders/{id}?wait=10"));
            async move {
                let r = http.get(url).send().await;
                (now_ms(), r.map(|r| r.status().as_u16()))
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = now_ms();
        c.lock(1, id, c.addr(2), 1, Address::ZERO, deliver_by, 60).await;
        let (answered, status) = poll.await?;
        eyre::ensure!(matches!(status, Ok(200)), "sample {i}: the replica answered {status:?}");
        let committed = store
            .deliveries(sub.id, 5)
            .await?
            .into_iter()
            .find(|d| d.order_id == id)
            .map(|d| d.created_at)
            .ok_or_else(|| eyre::eyre!("sample {i}: no outbox row"))?;
        after_commit.push((answered - committed) as f64);
        after_send.push((answered - sent) as f64);
    }
    let (m, p) = median_p90(after_commit);
    let (ms, ps) = median_p90(after_send);
    println!(
        "replica long-poll over {samples} locks (Postgres, holdfast index over ws, serve --store-poll-ms 1000):"
    );
    println!("  commit -> answered on the replica: median {m:.1} ms, p90 {p:.1} ms");
    println!("  lock sent -> answered:             median {ms:.1} ms, p90 {ps:.1} ms");
    drop(serve);
    drop(index);
    let _ = std::fs::remove_file(&deployment);
    db.cleanup(Store::clone(&store)).await;
    Ok(())
}
