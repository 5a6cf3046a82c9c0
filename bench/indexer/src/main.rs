//! Indexer benchmarks (figures for BENCHMARKS.md; not tests):
//!
//! 1. backfill of N escrow events from a local anvil into SQLite and Postgres by the real `holdfast index`
//!    process (events/s, peak RSS), against the floor: a bare chunked `eth_getLogs` + block-header sweep of
//!    the same range, measured in the same run;
//! 2. re-deriving all state from the stored events (`holdfast reindex --from-store`);
//! 3. live latency over websocket: from sending a lock transaction to its order state being committed.
//!
//! Run: `cargo run --release -p holdfast-bench -- [EVENTS] [LIVE_SAMPLES]` (defaults 100000 and 200), after
//! `cargo build --release -p holdfast`.
#![allow(missing_docs, unreachable_pub, dead_code, clippy::too_many_arguments)]

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
use holdfast_indexer::{
    events::event_signatures,
    store::OrderReader,
    sync::{IndexNotification, Indexer},
};

fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9))
}

/// Send generator transactions without waiting for receipts (anvil automines each on arrival).
async fn generate(c: &Chain, generator: Address, events: u64) -> eyre::Result<u64> {
    let g = ILoadGenerator::new(generator, &c.provider);
    let deliver_by = c.now().await + 365 * 86_400;
    let mut id = 1u64;
    let mut made = 0u64;
    let mut batch = 0u64;
    let mut last = None;
    while made < events {
        let p = g
            .lockMany(U256::from(id), U256::from(GEN_BATCH), c.addr(7), U256::from(1_000), deliver_by)
            .gas(16_000_000)
            .send()
            .await?;
        made += GEN_BATCH;
        if batch % 2 == 1 && made < events {
            let p = g
                .releaseMany(U256::from(id), U256::from(GEN_BATCH), U256::from(1_000))
                .gas(16_000_000)
                .send()
                .await?;
            last = Some(p);
            made += GEN_BATCH;
        } else {
            last = Some(p);
        }
        id += GEN_BATCH;
        batch += 1;
    }
    if let Some(p) = last {
        let r = p.get_receipt().await?;
        eyre::ensure!(r.status(), "generator transaction reverted");
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

fn run_holdfast(args: &[&str]) -> eyre::Result<Run> {
    let bin = harness::root().join("target/release/holdfast");
    eyre::ensure!(bin.exists(), "build it first: cargo build --release -p holdfast");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("HOLDFAST_MAXRSS_KB=%M")
        .arg(&bin)
        .args(["--log", "warn", "--log-format", "json"])
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()?;
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eyre::ensure!(out.status.success(), "holdfast {args:?} failed: {stderr}");
    let max_rss_kb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("HOLDFAST_MAXRSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Run { wall, max_rss_kb, stdout: String::from_utf8_lossy(&out.stdout).into() })
}

async fn live_latency(c: &Chain, samples: usize) -> eyre::Result<(f64, f64)> {
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliver_by = c.now().await + 86_400;
    let mut lat = Vec::with_capacity(samples);
    for i in 0..samples {
        let id = B256::from(U256::from(10_000_000_000u64 + i as u64));
        let t0 = Instant::now();
        let _ = c
            .escrow()
            .lock(id, c.addr(2), U256::from(1), Address::ZERO, deliver_by, 60)
            .from(c.addr(1))
            .gas(200_000)
            .send()
            .await?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await?? {
                IndexNotification::Committed { orders, .. } if orders.iter().any(|(_, o)| *o == id) => break,
                _ => {}
            }
        }
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let _ = stop_tx.send(());
    runner.await??;
    eyre::ensure!(store.order(Some(31337), None, B256::from(U256::from(10_000_000_000u64))).await?.is_some());
    db.cleanup(store).await;
    Ok(median_p90(lat))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100_000);
    let live_samples: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);

    let c = Chain::start().await;
    let generator = c.load_generator().await;
    let started = Instant::now();
    let made = generate(&c, generator, events).await?;
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

    let mut rows = Vec::new();
    for backend in ["sqlite", "postgres"] {
        let (floor_time, floor_logs) = floor(&c, c.deploy_block, head).await?;
        let db = TestDb::of(backend).await;
        let url = c.anvil.endpoint();
        let run = run_holdfast(&[
            "index",
            "--rpc-url",
            &url,
            "--database-url",
            &db.url,
            "--deployment",
            &deployment,
            "--exit-when-caught-up",
        ])?;
        let store = db.store().await;
        let (stored, _) = store.counts(31337).await?;
        eyre::ensure!(stored == floor_logs as u64, "indexed {stored} events, the floor saw {floor_logs}");
        drop(store);
        let re =
            run_holdfast(&["reindex", "--from-store", "--chain-id", "31337", "--database-url", &db.url])?;
        eprintln!("{backend}: {}", re.stdout.trim());
        eprintln!(
            "{backend}: floor {:.2}s, backfill {:.2}s ({:.2}x), peak RSS {:.1} MB",
            floor_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            run.wall.as_secs_f64() / floor_time.as_secs_f64(),
            run.max_rss_kb as f64 / 1024.0
        );
        rows.push((backend, floor_time, floor_logs, run, re));
        let store = db.store().await;
        db.cleanup(store).await;
    }
    let (med, p90) = if live_samples > 0 { live_latency(&c, live_samples).await? } else { (0.0, 0.0) };

    println!("\nbackfill of {made} events ({} blocks), anvil, same run:\n", head - c.deploy_block + 1);
    println!(
        "| store | floor (getLogs + headers) | holdfast index | events/s | ratio to floor | peak RSS | re-derive |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|");
    for (backend, floor_time, logs, run, re) in &rows {
        let eps = *logs as f64 / run.wall.as_secs_f64();
        let re_eps = *logs as f64 / re.wall.as_secs_f64();
        println!(
            "| {backend} | {:.2} s | {:.2} s | {:.0} | {:.2}× | {:.1} MB | {:.2} s ({:.0} events/s, incl. process start) |",
            floor_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            eps,
            run.wall.as_secs_f64() / floor_time.as_secs_f64(),
            run.max_rss_kb as f64 / 1024.0,
            re.wall.as_secs_f64(),
            re_eps
        );
    }
    if live_samples > 0 {
        println!("\nlive (ws, SQLite), {live_samples} samples: median {med:.2} ms, p90 {p90:.2} ms");
    }
    let _ = std::fs::remove_file(&deployment);
    Ok(())
}
