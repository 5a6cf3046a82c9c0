//! Outage drill: `holdfast run` (indexer + API in one process) against a real anvil and a real store while
//! a dependency goes away and comes back. The node is cut by a TCP proxy switched off and on (over http and
//! over a websocket); Postgres is made to refuse connections (`ALLOW_CONNECTIONS false` and every backend
//! terminated). Throughout, the process keeps serving: `/healthz` answers, `/readyz` turns `503 NOT_READY`
//! with a reason within 10 s of the fault, data requests answer with the last committed data (or, while the
//! database itself is down, promptly with a retryable error envelope). After the dependency returns the
//! indexer resumes by itself, serves the orders locked during the outage, turns ready, and its store
//! equals a fresh index of the chain.
//!
//! `HOLDFAST_DRILL_SCALE=N` makes each outage N times longer (5 s at 1; 12 gives the minute of issue 11).

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use holdfast_store::{ChainReader, OrderReader};
use serde_json::Value;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

use crate::{
    common::{Killed, deployment_file, free_port},
    harness::{Chain, TestDb, drill_scale, index, pg_admin_url, snapshot},
};

/// `/readyz` must turn 503 within this long after the fault.
const NOT_READY_WITHIN: Duration = Duration::from_secs(10);
/// After the dependency returns: ready again and the outage's orders served within this long.
const RECOVERY_WITHIN: Duration = Duration::from_secs(30);
/// Longest a single API request may take during the drill (an answer, not a hang).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two rounds of requests while watching.
const ROUND: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_node_http() {
    drill(Fault::NodeHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_node_ws() {
    drill(Fault::NodeWs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_postgres_refuses_connections() {
    drill(Fault::Postgres).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The node, reached over http through the proxy, goes away.
    NodeHttp,
    /// The node, reached over a websocket through the proxy, goes away.
    NodeWs,
    /// Postgres refuses connections and terminates the open ones.
    Postgres,
}

impl Fault {
    fn what(self) -> &'static str {
        match self {
            Self::NodeHttp => "node (http)",
            Self::NodeWs => "node (ws)",
            Self::Postgres => "database",
        }
    }
}

async fn drill(fault: Fault) {
    let outage = Duration::from_secs(5 * drill_scale() as u64);
    let c = Chain::start().await;
    let db = match fault {
        Fault::Postgres => TestDb::postgres().await,
        Fault::NodeHttp | Fault::NodeWs => TestDb::sqlite().await,
    };
    let fresh_db = TestDb::sqlite().await;
    let deployment = deployment_file(&c, "outage");
    // Declared before the process and the proxy, so dropped after them, also when the test fails.
    let _cleanup = Cleanup::of(&[&db, &fresh_db], Vec::new());

    let mut proxy = match fault {
        Fault::NodeHttp | Fault::NodeWs => Some(Switch::start(c.anvil.port()).await),
        Fault::Postgres => None,
    };
    let rpc_url = match (fault, &proxy) {
        (Fault::NodeHttp, Some(p)) => format!("http://127.0.0.1:{}", p.port),
        (Fault::NodeWs, Some(p)) => format!("ws://127.0.0.1:{}", p.port),
        _ => c.anvil.ws_endpoint(),
    };
    let port = free_port();
    let api = Api::new(format!("http://127.0.0.1:{port}"));
    let mut run = Killed(
        Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "run", "--rpc-url", &rpc_url, "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll-ms", "100"])
            .args(["--ready-max-stall-secs", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn holdfast"),
    );
    wait_serving(&mut run, &api).await;

    // Before the outage: orders locked, indexed and served; the service is ready.
    let deliver_by = c.now().await + 86_400;
    let before: Vec<B256> = (1..=3).map(B256::with_last_byte).collect();
    for id in &before {
        c.lock(1, *id, c.addr(2), 1_000_000, Address::ZERO, deliver_by, 60).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ready, _) = api.get("/readyz").await.unwrap_or_else(|e| panic!("before the outage: {e}"));
        if ready == 200 && served(&api, &before).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "before the outage: not ready with the first orders served after 20 s"
        );
        tokio::time::sleep(ROUND).await;
    }
    let (status, list) = api.get("/v1/orders").await.unwrap();
    assert_eq!(status, 200, "{list}");
    assert_eq!(listed(&list), ids(&before), "before the outage: {list}");

    // The outage, with more orders locked on the chain meanwhile.
    let t0 = Instant::now();
    match &mut proxy {
        Some(p) => p.off().await,
        None => {
            let name = db.pg_name().expect("a Postgres store");
            pg_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).await;
            let killed = pg_admin(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .await;
            assert!(killed > 0, "holdfast had no open connection to terminate: the fault hit nothing");
        }
    }
    // Nothing connects while the proxy is off: what it accepts from here on comes after it is back.
    let accepted_before = proxy.as_ref().map(Switch::accepted);
    eprintln!("{}: down", fault.what());
    let during: Vec<B256> = (11..=13).map(B256::with_last_byte).collect();
    let lock_during = async {
        for id in &during {
            tokio::time::sleep(outage / 4).await;
            c.lock(1, *id, c.addr(2), 2_000_000, Address::ZERO, deliver_by, 60).await;
        }
    };
    let ((not_ready_after, reasons, rounds), ()) =
        tokio::join!(watch_outage(&api, &mut run, fault, &before, t0, outage), lock_during);
    eprintln!(
        "{}: /readyz said NOT_READY {not_ready_after:?} after the fault ({reasons:?}); {rounds} rounds of \
         requests answered during the {:?} outage",
        fault.what(),
        t0.elapsed()
    );

    // The dependency returns: the indexer catches up by itself.
    match &mut proxy {
        Some(p) => p.on().await,
        None => {
            let name = db.pg_name().unwrap();
            pg_admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).await;
        }
    }
    let t1 = Instant::now();
    eprintln!("{}: back", fault.what());
    loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            panic!("holdfast run exited after the {} came back ({status})", fault.what());
        }
        let (ready, body) = api.get("/readyz").await.unwrap_or_else(|e| panic!("after the outage: {e}"));
        let missing = served(&api, &during).await;
        if ready == 200 && missing.is_empty() {
            break;
        }
        assert!(
            t1.elapsed() < RECOVERY_WITHIN,
            "{RECOVERY_WITHIN:?} after the {} came back: /readyz {ready} ({body}), orders locked during the \
             outage not served: {missing:?}",
            fault.what()
        );
        tokio::time::sleep(ROUND).await;
    }
    eprintln!("{}: ready with every order served {:?} after its return", fault.what(), t1.elapsed());
    if let (Some(p), Some(n)) = (&proxy, accepted_before) {
        assert!(p.accepted() > n, "the indexer did not connect to the node again after it came back");
    }
    let (status, list) = api.get("/v1/orders").await.unwrap();
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        listed(&list),
        ids(&before).union(&ids(&during)).cloned().collect(),
        "after the outage: {list}"
    );

    // The store equals a fresh index of the chain (no new blocks from here on).
    let store = db.store().await;
    let head = c.provider.get_block_number().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cursor = store.chain_meta(31337).await.unwrap().map_or(0, |m| m.cursor);
        if cursor >= head {
            break;
        }
        assert!(Instant::now() < deadline, "the indexer stopped at block {cursor}, below the head {head}");
        tokio::time::sleep(ROUND).await;
    }
    let fresh = fresh_db.store().await;
    index(&c, &fresh).await;
    let (got, want) = (snapshot(&store).await, snapshot(&fresh).await);
    assert_eq!(got.len(), before.len() + during.len(), "{got:#?}");
    assert_eq!(got, want, "after the {} outage the store differs from a fresh index", fault.what());
    assert_eq!(store.counts(31337).await.unwrap(), fresh.counts(31337).await.unwrap());
    assert!(run.0.try_wait().unwrap().is_none(), "holdfast run exited");
    drop(run);
    store.close().await;
    fresh.close().await;
}

