//! One writer per chain and a hot standby on Postgres, as real processes: two `holdfast index` on one
//! database, the writer killed with SIGKILL at random moments (20 × HOLDFAST_DRILL_SCALE) while orders keep
//! coming, and paused with SIGSTOP. A standby takes over each time; afterwards the store equals a fresh index
//! of the chain. The takeover times are printed (`--nocapture`) for BENCHMARKS.md.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use holdfast_store::{ChainReader, PgStore, Store};
use rand::Rng;

use crate::{
    common::{Killed, deployment_file},
    harness::{Chain, TestDb, drill_scale, index, snapshot},
};

fn spawn_indexer(c: &Chain, db: &TestDb, deployment: &std::path::Path, log: &std::path::Path) -> Killed {
    let log = std::fs::File::create(log).unwrap();
    Killed(
        Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "info", "--log-format", "json", "index", "--rpc-url", &c.anvil.endpoint()])
            .args(["--database-url", &db.url, "--poll-ms", "100", "--writer-liveness-secs", "2"])
            .arg("--deployment")
            .arg(deployment)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The current writer: (epoch, pid), once one holds the lease.
async fn writer(pg: &PgStore) -> (i64, u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(l) = pg.writer_lease(31337).await.unwrap() {
            let pid =
                l.holder.strip_prefix("pid=").and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
            return (l.epoch, pid);
        }
        assert!(Instant::now() < deadline, "no writer within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait until the lease's epoch passes `epoch`; returns the new (epoch, pid) and how long it took.
async fn takeover(pg: &PgStore, epoch: i64, since: Instant) -> ((i64, u32), Duration) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let w = writer(pg).await;
        if w.0 > epoch {
            return (w, since.elapsed());
        }
        assert!(Instant::now() < deadline, "no standby took over within 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until the store's cursor reaches the chain's head, then compare it with a fresh index.
async fn converges(c: &Chain, store: &Store) {
    crate::common::caught_up(c, store, 31337).await;
    let fresh_db = TestDb::sqlite().await;
    let fresh = fresh_db.store().await;
    index(c, &fresh).await;
    assert_eq!(snapshot(store).await, snapshot(&fresh).await, "the store differs from a fresh index");
    fresh_db.cleanup(fresh).await;
}

fn median_max(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_each_time_the_writer_is_killed() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "failover");
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let Store::Postgres(pg) = store.clone() else { unreachable!() };
    let deliver_by = c.now().await + 86_400;
    let mut next = 1u64;
    // History to backfill.
    for _ in 0..20 {
        c.lock(1, B256::from(U256::from(next)), c.addr(2), next, Address::ZERO, deliver_by, 60).await;
        next += 1;
    }
    let dir = std::env::temp_dir();
    let logs: Vec<_> =
        (0..2).map(|i| dir.join(format!("holdfast-failover-{}-{i}.log", std::process::id()))).collect();
    let mut procs =
        vec![spawn_indexer(&c, &db, &deployment, &logs[0]), spawn_indexer(&c, &db, &deployment, &logs[1])];
    let mut rng = rand::rng();
    let mut times = Vec::new();
    let kills = 20 * drill_scale();
    for k in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..600))).await;
        if rng.random_bool(0.6) {
            c.lock(1, B256::from(U256::from(next)), c.addr(2), next, Address::ZERO, deliver_by, 60).await;
            next += 1;
        }
        let (epoch, pid) = writer(&pg).await;
        let at =
            procs.iter().position(|p| p.0.id() == pid).unwrap_or_else(|| panic!("writer {pid} is not ours"));
        let killed_at = Instant::now();
        drop(procs.swap_remove(at)); // SIGKILL
        procs.push(spawn_indexer(&c, &db, &deployment, &logs[k % 2]));
        let (_, took) = takeover(&pg, epoch, killed_at).await;
        times.push(took);
    }
    for _ in 0..3 {
        c.lock(1, B256::from(U256::from(next)), c.addr(2), next, Address::ZERO, deliver_by, 60).await;
        next += 1;
    }
    converges(&c, &store).await;
    let (median, max) = median_max(times);
    eprintln!("failover drill: {kills} kills of the writer; takeover median {median:?}, max {max:?}");
    assert!(max < Duration::from_secs(30));
    drop(procs);
    for l in logs {
        let _ = std::fs::remove_file(l);
    }
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_writer_is_taken_over_and_stops_writing_when_it_resumes() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "paused");
    let db = TestDb::postgres().await;
    let store = db.store().await;
    let Store::Postgres(pg) = store.clone() else { unreachable!() };
    let dir = std::env::temp_dir();
    let logs: Vec<_> =
        (0..2).map(|i| dir.join(format!("holdfast-paused-{}-{i}.log", std::process::id()))).collect();
    let procs =
        [spawn_indexer(&c, &db, &deployment, &logs[0]), spawn_indexer(&c, &db, &deployment, &logs[1])];
    let deliver_by = c.now().await + 86_400;
    c.lock(1, B256::with_last_byte(1), c.addr(2), 10, Address::ZERO, deliver_by, 60).await;
    let (epoch, pid) = writer(&pg).await;
    let paused = procs.iter().position(|p| p.0.id() == pid).unwrap();
    let signal = |sig: &str| {
        assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
    };
    signal("-STOP");
    let stopped_at = Instant::now();
    let ((_, new_pid), took) = takeover(&pg, epoch, stopped_at).await;
    assert_ne!(new_pid, pid);
    eprintln!("paused writer taken over after {took:?} (liveness 2 s)");
    // The new writer indexes; then the paused one resumes.
    c.lock(1, B256::with_last_byte(2), c.addr(2), 20, Address::ZERO, deliver_by, 60).await;
    converges(&c, &store).await;
    signal("-CONT");
    // The resumed writer finds it was fenced (a refused transaction) or that its lock is gone, and stands by.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(&logs[paused]).unwrap_or_default();
        if text.contains("fenced") || text.contains("lost the writer lock") {
            break;
        }
        assert!(Instant::now() < deadline, "the resumed writer never noticed it was taken over:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.lock(1, B256::with_last_byte(3), c.addr(2), 30, Address::ZERO, deliver_by, 60).await;
    converges(&c, &store).await;
    assert_eq!(writer(&pg).await.1, new_pid, "the resumed process took the lease back");
    drop(procs);
    for l in logs {
        let _ = std::fs::remove_file(l);
    }
    db.cleanup(store).await;
}

