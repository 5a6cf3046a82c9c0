//! Storage outage drills for `holdfast run`: a SQLite store whose disk fills up, a SQLite store whose files
//! turn read-only, and a Postgres database that turns read-only. Each time the API keeps answering with the last committed data, `/readyz` turns
//! not ready with the indexer's fault, and once the store is writable again the indexer resumes by itself
//! and the store equals a fresh index of the chain. The SQLite store lives on a small tmpfs mounted for
//! the test, or on a small ext4 file system on a loop device for the read-only drill (the tests run as
//! root). `HOLDFAST_DRILL_SCALE=N` keeps each outage N times longer.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256};
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, spawn_run, try_get, wait_ready},
    harness::{Chain, TestDb, drill_scale, index, pg_admin_url, random_hex, snapshot},
};

/// A tmpfs of `size` mounted at a fresh directory; unmounted and removed when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("holdfast-tmpfs-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root (the tests run as root): {status}");
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `size` ext4 file system in a file, mounted through a loop device at a fresh directory; unmounted
/// (which frees the loop device) and removed when dropped. Unlike tmpfs, ext4 has the immutable attribute,
/// which makes writes through descriptors a process already holds fail (`EPERM`): a read-only store without
/// remounting, which Linux refuses while files are open for writing.
struct LoopExt4 {
    image: PathBuf,
    dir: PathBuf,
}

impl LoopExt4 {
    fn mount(size: &str) -> Self {
        let name = format!("holdfast-ext4-{}", random_hex());
        let image = std::env::temp_dir().join(format!("{name}.img"));
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let run = |cmd: &mut Command| {
            let status = cmd.status().expect("run a file system command");
            assert!(status.success(), "{cmd:?} failed (the tests run as root): {status}");
        };
        run(Command::new("truncate").args(["-s", size]).arg(&image));
        run(Command::new("mkfs.ext4").arg("-q").arg(&image));
        run(Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&dir));
        Self { image, dir }
    }

    /// Set (`+i`) or clear (`-i`) the immutable attribute of every file in the file system but SQLite's
    /// shared-memory index (`-shm`).
    ///
    /// The `-shm` file is memory-mapped, and the kernel answers a write to a mapped page of an immutable
    /// file with `SIGBUS` (a file system remounted read-only after a disk error is expected to do the same:
    /// ext4 refuses the page fault). No process can turn that into an error: it dies, with no log line.
    /// SQLite writes to the map when a read begins after a commit no reader has seen yet (it moves a read
    /// mark), so the drill used to fail now and then, when the indexer had committed just before `chattr`:
    /// `holdfast run` was simply gone. The README says so ("Faults are states, not exits"); this drill
    /// covers the case a process can survive, the database and its write-ahead log refusing writes.
    fn immutable(&self, flag: &str) {
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && !path.to_string_lossy().ends_with("-shm") {
                let status = Command::new("chattr").arg(flag).arg(&path).status().expect("run chattr");
                assert!(status.success(), "chattr {flag} {}: {status}", path.display());
            }
        }
    }
}