/// Watch the API from the fault until it has lasted `outage` and `/readyz` said NOT_READY (at most
/// [`NOT_READY_WITHIN`]). Every round: `/healthz` 200, `/readyz` 200 only before its first 503, the
/// orders committed before the fault served (or, with the database down, a prompt retryable error
/// envelope). Returns when `/readyz` first said NOT_READY, its reasons, and the number of rounds.
async fn watch_outage(
    api: &Api,
    run: &mut Killed,
    fault: Fault,
    before: &[B256],
    t0: Instant,
    outage: Duration,
) -> (Duration, Vec<String>, usize) {
    let what = fault.what();
    let mut not_ready: Option<(Duration, Vec<String>)> = None;
    let mut last_ready = Value::Null;
    let mut rounds = 0;
    loop {
        let at = t0.elapsed();
        match &not_ready {
            Some((after, reasons)) if at >= outage => return (*after, reasons.clone(), rounds),
            Some(_) => {}
            None => assert!(
                at < NOT_READY_WITHIN,
                "/readyz still not NOT_READY {at:?} into the {what} outage; it answered: {last_ready}"
            ),
        }
        if let Some(status) = run.0.try_wait().unwrap() {
            panic!("holdfast run exited {at:?} into the {what} outage ({status})");
        }
        let ctx = |e: String| format!("{e} ({at:?} into the {what} outage)");

        let (status, body) = api.get("/healthz").await.unwrap_or_else(|e| panic!("{}", ctx(e)));
        assert_eq!(status, 200, "/healthz {at:?} into the {what} outage: {body}");

        let (status, body) = api.get("/readyz").await.unwrap_or_else(|e| panic!("{}", ctx(e)));
        match status {
            503 => {
                let reasons = not_ready_reasons(&body);
                not_ready.get_or_insert((t0.elapsed(), reasons));
            }
            200 => assert!(
                not_ready.is_none(),
                "/readyz answered 200 again {at:?} into the {what} outage, while it is still down: {body}"
            ),
            _ => panic!("/readyz answered {status} {at:?} into the {what} outage: {body}"),
        }
        last_ready = body;

        for id in before {
            let path = format!("/v1/orders/{id}");
            let (status, body) = api.get(&path).await.unwrap_or_else(|e| panic!("{}", ctx(e)));
            match status {
                200 => assert_held(&body, id, &format!("GET {path} {at:?} into the {what} outage")),
                500..=599 if fault == Fault::Postgres => {
                    assert_retryable_envelope(&body, &format!("GET {path} {at:?} into the {what} outage"))
                }
                _ => panic!("GET {path} answered {status} {at:?} into the {what} outage: {body}"),
            }
        }
        let (status, body) = api.get("/v1/orders").await.unwrap_or_else(|e| panic!("{}", ctx(e)));
        match status {
            // The last committed data: what was indexed before the fault, nothing locked since.
            200 => {
                assert_eq!(listed(&body), ids(before), "GET /v1/orders {at:?} into the {what} outage: {body}")
            }
            500..=599 if fault == Fault::Postgres => {
                assert_retryable_envelope(&body, &format!("GET /v1/orders {at:?} into the {what} outage"))
            }
            _ => panic!("GET /v1/orders answered {status} {at:?} into the {what} outage: {body}"),
        }
        rounds += 1;
        tokio::time::sleep(ROUND).await;
    }
}