/// Two `holdfast run` on one Postgres: the second serves what the first writes (ready, role `standby` in
/// `/readyz`), and takes over, role `writer`, when the first is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_stands_by_and_takes_over() {
    use serde_json::Value;

    use crate::common::{free_port, spawn_run, wait_ready};
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "run-standby");
    let db = TestDb::postgres().await;
    let (pa, pb) = (free_port(), free_port());
    let a = spawn_run(&c, &deployment, &db.url, pa, 5);
    wait_ready(&format!("http://127.0.0.1:{pa}")).await;
    let deliver_by = c.now().await + 86_400;
    c.lock(1, B256::with_last_byte(1), c.addr(2), 10, Address::ZERO, deliver_by, 60).await;
    let b = spawn_run(&c, &deployment, &db.url, pb, 5);
    let base_b = format!("http://127.0.0.1:{pb}");
    wait_ready(&base_b).await;
    let readiness = || crate::common::get(format!("{base_b}/readyz"));
    let role = |body: &Value| body["chains"][0]["role"].as_str().unwrap_or_default().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readiness().await;
        if status == 200 && role(&body) == "standby" && body["chains"][0]["indexer"] == "standby" {
            break;
        }
        assert!(Instant::now() < deadline, "the second run is not a ready standby: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The standby serves what the writer committed.
    let first = reqwest::get(format!("{base_b}/v1/orders/{}", B256::with_last_byte(1))).await.unwrap();
    assert_eq!(first.status(), 200);
    let (_, body_a) = crate::common::get(format!("http://127.0.0.1:{pa}/readyz")).await;
    assert_eq!(role(&body_a), "writer", "{body_a}");
    drop(a); // SIGKILL
    let id = B256::with_last_byte(2);
    c.lock(1, id, c.addr(2), 20, Address::ZERO, deliver_by, 60).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let order = reqwest::get(format!("{base_b}/v1/orders/{id}")).await.unwrap();
        let (status, body) = readiness().await;
        if order.status() == 200 && status == 200 && role(&body) == "writer" {
            break;
        }
        assert!(Instant::now() < deadline, "the standby run did not take over: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(b);
    let store = db.store().await;
    db.cleanup(store).await;
}

/// SQLite is single-process: a second `holdfast index` (or `run`) on a store file another process writes
/// is refused with that process's identity, and starts once the first is gone (even killed with SIGKILL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_of_a_sqlite_store_is_refused() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "sqlite-single");
    let db = TestDb::sqlite().await;
    let log = std::env::temp_dir().join(format!("holdfast-single-{}.log", crate::harness::random_hex()));
    let first = spawn_indexer(&c, &db, &deployment, &log);
    let store = db.store().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.chain_meta(31337).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the first indexer did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = |command: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
        cmd.args(["--log", "warn", command, "--rpc-url", &c.anvil.endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--exit-when-caught-up"]);
        if command == "run" {
            cmd.args(["--listen", &format!("127.0.0.1:{}", crate::common::free_port())]);
        }
        cmd.output().unwrap()
    };
    for command in ["index", "run"] {
        let out = second(command);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a second `holdfast {command}` on the SQLite store started: {err}");
        assert!(err.contains("another process already writes the SQLite store"), "{err}");
        assert!(err.contains(&format!("pid={} (holdfast index)", first.0.id())), "{err}");
    }
    drop(first); // SIGKILL: the kernel releases the lock
    let out = second("index");
    assert!(out.status.success(), "after the first one died: {}", String::from_utf8_lossy(&out.stderr));
    db.cleanup(store).await;
    let _ = std::fs::remove_file(log);
}
