//! Webhook delivery benchmarks (figures for BENCHMARKS.md; not tests), on SQLite and Postgres, against a
//! local anvil and a receiver in this process (axum on 127.0.0.1, answering 204):
//!
//! 1. latency: `holdfast run` (release binary, websocket RPC) indexes and delivers; the bench sends locks one
//!    at a time and waits for each delivery. Per sample: the outbox row's `created_at` (unix ms, written at
//!    fan-out inside the indexing step's transaction: "committed") → the receiver got it (unix ms, same
//!    clock); split at the attempt's start (the row's `delivered_at`); and send → received for context;
//! 2. sustained deliveries per second: a subscription paused while `holdfast index` queues about CHANGES
//!    deliveries (the harness's load generator: CHANGES / 150 transactions of 150 orders, every other batch
//!    released; the backfill commits a lock and its release in one step, so one change, one delivery per
//!    order), then resumed with `holdfast deliver` running; timed from the resume until
//!    `queue_stats().pending == 0`.
//!
//! Run: `cargo build --release -p holdfast -p holdfast-webhook-bench && target/release/holdfast-webhook-bench
//! [SAMPLES] [CHANGES]` (defaults 200 and 30000; `CARGO_TARGET_DIR` is honoured for the `holdfast` binary).
//! `HOLDFAST_BIN=PATH` runs another `holdfast` binary. `HOLDFAST_BENCH_PERF=DIR` runs `holdfast deliver` under `perf record` (`DIR/deliver-BACKEND.perf`; its
//! CPU figure is then perf's).
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

// The indexer tests' harness, shared: the benches use part of it.
#[allow(dead_code)]
#[path = "../../../indexer/tests/it/harness.rs"]
mod harness;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use harness::{Chain, GEN_BATCH, TestDb, random_hex, root};
use holdfast_store::{SubscriptionState, WebhookStore, now_ms};
use tokio::sync::mpsc;

/// One delivery as the receiver got it.
struct Got {
    id: String,
    seq: i64,
    order_id: String,
    at_ms: i64,
    at: Instant,
}

async fn hook(State(tx): State<mpsc::UnboundedSender<Got>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let (at_ms, at) = (now_ms(), Instant::now());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let _ = tx.send(Got {
        id: headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string(),
        seq: v["seq"].as_i64().unwrap_or(-1),
        order_id: v["orderId"].as_str().unwrap_or_default().to_lowercase(),
        at_ms,
        at,
    });
    StatusCode::NO_CONTENT
}

/// A receiver on 127.0.0.1: its port, and what it got.
async fn receiver() -> eyre::Result<(u16, mpsc::UnboundedReceiver<Got>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route("/", post(hook)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((port, rx))
}

/// The release `holdfast` binary (`HOLDFAST_BIN` overrides it, e.g. to compare a saved baseline).
fn holdfast_bin() -> eyre::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("HOLDFAST_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let bin = target.join("release/holdfast");
    eyre::ensure!(bin.exists(), "build it first: cargo build --release -p holdfast ({})", bin.display());
    Ok(bin)
}

/// Run `holdfast ARGS` to completion; its stdout.
fn holdfast(args: &[&str]) -> eyre::Result<String> {
    let out = Command::new(holdfast_bin()?).args(["--log", "warn"]).args(args).output()?;
    eyre::ensure!(out.status.success(), "holdfast {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A `holdfast` process (stderr in `$TMPDIR/holdfast-webhook-bench-LABEL.log`), stopped with SIGTERM (then
/// SIGKILL) when dropped.
struct Proc(Child);

impl Proc {
    fn spawn(label: &str, args: &[&str]) -> eyre::Result<Self> {
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("holdfast-webhook-bench-{label}.log")))?;
        let mut cmd = match std::env::var("HOLDFAST_BENCH_PERF") {
            Ok(dir) if label.starts_with("deliver") => {
                let mut c = Command::new("perf");
                c.args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-o"])
                    .arg(format!("{dir}/{label}.perf"))
                    .arg(holdfast_bin()?);
                c
            }
            _ => Command::new(holdfast_bin()?),
        };
        let child =
            cmd.args(["--log", "warn"]).args(args).stdout(Stdio::null()).stderr(Stdio::from(log)).spawn()?;
        Ok(Self(child))
    }

    /// CPU seconds (user + system) the process has used so far (Linux, 100 ticks a second).
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap_or_default();
        // Fields after the command name (which ends with ')'): state is the 1st, utime the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
        if f.len() < 13 { 0.0 } else { (f[11] + f[12]) / 100.0 }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU seconds (user + system) used so far by every process whose command name is `name` (e.g. the
/// Postgres server's backends), from /proc.
fn cpu_secs_of(name: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            (head.split_once('(')?.1 == name).then(|| {
                let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
                if f.len() < 13 { 0.0 } else { (f[11] + f[12]) / 100.0 }
            })
        })
        .sum()
}

/// Busy CPU seconds of the whole machine so far (all cores; /proc/stat, 100 ticks a second).
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    f.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum::<f64>() / 100.0
}

