//! Crash drill: `kill -9` the indexer process at random points during a backfill and in live mode, restart
//! it, and compare with a fresh index of the same chain: nothing lost, nothing twice.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use holdfast_store::{ChainReader, DeferredIndexes, OrderReader};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    common::{Killed, deployment_file},
    harness::{Chain, TestDb, index, snapshot},
};

/// A `holdfast index` process, killed when dropped (a failing drill leaves none running).
fn spawn(c: &Chain, deployment: &Path, db: &str, ws: bool, once: bool) -> Killed {
    let url = if ws { c.anvil.ws_endpoint() } else { c.anvil.endpoint() };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
    cmd.args(["--log", "warn", "--log-format", "json", "index", "--rpc-url", &url, "--database-url", db])
        .arg("--deployment")
        .arg(deployment)
        // Tiny ranges: many small commits, so kills land between and inside them.
        .args(["--log-range", "2", "--max-log-range", "4", "--poll-ms", "20"])
        // Deferred indexes on both backends (SQLite's default is off), so the kills land in a bulk phase.
        .args(["--defer-indexes", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if once {
        cmd.arg("--exit-when-caught-up");
    }
    Killed(cmd.spawn().expect("spawn holdfast"))
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

    // Backfill, killed at random points: each run is killed a random 0–40 ms after its first commit (the
    // process start, connect, migrate and first RPCs, takes a machine-dependent time, and a fixed delay
    // could overshoot the whole bulk phase on a fast machine); the kill phase ends after enough kills
    // inside the backfill, and a last run then finishes it.
    let store = db.store().await; // runs the migrations once, before any child races on them
    let head = c.provider.get_block_number().await.unwrap();
    let cursor = async || store.chain_meta(31337).await.unwrap().map_or(0, |m| m.cursor);
    //
    // The first run defers the read-path indexes (the store is empty), so every kill inside the backfill
    // lands in the bulk phase. On Postgres, once they are deferred, the drill also holds a lock on `orders`
    // that lets rows in but keeps an index from being built (ROW EXCLUSIVE: the build waits for its SHARE
    // lock), so a run that reaches the finalized block stops inside the build, half done (the events'
    // indexes built, the orders' not), and is killed there.
    let pg = backend == "postgres";
    let pool = if pg { Some(sqlx::PgPool::connect(&db.url).await.unwrap()) } else { None };
    let mut build_lock: Option<sqlx::Transaction<'static, sqlx::Postgres>> = None;
    let (mut kills, mut mid_backfill_kills, mut deferred_kills) = (0, 0, 0);
    let mut build_killed: Option<i32> = None;
    let mut finished = false;
    while mid_backfill_kills < 4 {
        let before = cursor().await;
        let mut child = spawn(&c, &deployment, &db.url, false, true);
        // Until this run's first commit (or its end, or its wait inside the held-up index build).
        let started = std::time::Instant::now();
        loop {
            if child.0.try_wait().unwrap().is_some() || cursor().await > before {
                break;
            }
            if let (Some(pool), Some(_)) = (&pool, &build_lock)
                && waiting_build(pool).await.is_some()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "a run made no commit in 60 s (seed {seed})"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "indexer failed: {status}");
            finished = true;
            break;
        }
        if let (Some(pool), Some(_)) = (&pool, &build_lock)
            && let Some(backend_pid) = waiting_build(pool).await
        {
            child.0.kill().unwrap();
            child.0.wait().unwrap();
            kills += 1;
            build_killed = Some(backend_pid);
            break;
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        kills += 1;
        let after = cursor().await;
        let deferred = store.indexes_deferred().await.unwrap();
        if after > before && after < head {
            mid_backfill_kills += 1;
            deferred_kills += usize::from(deferred);
        }
        if let Some(pool) = pool.as_ref().filter(|_| deferred && build_lock.is_none()) {
            let mut lock = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE orders IN ROW EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
            build_lock = Some(lock);
        }
        assert!(kills < 60, "no kill landed inside the backfill after {kills} tries (seed {seed})");
    }
    assert!(deferred_kills > 0 || finished, "no kill landed in the bulk phase (seed {seed})");
    eprintln!("crash drill on {backend}: {deferred_kills} of {kills} kills inside the bulk phase");
    if let (Some(pool), Some(lock)) = (&pool, build_lock) {
        assert!(!finished, "a run finished past the held lock (seed {seed})");
        let backend_pid = match build_killed {
            Some(p) => p,
            None => {
                // Let a run reach the build, and kill it there.
                let mut child = spawn(&c, &deployment, &db.url, false, true);
                let mut waited = 0;
                let p = loop {
                    if let Some(p) = waiting_build(pool).await {
                        break p;
                    }
                    assert!(
                        child.0.try_wait().unwrap().is_none(),
                        "the run ended before the build (seed {seed})"
                    );
                    waited += 1;
                    assert!(waited < 2400, "no run reached the index build (seed {seed})");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                child.0.kill().unwrap();
                child.0.wait().unwrap();
                kills += 1;
                p
            }
        };
        eprintln!("crash drill: killed a run inside the index build (server pid {backend_pid})");
        lock.rollback().await.unwrap();
        // The killed run's server session ends once it finds its client gone; its transaction rolls back.
        for _ in 0..400 {
            let alive: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                    .bind(backend_pid)
                    .fetch_one(pool)
                    .await
                    .unwrap();
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(store.indexes_deferred().await.unwrap(), "a build killed half way left them deferred");
        assert!(
            !index_exists(pool, "events_by_order").await,
            "the half-done build was rolled back whole (seed {seed})"
        );
    }
    if !finished {
        let status = spawn(&c, &deployment, &db.url, false, true).0.wait().unwrap();
        assert!(status.success(), "indexer failed after {kills} kills: {status}");
    }
    assert_eq!(cursor().await, head, "the backfill did not reach the head");
    assert!(!store.indexes_deferred().await.unwrap(), "the deferred indexes were not built");
    if let Some(pool) = &pool {
        for name in ["events_by_order", "orders_by_payee_status"] {
            assert!(index_exists(pool, name).await, "{name} was not built");
        }
        pool.close().await;
    }

    // Live mode over ws: new orders arrive while the process is killed and restarted.
    for _ in 0..4 * crate::harness::drill_scale() {
        let mut child = spawn(&c, &deployment, &db.url, true, false);
        next = c.generate(generator, next, 2).await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        kills += 1;
    }
    let status = spawn(&c, &deployment, &db.url, false, true).0.wait().unwrap();
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
}

/// The server process of a run waiting for a lock inside the index build, if one is.
async fn waiting_build(pool: &sqlx::PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
         AND query LIKE 'CREATE INDEX%'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn index_exists(pool: &sqlx::PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = $1)")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_drill_sqlite() {
    drill("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_drill_postgres() {
    drill("postgres").await;
}