impl Drop for LoopExt4 {
    fn drop(&mut self) {
        self.immutable("-i");
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Fill the filesystem of `dir` with a file of zeros until it is full.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
    path
}

async fn lock(c: &Chain, id: B256) {
    let deliver_by = c.now().await + 86_400;
    c.lock(1, id, c.addr(2), 2_000_000, Address::ZERO, deliver_by, 60).await;
}

/// GET `url` from `run`'s API: its status and JSON body. When the request fails, says whether `run` died
/// and how (a signal shows as such), instead of only that the connection closed.
async fn get_from(run: &mut Killed, url: String) -> (u16, Value) {
    match try_get(&url).await {
        Ok(reply) => reply,
        Err(e) => match run.0.try_wait() {
            Ok(Some(exit)) => panic!("holdfast run is gone ({exit}) during a storage outage; GET {url}: {e}"),
            _ => panic!("GET {url} failed while holdfast run is still up: {e}"),
        },
    }
}

/// Wait (up to `limit`) until `/readyz` answers `want`; returns its body.
async fn readyz_becomes(run: &mut Killed, base: &str, want: u16, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = get_from(run, format!("{base}/readyz")).await;
        if status == want {
            return body;
        }
        assert!(started.elapsed() < limit, "/readyz still {status} after {limit:?}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One outage: break the store with `cause`, lock an order meanwhile, check the API, heal it with `heal`,
/// and check that the indexer caught up by itself.
async fn outage(
    c: &Chain,
    run: &mut Killed,
    base: &str,
    served: B256,
    new: B256,
    cause: impl FnOnce(),
    heal: impl FnOnce(),
) {
    cause();
    lock(c, new).await;
    let body = readyz_becomes(run, base, 503, Duration::from_secs(10)).await;
    let reasons = body["error"]["details"]["reasons"].to_string();
    assert!(reasons.contains("indexer:"), "the reason names the indexer's fault: {reasons}");
    let (status, order) = get_from(run, format!("{base}/v1/orders/{served}")).await;
    assert_eq!(status, 200, "the last committed data is still served: {order}");
    tokio::time::sleep(Duration::from_secs(2 * drill_scale() as u64)).await;
    heal();
    readyz_becomes(run, base, 200, Duration::from_secs(30)).await;
    // Ready means within the allowed lag, not past a given block: wait for the order itself.
    let (status, order) = get_from(run, format!("{base}/v1/orders/{new}?wait=20&finality=pending")).await;
    assert_eq!(status, 200, "the order locked during the outage was indexed after it: {order}");
}

/// After the drill: the process is still up, and its store equals a fresh index of the chain.
async fn check_after(c: &Chain, mut run: Killed, db_url: &str) {
    assert!(run.0.try_wait().unwrap().is_none(), "holdfast run exited during a storage outage");
    drop(run);
    let db = holdfast_store::Store::connect(db_url).await.unwrap();
    let fresh_db = TestDb::sqlite().await;
    let fresh = fresh_db.store().await;
    index(c, &fresh).await;
    assert_eq!(snapshot(&db).await, snapshot(&fresh).await, "the store differs from a fresh index");
    db.close().await;
    fresh_db.cleanup(fresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_is_a_state_not_an_exit() {
    let fs = Tmpfs::mount("4m");
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "disk-full");
    let db_url = format!("sqlite://{}", fs.0.join("holdfast.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = spawn_run(&c, &deployment, &db_url, port, 5);
    wait_ready(&base).await;
    let first = B256::with_last_byte(0x61);
    lock(&c, first).await;
    readyz_becomes(&mut run, &base, 200, Duration::from_secs(20)).await;
    // Ready means within the allowed lag: wait for the order itself before breaking the store.
    let (status, order) =
        get_from(&mut run, format!("{base}/v1/orders/{first}?wait=20&finality=pending")).await;
    assert_eq!(status, 200, "the first order was not indexed: {order}");

    let filler = std::cell::RefCell::new(None);
    outage(
        &c,
        &mut run,
        &base,
        first,
        B256::with_last_byte(0x62),
        || *filler.borrow_mut() = Some(fill(&fs.0)),
        || std::fs::remove_file(filler.borrow_mut().take().unwrap()).unwrap(),
    )
    .await;
    check_after(&c, run, &db_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_is_a_state_not_an_exit() {
    let fs = LoopExt4::mount("16M");
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "sqlite-read-only");
    let db_url = format!("sqlite://{}", fs.dir.join("holdfast.db").display());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = spawn_run(&c, &deployment, &db_url, port, 5);
    wait_ready(&base).await;
    let first = B256::with_last_byte(0x81);
    lock(&c, first).await;
    readyz_becomes(&mut run, &base, 200, Duration::from_secs(20)).await;
    // Ready means within the allowed lag: wait for the order itself before breaking the store.
    let (status, order) =
        get_from(&mut run, format!("{base}/v1/orders/{first}?wait=20&finality=pending")).await;
    assert_eq!(status, 200, "the first order was not indexed: {order}");

    outage(
        &c,
        &mut run,
        &base,
        first,
        B256::with_last_byte(0x82),
        || fs.immutable("+i"),
        || fs.immutable("-i"),
    )
    .await;
    check_after(&c, run, &db_url).await;
}

/// Run SQL on the Postgres server as the admin user.
async fn admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_read_only_is_a_state_not_an_exit() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "read-only");
    let db = TestDb::postgres().await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut run = spawn_run(&c, &deployment, &db.url, port, 5);
    wait_ready(&base).await;
    let first = B256::with_last_byte(0x71);
    lock(&c, first).await;
    readyz_becomes(&mut run, &base, 200, Duration::from_secs(20)).await;
    // Ready means within the allowed lag: wait for the order itself before breaking the store.
    let (status, order) =
        get_from(&mut run, format!("{base}/v1/orders/{first}?wait=20&finality=pending")).await;
    assert_eq!(status, 200, "the first order was not indexed: {order}");

    // Read-only for every new session; the running ones are ended so that the pool reconnects.
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    let (read_only, writable) = (
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on"),
        format!("ALTER DATABASE {name} SET default_transaction_read_only = off"),
    );
    let rt = tokio::runtime::Handle::current();
    let sql = |stmts: Vec<String>| {
        let rt = rt.clone();
        move || {
            std::thread::spawn(move || {
                rt.block_on(async {
                    for s in stmts {
                        admin(&s).await;
                    }
                })
            })
            .join()
            .unwrap()
        }
    };
    outage(
        &c,
        &mut run,
        &base,
        first,
        B256::with_last_byte(0x72),
        sql(vec![read_only, terminate.clone()]),
        sql(vec![writable, terminate]),
    )
    .await;
    let store = db.store().await;
    check_after(&c, run, &db.url).await;
    db.cleanup(store).await;
}