fn free_port() -> eyre::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_ready(base: &str) -> eyre::Result<()> {
    for _ in 0..400 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eyre::bail!("{base} never became healthy")
}

/// (median, p90, mean).
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9), v.iter().sum::<f64>() / v.len() as f64)
}

/// Add a subscription (following `payee`) to `url`'s receiver on `port`; returns its id.
fn subscribe(db_url: &str, port: u16, payee: Address) -> eyre::Result<i64> {
    let out = holdfast(&[
        "webhooks",
        "add",
        "--url",
        &format!("http://127.0.0.1:{port}/"),
        "--allow-private-targets",
        "--payee",
        &payee.to_string(),
        "--database-url",
        db_url,
    ])?;
    // The first subscription of a fresh store.
    eyre::ensure!(out.contains("whsec_"), "no secret printed: {out}");
    Ok(1)
}

struct Latency {
    samples: usize,
    committed: (f64, f64, f64),
    pickup: (f64, f64, f64),
    post: (f64, f64, f64),
    sent: (f64, f64, f64),
}

/// Latency: `holdfast run` over ws, one lock at a time (payer account 1, payee `payee`).
async fn latency(
    c: &Chain,
    backend: &str,
    deployment: &Path,
    payee: Address,
    samples: usize,
) -> eyre::Result<Latency> {
    let db = TestDb::of(backend).await;
    let (port, mut rx) = receiver().await?;
    let sub = subscribe(&db.url, port, payee)?;
    let api = free_port()?;
    let run = Proc::spawn(
        &format!("run-{backend}"),
        &[
            "run",
            "--rpc-url",
            &c.anvil.ws_endpoint(),
            "--database-url",
            &db.url,
            "--deployment",
            &deployment.to_string_lossy(),
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--allow-private-targets",
        ],
    )?;
    wait_ready(&format!("http://127.0.0.1:{api}")).await?;
    let deliver_by = c.now().await + 86_400;
    let mut nonce = c.provider.get_transaction_count(c.addr(1)).await?;
    const WARMUP: usize = 5;
    let mut measured = Vec::with_capacity(samples);
    let mut sent = Vec::with_capacity(samples);
    let base = 20_000_000_000u64 + u64::from(rand::random::<u32>()) * 1_000_000;
    for i in 0..WARMUP + samples {
        let id = B256::from(U256::from(base + i as u64));
        let want = id.to_string().to_lowercase();
        let t0 = Instant::now();
        let _ = c
            .escrow()
            .lock(id, payee, U256::from(1), Address::ZERO, deliver_by, 60)
            .from(c.addr(1))
            .nonce(nonce)
            .gas(200_000)
            .max_fee_per_gas(100_000_000_000)
            .max_priority_fee_per_gas(1_000_000_000)
            .send()
            .await?;
        nonce += 1;
        let got = loop {
            let g = tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .map_err(|_| eyre::eyre!("no delivery of {id} within 20 s ({backend})"))?
                .ok_or_else(|| eyre::eyre!("receiver closed"))?;
            if g.order_id == want {
                break g;
            }
        };
        if i >= WARMUP {
            sent.push(got.at.duration_since(t0).as_secs_f64() * 1e3);
            measured.push(got);
        }
    }
    drop(run);
    let store = db.store().await;
    let rows: HashMap<i64, _> = store
        .deliveries(sub, (WARMUP + samples + 50) as u32)
        .await?
        .into_iter()
        .map(|d| (d.change_seq, (d.created_at, d.delivered_at)))
        .collect();
    let (mut committed, mut pickup, mut post) = (Vec::new(), Vec::new(), Vec::new());
    for g in &measured {
        let (created, delivered) =
            rows.get(&g.seq).ok_or_else(|| eyre::eyre!("{} is not in the outbox", g.id))?;
        let delivered =
            delivered.ok_or_else(|| eyre::eyre!("{} received but not recorded delivered", g.id))?;
        committed.push((g.at_ms - created) as f64);
        pickup.push((delivered - created) as f64);
        post.push((g.at_ms - delivered) as f64);
    }
    db.cleanup(store).await;
    Ok(Latency {
        samples,
        committed: stats(committed),
        pickup: stats(pickup),
        post: stats(post),
        sent: stats(sent),
    })
}

struct Throughput {
    queued: u64,
    index_secs: f64,
    secs: f64,
    received: usize,
    unique: usize,
    cpu_secs: f64,
    postgres_cpu_secs: f64,
    machine_busy_secs: f64,
}