/// The reasons of a `503 NOT_READY` (at least one, each a non-empty string).
fn not_ready_reasons(body: &Value) -> Vec<String> {
    assert_eq!(body["error"]["code"], "NOT_READY", "/readyz 503: {body}");
    let reasons = body["error"]["details"]["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("/readyz 503 without error.details.reasons: {body}"));
    assert!(!reasons.is_empty(), "/readyz 503 without a reason: {body}");
    reasons
        .iter()
        .map(|r| match r.as_str() {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => panic!("/readyz 503 with a reason that is not a non-empty string: {body}"),
        })
        .collect()
}

/// A store failure is answered with the error envelope, marked retryable.
fn assert_retryable_envelope(body: &Value, what: &str) {
    let err = &body["error"];
    assert!(err["code"].as_str().is_some_and(|c| !c.is_empty()), "{what}: no error envelope: {body}");
    assert!(err["message"].is_string(), "{what}: no error message: {body}");
    assert_eq!(err["retryable"], true, "{what}: a store outage must be retryable: {body}");
}

fn assert_held(order: &Value, id: &B256, what: &str) {
    assert_eq!(
        order["orderId"].as_str().map(str::to_lowercase),
        Some(id.to_string()),
        "{what}: wrong order: {order}"
    );
    assert_eq!(order["status"], "held", "{what}: {order}");
}

/// Which of `ids` `GET /v1/orders/{id}` does not (yet) serve as held.
async fn served(api: &Api, ids: &[B256]) -> Vec<B256> {
    let mut missing = Vec::new();
    for id in ids {
        let path = format!("/v1/orders/{id}");
        match api.get(&path).await {
            Ok((200, body)) => assert_held(&body, id, &format!("GET {path}")),
            Ok(_) => missing.push(*id),
            Err(e) => panic!("{e}"),
        }
    }
    missing
}

fn ids(ids: &[B256]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// The order ids of a `GET /v1/orders` page.
fn listed(page: &Value) -> BTreeSet<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not an order list: {page}"))
        .iter()
        .map(|o| o["orderId"].as_str().expect("orderId").to_lowercase())
        .collect()
}

/// The API under test, every request bounded by [`REQUEST_TIMEOUT`].
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(base: String) -> Self {
        Self { base, client: reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap() }
    }

    /// Status and JSON body; `Err` when the server does not answer in time or answers something not JSON.
    async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        let resp = self.client.get(format!("{}{path}", self.base)).send().await.map_err(|e| {
            let mut msg = format!("GET {path} got no answer within {REQUEST_TIMEOUT:?}: {e}");
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("GET {path}: {status}, body unreadable: {e}"))?;
        let body = serde_json::from_str(&text)
            .map_err(|e| format!("GET {path}: {status} with a body that is not JSON ({e}): {text:.300}"))?;
        Ok((status, body))
    }
}

