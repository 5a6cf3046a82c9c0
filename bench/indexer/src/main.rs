//! Indexer benchmarks (figures for BENCHMARKS.md; not tests):
//!
//! 1. backfill of N escrow events from a local anvil into SQLite and Postgres by the real `holdfast index`
//!    process (events/s, peak RSS), against the floor: a bare chunked `eth_getLogs` + block-header sweep of
//!    the same range, measured in the same run;
//! 2. re-deriving all state from the stored events (`holdfast reindex --from-store`);
//! 3. live latency over websocket: from sending a lock transaction to its order state being committed.
//!
//! Run: `cargo run --release -p holdfast-bench -- [EVENTS] [LIVE_SAMPLES] [TXS_PER_BLOCK]` (defaults 100000,
//! 200 and 1), after `cargo build --release -p holdfast`.
#![allow(missing_docs, unreachable_pub, clippy::too_many_arguments)]

// The indexer tests' harness, shared: the benches use part of it.
#[allow(dead_code)]
#[path = "../../../indexer/tests/it/harness.rs"]
mod harness;

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
    rpc::types::Filter,
};
use futures::{StreamExt, TryStreamExt};
use harness::{Chain, GEN_BATCH, ILoadGenerator, TestDb, random_hex};
use holdfast_indexer::sync::Indexer;
use holdfast_primitives::{IndexNotification, event::event_signatures};
use holdfast_store::OrderReader;

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9))
}

/// Send generator transactions without waiting for receipts. With `per_block` > 1, automine is off and
/// every `per_block` transactions are mined into one block (the block gas limit raised to fit them), which
/// makes generation much faster (anvil's per-block cost dominates); with 1, anvil automines each on arrival.
async fn generate(c: &Chain, generator: Address, events: u64, per_block: u64) -> eyre::Result<u64> {
    let g = ILoadGenerator::new(generator, &c.provider);
    let deliver_by = c.now().await + 365 * 86_400;
    const TX_GAS: u64 = 16_000_000;
    if per_block > 1 {
        c.provider.anvil_set_block_gas_limit(TX_GAS * (per_block + 1)).await?;
        c.provider.anvil_set_auto_mine(false).await?;
    }
    let mut nonce = c.provider.get_transaction_count(c.addr(0)).await?;
    let mut id = 1u64;
    let mut made = 0u64;
    let mut batch = 0u64;
    let mut pending = Vec::new();
    let mut in_block = 0u64;
    while made < events {
        let p = g
            .lockMany(U256::from(id), U256::from(GEN_BATCH), c.addr(7), U256::from(1_000), deliver_by)
            .from(c.addr(0))
            .nonce(nonce)
            .gas(TX_GAS)
            .send()
            .await?;
        nonce += 1;
        in_block += 1;
        pending.push(p);
        made += GEN_BATCH;
        if batch % 2 == 1 && made < events {
            let p = g
                .releaseMany(U256::from(id), U256::from(GEN_BATCH), U256::from(1_000))
                .from(c.addr(0))
                .nonce(nonce)
                .gas(TX_GAS)
                .send()
                .await?;
            nonce += 1;
            in_block += 1;
            pending.push(p);
            made += GEN_BATCH;
        }
        if per_block > 1 && (in_block + 1 >= per_block || made >= events) {
            c.provider.anvil_mine(Some(1), None).await?;
            in_block = 0;
        }
        // Check a few receipts as we go (a reverted generator transaction would skew the figures).
        if pending.len() >= 64 || made >= events {
            if per_block > 1 && in_block > 0 {
                c.provider.anvil_mine(Some(1), None).await?;
                in_block = 0;
            }
            let last = pending.pop().expect("non-empty");
            pending.clear();
            let r = last.get_receipt().await?;
            eyre::ensure!(r.status(), "generator transaction reverted");
        }
        id += GEN_BATCH;
        batch += 1;
    }
    if per_block > 1 {
        c.provider.anvil_set_auto_mine(true).await?;
    }
    Ok(made)
}

/// The floor: chunked eth_getLogs (4 in flight) plus every block header (16 in flight) over the range.
async fn floor(c: &Chain, from: u64, to: u64) -> eyre::Result<(Duration, usize)> {
    let started = Instant::now();
    let chunk = 2_000u64;
    let ranges: Vec<(u64, u64)> =
        (from..=to).step_by(chunk as usize).map(|a| (a, (a + chunk - 1).min(to))).collect();
    let topics = event_signatures();
    let logs = futures::stream::iter(ranges)
        .map(|(a, b)| {
            let f = Filter::new()
                .address(vec![c.escrow])
                .event_signature(topics.clone())
                .from_block(a)
                .to_block(b);
            let p = c.provider.clone();
            async move { p.get_logs(&f).await.map(|l| l.len()) }
        })
        .buffered(4);
    let headers = futures::stream::iter(from..=to)
        .map(|n| {
            let p = c.provider.clone();
            async move { p.get_block_by_number(BlockNumberOrTag::Number(n)).await.map(|b| b.is_some()) }
        })
        .buffer_unordered(16);
    let (logs, headers): (Vec<usize>, Vec<bool>) =
        tokio::try_join!(logs.try_collect(), headers.try_collect())?;
    eyre::ensure!(headers.iter().all(|h| *h), "missing header");
    Ok((started.elapsed(), logs.iter().sum()))
}