/// Sustained deliveries: queue everything behind a paused subscription, resume it with `holdfast deliver`
/// running, time until nothing is pending.
async fn throughput(c: &Chain, backend: &str, deployment: &Path, payee: Address) -> eyre::Result<Throughput> {
    let db = TestDb::of(backend).await;
    let (port, mut rx) = receiver().await?;
    let sub = subscribe(&db.url, port, payee)?;
    holdfast(&["webhooks", "pause", &sub.to_string(), "--database-url", &db.url])?;
    let started = Instant::now();
    holdfast(&[
        "index",
        "--rpc-url",
        &c.anvil.endpoint(),
        "--database-url",
        &db.url,
        "--deployment",
        &deployment.to_string_lossy(),
        "--exit-when-caught-up",
    ])?;
    let index_secs = started.elapsed().as_secs_f64();
    let store = db.store().await;
    let queued = store.queue_stats().await?.pending;
    let deliver = Proc::spawn(
        &format!("deliver-{backend}"),
        &[
            "deliver",
            "--database-url",
            &db.url,
            "--deployment",
            &deployment.to_string_lossy(),
            "--allow-private-targets",
            "--webhook-poll-ms",
            "200",
        ],
    )?;
    // Let it start (its passes find nothing due while the subscription is paused).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu0, pg0, busy0) = (deliver.cpu_secs(), cpu_secs_of("postgres"), machine_busy_secs());
    let started = Instant::now();
    eyre::ensure!(store.set_subscription_state(sub, SubscriptionState::Active, None).await?);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if store.queue_stats().await?.pending == 0 {
            break;
        }
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "{backend}: the queue did not drain in 30 min"
        );
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = deliver.cpu_secs() - cpu0;
    let postgres_cpu_secs = cpu_secs_of("postgres") - pg0;
    let machine_busy_secs = machine_busy_secs() - busy0;
    drop(deliver);
    let mut ids = HashSet::new();
    let mut received = 0;
    while let Ok(g) = rx.try_recv() {
        received += 1;
        ids.insert(g.id);
    }
    eyre::ensure!(
        ids.len() as u64 == queued,
        "{backend}: {} distinct deliveries received, {queued} queued",
        ids.len()
    );
    db.cleanup(store).await;
    Ok(Throughput {
        queued,
        index_secs,
        secs,
        received,
        unique: ids.len(),
        cpu_secs,
        postgres_cpu_secs,
        machine_busy_secs,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let samples: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let changes: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30_000);
    holdfast_bin()?;

    let c = Chain::start_with(&["--prune-history", "64"]).await;
    let deployment = std::env::temp_dir().join(format!("holdfast-webhook-bench-{}.json", random_hex()));
    std::fs::write(
        &deployment,
        serde_json::json!({"chainId": 31337, "escrow": c.escrow.to_string(), "deploymentBlock": c.deploy_block,
            "token": {"address": c.token.to_string(), "symbol": "USDC", "decimals": 6}})
        .to_string(),
    )?;

    // Latency first, each backend's subscription following a payee of its own (the load below goes to
    // account 7), so that neither sees the other's orders nor the load.
    let mut lat = Vec::new();
    for (backend, payee) in [("sqlite", c.addr(2)), ("postgres", c.addr(3))] {
        let l = latency(&c, backend, &deployment, payee, samples).await?;
        eprintln!(
            "{backend}: latency committed → received median {:.1} ms, p90 {:.1} ms",
            l.committed.0, l.committed.1
        );
        lat.push((backend, l));
    }

    // GEN_BATCH orders per batch, every other batch released too; `holdfast index` commits a backfill in
    // steps of many blocks, so an order locked and released within one step is one change: one delivery.
    let batches = changes.div_ceil(GEN_BATCH).max(2);
    let started = Instant::now();
    let generator = c.load_generator().await;
    c.generate(generator, 1, batches).await;
    eprintln!(
        "generated {batches} batches of {GEN_BATCH} orders (head {}) in {:.1}s",
        c.provider.get_block_number().await?,
        started.elapsed().as_secs_f64()
    );
    let mut tput = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let t = throughput(&c, backend, &deployment, c.addr(7)).await?;
        eprintln!("{backend}: {} deliveries in {:.2}s ({:.0}/s)", t.queued, t.secs, t.queued as f64 / t.secs);
        tput.push((backend, t));
    }
    let _ = std::fs::remove_file(&deployment);

    println!("\nlatency: `holdfast run` over ws, {samples} locks one at a time, ms (median / p90 / mean):\n");
    println!(
        "| store | committed → received | committed → attempt started | attempt started → received | sent → received |"
    );
    println!("|---|--:|--:|--:|--:|");
    for (backend, l) in &lat {
        let f = |(m, p, a): (f64, f64, f64)| format!("{m:.1} / {p:.1} / {a:.1}");
        println!(
            "| {backend} ({} samples) | {} | {} | {} | {} |",
            l.samples,
            f(l.committed),
            f(l.pickup),
            f(l.post),
            f(l.sent)
        );
    }
    println!("\nsustained: `holdfast deliver` draining a resumed subscription's backlog:\n");
    println!(
        "| store | queued | indexed by `holdfast index` in | drained in | deliveries/s | received (distinct) | CPU, cores: deliver / postgres / machine |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for (backend, t) in &tput {
        println!(
            "| {backend} | {} | {:.1} s | {:.2} s | {:.0} | {} ({}) | {:.2} / {:.2} / {:.2} |",
            t.queued,
            t.index_secs,
            t.secs,
            t.queued as f64 / t.secs,
            t.received,
            t.unique,
            t.cpu_secs / t.secs,
            t.postgres_cpu_secs / t.secs,
            t.machine_busy_secs / t.secs
        );
    }
    Ok(())
}