/// Wait (up to 10 s) until the process serves `/healthz`; fail at once if it exits.
async fn wait_serving(run: &mut Killed, api: &Api) {
    for _ in 0..200 {
        if let Some(status) = run.0.try_wait().unwrap() {
            panic!("holdfast run exited before serving ({status}); its stderr is above");
        }
        if matches!(api.get("/healthz").await, Ok((200, _))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("holdfast run never served /healthz");
}

/// Run one statement as the Postgres admin; returns the number of rows it returned.
async fn pg_admin(sql: &str) -> usize {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.expect("postgres admin connection");
    let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
    rows.len()
}

/// A TCP proxy on 127.0.0.1 in front of a local port, switched off (every forwarded connection is cut and
/// every new one is reset at once, as by a node that is down) and on (connections are forwarded again).
///
/// The proxy keeps its listening socket for its whole life: closing it and listening again on the same port
/// would race with every other test on the machine for that port (and a connect to a closed port in the
/// ephemeral range can even connect to itself).
struct Switch {
    port: u16,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// Forwarded connections open now.
    open: Arc<AtomicUsize>,
    /// Whether connections are forwarded.
    up: tokio::sync::watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Counts an open forwarded connection until dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Switch {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, open): (Arc<AtomicUsize>, Arc<AtomicUsize>) = (Arc::default(), Arc::default());
        let (up, up_rx) = tokio::sync::watch::channel(true);
        let task = {
            let (accepted, open) = (accepted.clone(), open.clone());
            tokio::spawn(async move {
                // Aborted with this task: every forwarding task.
                let mut conns = JoinSet::new();
                loop {
                    tokio::select! {
                        r = listener.accept() => {
                            let Ok((mut inbound, _)) = r else { continue };
                            if !*up_rx.borrow() {
                                // Down: reset the connection at once (no FIN handshake, no forwarding).
                                let _ = inbound.set_zero_linger();
                                drop(inbound);
                                continue;
                            }
                            accepted.fetch_add(1, Ordering::SeqCst);
                            open.fetch_add(1, Ordering::SeqCst);
                            let guard = Open(open.clone());
                            let mut down = up_rx.clone();
                            conns.spawn(async move {
                                let _guard = guard;
                                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                                    return;
                                };
                                tokio::select! {
                                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                    _ = down.wait_for(|up| !*up) => {
                                        let _ = inbound.set_zero_linger();
                                    }
                                }
                            });
                        }
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
            })
        };
        Self { port, accepted, open, up, task }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Forward connections again.
    async fn on(&mut self) {
        assert!(!*self.up.borrow(), "the proxy is on already");
        self.up.send_replace(true);
    }

    /// Cut every forwarded connection and reset new ones; returns once no connection is forwarded and a
    /// new one gets nothing through.
    async fn off(&mut self) {
        assert!(*self.up.borrow(), "the proxy is off already");
        self.up.send_replace(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.open.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "forwarded connections still open after the proxy was switched off"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Ok(mut probe) = TcpStream::connect(("127.0.0.1", self.port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = probe.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(2), probe.read(&mut buf)).await;
            assert!(
                matches!(read, Ok(Ok(0) | Err(_))),
                "a connection through the switched-off proxy got an answer: {read:?}"
            );
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Removes the drill's stores and files when dropped, also when the test fails: the SQLite files, and the
/// Postgres databases (dropped with `FORCE`, whether or not they accept connections at that moment).
struct Cleanup {
    pg: Vec<String>,
    files: Vec<PathBuf>,
}

impl Cleanup {
    fn of(dbs: &[&TestDb], mut files: Vec<PathBuf>) -> Self {
        let pg = dbs.iter().filter_map(|d| d.pg_name().map(str::to_string)).collect();
        for db in dbs {
            if let Some(f) = db.file() {
                for suffix in ["", "-wal", "-shm"] {
                    files.push(PathBuf::from(format!("{}{suffix}", f.display())));
                }
            }
        }
        Self { pg, files }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        let names = std::mem::take(&mut self.pg);
        if names.is_empty() {
            return;
        }
        // A runtime of its own on a thread of its own: this may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await else { return };
                for name in names {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                        eprintln!("{sql}: {e}");
                    }
                }
            });
        })
        .join();
    }
}