struct Run {
    wall: Duration,
    max_rss_kb: u64,
    stdout: String,
}

/// Run the release `holdfast` binary under `/usr/bin/time` (peak RSS); its stderr goes to
/// `$TMPDIR/holdfast-bench-LABEL.log`. With `HOLDFAST_BENCH_PERF=DIR`, under `perf record` too
/// (`DIR/LABEL.perf`; the RSS figure is then perf's, ignore it).
fn run_holdfast(label: &str, args: &[&str]) -> eyre::Result<Run> {
    let bin = harness::root().join("target/release/holdfast");
    eyre::ensure!(bin.exists(), "build it first: cargo build --release -p holdfast");
    let started = Instant::now();
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f").arg("HOLDFAST_MAXRSS_KB=%M");
    if let Ok(dir) = std::env::var("HOLDFAST_BENCH_PERF") {
        cmd.args(["perf", "record", "-e", "cpu-clock", "-F", "499", "-g", "-o"]);
        cmd.arg(format!("{dir}/{label}.perf"));
    }
    let out = cmd
        .arg(&bin)
        .args(["--log", "warn", "--log-format", "json"])
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::env::temp_dir().join(format!("holdfast-bench-{label}.log"));
    std::fs::write(&log, stderr.as_bytes())?;
    eyre::ensure!(out.status.success(), "holdfast {args:?} failed: {stderr}");
    let max_rss_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("HOLDFAST_MAXRSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Run { wall, max_rss_kb, stdout: String::from_utf8_lossy(&out.stdout).into() })
}

/// Live latency, per sample, from just before `eth_sendRawTransaction` of a lock (the sender keeps its own
/// nonce and fixes its fees, as a real client would, so the send is that one call):
/// - `sent`: the node answered the send (it accepted the transaction; automine then mines it);
/// - `head`: the bench's own `newHeads` subscription saw the block (the node's share: mining + notification);
/// - `committed`: the indexer's `Committed` notification names the order.
struct Live {
    sent: (f64, f64),
    head: (f64, f64),
    committed: (f64, f64),
}

async fn live_latency(c: &Chain, samples: usize) -> eyre::Result<Live> {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    let indexer = Arc::new(Indexer::new(c.config(true), store.clone()).await?);
    indexer.sync_to_head().await?;
    let mut rx = indexer.subscribe();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let indexer = indexer.clone();
        tokio::spawn(async move {
            indexer
                .run(async {
                    let _ = stop_rx.await;
                })
                .await
        })
    };
    let mut heads = c.head_times().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    heads.clear();
    let deliver_by = c.now().await + 86_400;
    let (mut sent, mut head, mut committed) =
        (Vec::with_capacity(samples), Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut nonce = c.provider.get_transaction_count(c.addr(1)).await?;
    let ms = |t0: Instant, t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    for i in 0..samples {
        let id = B256::from(U256::from(10_000_000_000u64 + i as u64));
        let t0 = Instant::now();
        let _ = c
            .escrow()
            .lock(id, c.addr(2), U256::from(1), Address::ZERO, deliver_by, 60)
            .from(c.addr(1))
            .nonce(nonce)
            .gas(200_000)
            .max_fee_per_gas(100_000_000_000)
            .max_priority_fee_per_gas(1_000_000_000)
            .send()
            .await?;
        sent.push(ms(t0, Instant::now()));
        nonce += 1;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await?? {
                IndexNotification::Committed { orders, .. } if orders.iter().any(|(_, o)| *o == id) => break,
                _ => {}
            }
        }
        committed.push(ms(t0, Instant::now()));
        let seen = heads.next(Duration::from_secs(10)).await.ok_or_else(|| eyre::eyre!("no new head"))?;
        head.push(ms(t0, seen));
        heads.clear();
    }
    drop(heads);
    let _ = stop_tx.send(());
    runner.await??;
    eyre::ensure!(store.order(Some(31337), None, B256::from(U256::from(10_000_000_000u64))).await?.is_some());
    db.cleanup(store).await;
    Ok(Live { sent: median_p90(sent), head: median_p90(head), committed: median_p90(committed) })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let live_samples: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let per_block: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);

    // At most 16 historical states, kept in memory (the indexer reconciles at its cursor; a reconciliation
    // that finds its block's state pruned during the backfill is only a warning). Without the flag anvil
    // spills every state to ~/.foundry/anvil/tmp (38 GB for 100k events); with 256 it held 23 GB of RSS at
    // ~1M events and was OOM-killed.
    let c = Chain::start_with(&["--prune-history", "16"]).await;
    let generator = c.load_generator().await;
    let started = Instant::now();
    let made = generate(&c, generator, events, per_block).await?;
    c.provider.anvil_mine(Some(100), None).await?;
    let head = c.provider.get_block_number().await?;
    eprintln!("generated {made} events up to block {head} in {:.1}s", started.elapsed().as_secs_f64());

    let deployment = std::env::temp_dir().join(format!("holdfast-bench-{}.json", random_hex()));
    std::fs::write(
        &deployment,
        serde_json::json!({"chainId": 31337, "escrow": c.escrow.to_string(), "deploymentBlock": c.deploy_block,
            "token": {"address": c.token.to_string()}})
        .to_string(),
    )?;
    let deployment = deployment.to_string_lossy().to_string();
    if std::env::var_os("HOLDFAST_BENCH_HOLD").is_some() {
        // For experiments: keep the chain up and let the caller run `holdfast index` against it.
        println!("HOLD rpc={} ws={} deployment={deployment}", c.anvil.endpoint(), c.anvil.ws_endpoint());
        tokio::signal::ctrl_c().await?;
        return Ok(());
    }

    let mut rows = Vec::new();
    // Each store with its default (Postgres defers its read indexes, SQLite does not), and Postgres once
    // more with its indexes maintained row by row, to show what deferring them is worth.
    for (label, backend, defer) in [
        ("sqlite", "sqlite", None),
        ("postgres", "postgres", None),
        ("postgres, no deferral", "postgres", Some("false")),
    ] {
        let (floor_time, floor_logs) = floor(&c, c.deploy_block, head).await?;
        let db = TestDb::of(backend).await;
        let url = c.anvil.endpoint();
        let mut args = vec![
            "index",
            "--rpc-url",
            &url,
            "--database-url",
            &db.url,
            "--deployment",
            &deployment,
            "--exit-when-caught-up",
        ];
        if let Some(d) = defer {
            args.extend(["--defer-indexes", d]);
        }
        let run = run_holdfast(&format!("index-{}", label.replace([',', ' '], "")), &args)?;
        let store = db.store().await;
        let (stored, _) = store.counts(31337).await?;
        eyre::ensure!(stored == floor_logs as u64, "indexed {stored} events, the floor saw {floor_logs}");
        drop(store);
        let re = run_holdfast(
            &format!("reindex-{}", label.replace([',', ' '], "")),
            &["reindex", "--from-store", "--chain-id", "31337", "--database-url", &db.url],
        )?;
        eprintln!("{label}: {}", re.stdout.trim());
        eprintln!(
            "{label}: floor {:.2}s, backfill {:.2}s ({:.2}x), peak RSS {:.1} MB",
            floor_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            run.wall.as_secs_f64() / floor_time.as_secs_f64(),
            run.max_rss_kb as f64 / 1024.0
        );
        rows.push((label, floor_time, floor_logs, run, re));
        let store = db.store().await;
        db.cleanup(store).await;
    }
    let live = if live_samples > 0 { Some(live_latency(&c, live_samples).await?) } else { None };

    println!("\nbackfill of {made} events ({} blocks), anvil, same run:\n", head - c.deploy_block + 1);
    println!(
        "| store | floor (getLogs + headers) | holdfast index | events/s | ratio to floor | peak RSS | re-derive (process) | re-derive (rederive_all) |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for (backend, floor_time, logs, run, re) in &rows {
        let eps = *logs as f64 / run.wall.as_secs_f64();
        let re_eps = *logs as f64 / re.wall.as_secs_f64();
        // `holdfast reindex` prints "... in 0.42s (238095 events/s)": the library call alone.
        let inner =
            re.stdout.rsplit_once('(').and_then(|(_, r)| r.split_once(" events/s")).map_or("?", |(n, _)| n);
        println!(
            "| {backend} | {:.2} s | {:.2} s | {:.0} | {:.2}× | {:.1} MB | {:.2} s ({:.0} events/s) | {inner} events/s |",
            floor_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            eps,
            run.wall.as_secs_f64() / floor_time.as_secs_f64(),
            run.max_rss_kb as f64 / 1024.0,
            re.wall.as_secs_f64(),
            re_eps
        );
    }
    if let Some(l) = live {
        println!("\nlive (ws, SQLite), {live_samples} samples, from sending the lock (median / p90):");
        println!("| until | median | p90 |\n|---|--:|--:|");
        for (what, (m, p)) in [
            ("the node answered eth_sendRawTransaction (transaction accepted)", l.sent),
            ("the bench's own newHeads subscription saw the block", l.head),
            ("the indexer committed the order (Committed notification)", l.committed),
        ] {
            println!("| {what} | {m:.2} ms | {p:.2} ms |");
        }
    }
    let _ = std::fs::remove_file(&deployment);
    Ok(())
}
