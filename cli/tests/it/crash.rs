//! Crash drill: `kill -9` the indexer process at random points during a backfill and in live mode, restart
//! it, and compare with a fresh index of the same chain: nothing lost, nothing twice.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use holdfast_store::{ChainReader, OrderReader};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    common::deployment_file,
    harness::{Chain, TestDb, index, snapshot},
};

fn spawn(c: &Chain, deployment: &PathBuf, db: &str, ws: bool, once: bool) -> Child {
    let url = if ws { c.anvil.ws_endpoint() } else { c.anvil.endpoint() };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
    cmd.args(["--log", "warn", "--log-format", "json", "index", "--rpc-url", &url, "--database-url", db])
        .arg("--deployment")
        .arg(deployment)
        // Tiny ranges: many small commits, so kills land between and inside them.
        .args(["--log-range", "2", "--max-log-range", "4", "--poll-ms", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if once {
        cmd.arg("--exit-when-caught-up");
    }
    cmd.spawn().expect("spawn holdfast")
}

async fn drill(backend: &str) {
    let seed: u64 = rand::random();
    eprintln!("crash drill on {backend}: seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let c = Chain::start().await;
    let generator = c.load_generator().await;
    let mut next = c.generate(generator, 1, 10).await;
    // Bury most of it below anvil's finality (head - 64), so the concurrent backfill path runs.
    c.provider.anvil_mine(Some(120), None).await.unwrap();
    let deployment = deployment_file(&c, "crash");
    let db = TestDb::of(backend).await;

    // Backfill, killed at random points. The process start (connect, migrate, first RPCs) takes a
    // machine-dependent time, so the kill delay grows while a kill lands before any commit; the kill
    // phase ends after enough kills inside the backfill, and a last run then finishes it.
    let store = db.store().await; // runs the migrations once, before any child races on them
    let head = c.provider.get_block_number().await.unwrap();
    let cursor = async || store.chain_meta(31337).await.unwrap().map_or(0, |m| m.cursor);
    let (mut kills, mut mid_backfill_kills, mut max_delay) = (0, 0, 250u64);
    let mut finished = false;
    while mid_backfill_kills < 4 {
        let before = cursor().await;
        let mut child = spawn(&c, &deployment, &db.url, false, true);
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..max_delay))).await;
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "indexer failed: {status}");
            finished = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        let after = cursor().await;
        if after > before && after < head {
            mid_backfill_kills += 1;
        } else if after == before {
            max_delay = (max_delay * 2).min(10_000); // killed before its first commit: wait longer
        }
        assert!(kills < 60, "no kill landed inside the backfill after {kills} tries (seed {seed})");
    }
    if !finished {
        let status = spawn(&c, &deployment, &db.url, false, true).wait().unwrap();
        assert!(status.success(), "indexer failed after {kills} kills: {status}");
    }
    assert_eq!(cursor().await, head, "the backfill did not reach the head");

    // Live mode over ws: new orders arrive while the process is killed and restarted.
    for _ in 0..4 * crate::harness::drill_scale() {
        let mut child = spawn(&c, &deployment, &db.url, true, false);
        next = c.generate(generator, next, 2).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    let status = spawn(&c, &deployment, &db.url, false, true).wait().unwrap();
    assert!(status.success());
    assert!(kills >= 5, "only {kills} kills");

    let fresh_db = TestDb::sqlite().await;
    let fresh = fresh_db.store().await;
    index(&c, &fresh).await;
    let (got, want) = (snapshot(&store).await, snapshot(&fresh).await);
    assert_eq!(got.len(), want.len(), "order count differs after {kills} kills (seed {seed})");
    assert_eq!(got, want, "derived state differs after {kills} kills (seed {seed})");
    assert_eq!(store.counts(31337).await.unwrap(), fresh.counts(31337).await.unwrap());
    // 10 + 8 lock batches of 150, and half of them released.
    assert_eq!(store.counts(31337).await.unwrap().1, (next - 1));
    fresh_db.cleanup(fresh).await;
    db.cleanup(store).await;
    let _ = std::fs::remove_file(deployment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_drill_sqlite() {
    drill("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_drill_postgres() {
    drill("postgres").await;
}
