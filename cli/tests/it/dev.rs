//! `holdfast dev`: the real binary brings up anvil + MockUSDC + escrow + indexer + API, stops cleanly on
//! Ctrl-C (SIGINT) without leaving anvil behind, resumes chain and store with `--keep`, and starts fresh
//! without it.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

use crate::{
    common::{free_port, get},
    harness::{random_hex, root},
};

/// A running `holdfast dev`, with what its banner printed.
pub(crate) struct DevStack {
    child: Option<Child>,
    pub(crate) banner: String,
    pub(crate) rpc: String,
    pub(crate) api: String,
    pub(crate) anvil_port: u16,
    pub(crate) deployment: PathBuf,
    lines: mpsc::Receiver<String>,
    /// The anvils this run started (from their pid files): killed on drop if they outlive `holdfast dev`,
    /// so a failing test never leaves one behind.
    anvil: AnvilGuard,
}

/// The most chains `holdfast dev --chains` runs (chain ids 31337 to 31340).
const MAX_CHAINS: u16 = 4;

/// The dev directory's pid file of chain `index` (from 0): `anvil.pid`, then `anvil-31338.pid`, ….
fn pid_file(dir: &Path, index: u16) -> PathBuf {
    if index == 0 {
        dir.join("anvil.pid")
    } else {
        dir.join(format!("anvil-{}.pid", 31337 + u64::from(index)))
    }
}

/// Kills (SIGKILL) the anvils with these pids when dropped, those that are still an anvil (`None`:
/// nothing to kill).
pub(crate) struct AnvilGuard(Option<Vec<u32>>);

impl AnvilGuard {
    /// The anvils recorded in the pid files of `place`'s dev directory, of every chain.
    fn of(place: &DevPlace) -> Self {
        let pids = (0..MAX_CHAINS)
            .filter_map(|i| std::fs::read_to_string(pid_file(&place.dir, i)).ok())
            .filter_map(|text| text.split_whitespace().next().and_then(|p| p.parse().ok()))
            .collect();
        Self(Some(pids))
    }

    /// How many anvils this guard holds.
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, Vec::len)
    }
}

impl Drop for AnvilGuard {
    fn drop(&mut self) {
        for pid in self.0.take().into_iter().flatten() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            if argv0.ends_with(b"anvil") {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
    }
}

/// Options of one dev run: its own ports, data directory and deployment file (so tests don't collide
/// with each other or with a developer's `deployments/31337.local.json`).
#[derive(Clone)]
pub(crate) struct DevPlace {
    pub(crate) dir: PathBuf,
    pub(crate) deployment_rel: String,
    pub(crate) anvil_port: u16,
    pub(crate) api_port: u16,
    /// `--chains`: chain k's anvil listens on `anvil_port + k`.
    pub(crate) chains: u16,
}

impl DevPlace {
    pub(crate) fn new() -> Self {
        Self::with_chains(1)
    }

    /// A place for `holdfast dev --chains N`: ports `anvil_port` to `anvil_port + N - 1` were all free.
    pub(crate) fn with_chains(chains: u16) -> Self {
        let id = random_hex();
        let anvil_port = loop {
            let port = free_port();
            let rest_free = (1..chains).all(|k| {
                port.checked_add(k).is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
            });
            if rest_free {
                break port;
            }
        };
        let api_port = loop {
            let port = free_port();
            if !(anvil_port..anvil_port + chains).contains(&port) {
                break port;
            }
        };
        Self {
            dir: std::env::temp_dir().join(format!("holdfast-dev-{id}")),
            deployment_rel: format!("deployments/test-dev-{id}.local.json"),
            anvil_port,
            api_port,
            chains,
        }
    }

    /// Chain `chain_id`'s deployment file, relative to the project root: the first chain's is
    /// `deployment_rel`, the others' carry their chain id (`test-dev-ID-31338.local.json`), as `holdfast
    /// dev --chains` names them.
    pub(crate) fn deployment_rel_of(&self, chain_id: u64) -> String {
        if chain_id == 31337 {
            return self.deployment_rel.clone();
        }
        let (stem, rest) = self.deployment_rel.split_once('.').unwrap();
        format!("{stem}-{chain_id}.{rest}")
    }

    /// Environment that points `holdfast dev` and every other `holdfast` command at this place.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOLDFAST_DEV_PORT".into(), self.anvil_port.to_string()),
            ("HOLDFAST_LISTEN".into(), format!("127.0.0.1:{}", self.api_port)),
            ("HOLDFAST_DEV_DIR".into(), self.dir.display().to_string()),
            ("HOLDFAST_DEV_DEPLOYMENT".into(), self.deployment_rel.clone()),
            ("HOLDFAST_DEPLOYMENTS".into(), root().join(&self.deployment_rel).display().to_string()),
            ("HOLDFAST_RPC_URL".into(), format!("http://127.0.0.1:{}", self.anvil_port)),
            ("HOLDFAST_API_URL".into(), format!("http://127.0.0.1:{}", self.api_port)),
            ("HOLDFAST_DEV_CHAINS".into(), self.chains.to_string()),
        ]
    }

    /// A guard that cleans up this place when dropped, also when the test fails (declare it before the
    /// `DevStack`, so that the stack stops first).
    pub(crate) fn cleaned_up_on_drop(&self) -> CleanUp {
        CleanUp(self.clone())
    }

    /// Remove the dev directory and the deployment files of every chain.
    pub(crate) fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for k in 0..MAX_CHAINS {
            let _ = std::fs::remove_file(root().join(self.deployment_rel_of(31337 + u64::from(k))));
        }
    }
}

/// Cleans up its place (dev directory, deployment files) when dropped.
pub(crate) struct CleanUp(DevPlace);

impl Drop for CleanUp {
    fn drop(&mut self) {
        self.0.cleanup();
    }
}

impl DevStack {
    pub(crate) fn start(place: &DevPlace, keep: bool) -> Self {
        Self::start_with(place, if keep { &["--keep"] } else { &[] })
    }

    /// `holdfast dev ARGS…` at `place`.
    pub(crate) fn start_with(place: &DevPlace, args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast"));
        cmd.args(["--log", "warn", "dev"]).args(args).current_dir(root()).envs(place.env());
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn holdfast dev");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // stderr is passed through to the test's own (as when inherited) and kept, so a failure to start
        // says why.
        let stderr = child.stderr.take().unwrap();
        let errors = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let kept = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut kept = kept.lock().unwrap();
                kept.push_str(&line);
                kept.push('\n');
            }
        });
        let mut banner = String::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(300)) {
                Ok(line) => {
                    banner.push_str(&line);
                    banner.push('\n');
                    if line.starts_with("Ctrl-C stops everything") {
                        break;
                    }
                }
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => "still running after 300 s".to_string(),
                        mpsc::RecvTimeoutError::Disconnected => "closed its stdout".to_string(),
                    };
                    let _ = child.kill();
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                    drop(AnvilGuard::of(place));
                    std::thread::sleep(Duration::from_millis(200));
                    let errors = errors.lock().unwrap().clone();
                    panic!(
                        "holdfast dev printed no banner ({why}; {status}); stdout so far:\n{banner}\nstderr:\n{errors}"
                    );
                }
            }
        }
        Self {
            child: Some(child),
            banner,
            rpc: format!("http://127.0.0.1:{}", place.anvil_port),
            api: format!("http://127.0.0.1:{}", place.api_port),
            anvil_port: place.anvil_port,
            deployment: root().join(&place.deployment_rel),
            lines,
            anvil: AnvilGuard::of(place),
        }
    }

    /// Ctrl-C: SIGINT to `holdfast dev` only (as a terminal would send it to the foreground process, which
    /// runs anvil in its own process group). Returns what it printed after the banner.
    pub(crate) fn interrupt(mut self) -> String {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("holdfast dev did not stop within 30 s of SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "holdfast dev exited with {status} on SIGINT");
        let rest: Vec<String> = self.lines.try_iter().collect();
        rest.join("\n")
    }

    /// The value printed after `label` on the banner line that starts with it.
    pub(crate) fn banner_field(&self, label: &str) -> String {
        let line = self.banner.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| {
            panic!("no {label} line in the banner:\n{}", self.banner);
        });
        line.trim_start()[label.len()..].split_whitespace().next().unwrap().to_string()
    }
}

impl Drop for DevStack {
    /// A test that failed with the stack up: Ctrl-C it (up to 30 s to stop anvil itself), then SIGKILL
    /// what is left; `self.anvil` then kills its anvil if it still runs.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn cast(args: &[&str]) -> String {
    let out = Command::new(root().join("node_modules/.bin/cast")).args(args).output().expect("run cast");
    assert!(out.status.success(), "cast {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Lock `amount` base units for `order_id` from anvil account 0 to account 1 with `cast`; returns the tx hash.
fn lock_with_cast(dev: &DevStack, key0: &str, payee: &str, order_id: &str, amount: u64) -> String {
    let chain = DevChain {
        rpc: dev.rpc.clone(),
        escrow: dev.banner_field("Escrow"),
        token: dev.banner_field("Token"),
    };
    lock_on(&chain, key0, payee, order_id, amount)
}

/// One chain of a `holdfast dev --chains N` run, as its banner lists it.
struct DevChain {
    rpc: String,
    escrow: String,
    token: String,
}

impl DevChain {
    /// Chain `chain_id` in the banner's list of chains: its `chain ID  RPC URL …` line and the `Escrow` and
    /// `Token` lines under it.
    fn of(dev: &DevStack, chain_id: u64) -> Self {
        let head = format!("chain {chain_id} ");
        let lines: Vec<&str> =
            dev.banner.lines().map(str::trim_start).skip_while(|l| !l.starts_with(&head)).take(4).collect();
        let field = |label: &str| -> String {
            let line = lines
                .iter()
                .find_map(|l| l.split_once(&format!("{label} ")).map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("no {label} for chain {chain_id} in the banner:\n{}", dev.banner));
            line.split_whitespace().next().unwrap().to_string()
        };
        Self { rpc: field("RPC"), escrow: field("Escrow"), token: field("Token") }
    }
}

/// Lock `amount` base units for `order_id` on `chain` from anvil account 0 (`key0`) to `payee` with `cast`;
/// returns the tx hash.
fn lock_on(chain: &DevChain, key0: &str, payee: &str, order_id: &str, amount: u64) -> String {
    let DevChain { rpc, escrow, token } = chain;
    let amount = amount.to_string();
    cast(&["send", "--private-key", key0, "-r", rpc, token, "approve(address,uint256)", escrow, &amount]);
    let receipt = cast(&[
        "send",
        "--json",
        "--private-key",
        key0,
        "-r",
        rpc,
        escrow,
        "lock(bytes32,address,uint256,address,uint64,uint32)",
        order_id,
        payee,
        &amount,
        "0x0000000000000000000000000000000000000000",
        "4000000000",
        "3600",
    ]);
    let receipt: Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(receipt["status"], "0x1", "lock reverted: {receipt}");
    receipt["transactionHash"].as_str().unwrap().to_string()
}

fn account(banner: &str, i: usize) -> (String, String) {
    let prefix = format!("({i}) ");
    let line = banner.lines().map(str::trim_start).find(|l| l.starts_with(&prefix)).expect("account line");
    let parts: Vec<&str> = line.split_whitespace().collect();
    (parts[1].to_string(), parts[3].to_string())
}

fn port_is_closed(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_err()
}

fn order_hex(n: u8) -> String {
    format!("0x{}{n:02x}", "00".repeat(31))
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_stops_cleanly_resumes_with_keep_and_starts_fresh_without() {
    let place = DevPlace::new();

    // 1. Fresh stack: banner, a funded account, the API over an empty store, the default commands' file.
    let dev = DevStack::start(&place, false);
    assert!(dev.banner.contains("fresh chain and store"), "{}", dev.banner);
    for label in [
        "RPC",
        "Escrow",
        "Token",
        "API",
        "Data",
        "(0) ",
        "(9) ",
        "holdfast order lock",
        "holdfast order show",
    ] {
        assert!(dev.banner.contains(label), "banner lacks {label}:\n{}", dev.banner);
    }
    assert!(exists(&dev.deployment), "the deployment file {} was not written", dev.deployment.display());
    let (a0, key0) = account(&dev.banner, 0);
    let (a1, _) = account(&dev.banner, 1);
    let token = dev.banner_field("Token");
    // 1,000,000 USDC minted to each account.
    let balance = cast(&["call", "-r", &dev.rpc, &token, "balanceOf(address)(uint256)", &a0]);
    assert!(balance.starts_with("1000000000000"), "account 0 holds {balance}");
    let (status, body) = get(&format!("{}/v1/orders", dev.api)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"], serde_json::json!([]));

    // 2. An order locked on the dev chain is indexed and served.
    let first = order_hex(1);
    let tx = lock_with_cast(&dev, &key0, &a1, &first, 12_500_000);
    let (status, body) = get(&format!("{}/v1/transactions/{tx}?wait=10&finality=pending", dev.api)).await;
    assert_eq!(status, 200, "{body}");
    let (status, order) = get(&format!("{}/v1/orders/{first}", dev.api)).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["amount"], "12500000");
    assert_eq!(order["payer"].as_str().unwrap().to_lowercase(), a0.to_lowercase());

    // 3. Ctrl-C: everything stops, anvil included (its port is free again), and the state is saved.
    let out = dev.interrupt();
    assert!(out.contains("stopped."), "{out}");
    assert!(port_is_closed(place.anvil_port), "anvil still listens on {} after Ctrl-C", place.anvil_port);
    assert!(port_is_closed(place.api_port), "the API still listens after Ctrl-C");
    assert!(place.dir.join("anvil-state.json").exists());

    // 4. --keep: the same chain (the indexer resumes from its checkpoint, no reset) and the same store.
    let dev = DevStack::start(&place, true);
    assert!(dev.banner.contains("resumed from the previous run"), "{}", dev.banner);
    let (status, order) = get(&format!("{}/v1/orders/{first}", dev.api)).await;
    assert_eq!(status, 200, "the order from before the restart is gone: {order}");
    let second = order_hex(2);
    let tx = lock_with_cast(&dev, &key0, &a1, &second, 1_000_000);
    let (status, body) = get(&format!("{}/v1/transactions/{tx}?wait=10&finality=pending", dev.api)).await;
    assert_eq!(status, 200, "a lock after the resume was not indexed: {body}");
    let (_, list) = get(&format!("{}/v1/orders", dev.api)).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    let (_, ready) = get(&format!("{}/readyz", dev.api)).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    dev.interrupt();
    assert!(port_is_closed(place.anvil_port));

    // 5. Without --keep: a fresh chain and an empty store.
    let dev = DevStack::start(&place, false);
    assert!(dev.banner.contains("fresh chain and store"), "{}", dev.banner);
    let (status, body) = get(&format!("{}/v1/orders/{first}", dev.api)).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "ORDER_NOT_FOUND");
    dev.interrupt();
    assert!(port_is_closed(place.anvil_port));
    place.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_refuses_a_busy_port_with_a_clear_message() {
    let place = DevPlace::new();
    let _busy = std::net::TcpListener::bind(("127.0.0.1", place.anvil_port)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["dev"])
        .current_dir(root())
        .envs(place.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {} on 127.0.0.1 is not free", place.anvil_port)), "{err}");
    assert!(err.contains("--port"), "{err}");
    place.cleanup();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_after_a_kill_9_stops_the_leftover_anvil_and_starts() {
    let place = DevPlace::new();
    let mut dev = DevStack::start(&place, false);
    // SIGKILL: no chance to stop anvil, which runs in its own process group and stays up.
    let mut child = dev.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The next `holdfast dev` is to stop it; if the test fails first, this guard does.
    let _leftover = std::mem::replace(&mut dev.anvil, AnvilGuard(None));
    assert!(!port_is_closed(place.anvil_port), "anvil is expected to survive a SIGKILL of holdfast dev");
    drop(dev);

    let dev = DevStack::start(&place, false);
    assert!(dev.banner.contains("stopping the anvil (pid"), "{}", dev.banner);
    assert!(dev.banner.contains("fresh chain and store"), "{}", dev.banner);
    let (status, _) = get(&format!("{}/healthz", dev.api)).await;
    assert_eq!(status, 200);
    dev.interrupt();
    assert!(port_is_closed(place.anvil_port));
    place.cleanup();
}

/// A Ctrl-C while `holdfast dev` is still starting (anvil up, contracts deploying) stops anvil too: the
/// signal is handled from the first moment, never left to the default action that would kill `holdfast
/// dev` alone and leave anvil, in its own process group, running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_interrupted_while_starting_stops_anvil() {
    let place = DevPlace::new();
    let child = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["--log", "warn", "dev"])
        .current_dir(root())
        .envs(place.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut child = crate::common::Killed(child);
    // Wait for anvil to answer: from then on until the banner, `holdfast dev` is deploying.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while port_is_closed(place.anvil_port) {
        assert!(std::time::Instant::now() < deadline, "anvil never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _anvil = AnvilGuard::of(&place);
    let status = Command::new("kill").args(["-INT", &child.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "holdfast dev did not stop within 30 s of SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "holdfast dev exited with {status} on a SIGINT during start-up");
    assert!(port_is_closed(place.anvil_port), "anvil still listens after a Ctrl-C during start-up");
    place.cleanup();
}

/// The banner's "Try it" lines (without the two-space indent), up to the blank line after them.
fn try_it_block(banner: &str) -> Vec<String> {
    banner
        .lines()
        .skip_while(|l| !l.starts_with("Try it"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

/// `lines` in bash (`set -euo pipefail`) in `dir`, with none of the HOLDFAST_* variables the test process or
/// the developer's shell may have: only what the lines themselves export.
fn pasted(lines: &[String], dir: &Path) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!("set -euo pipefail\n{}", lines.join("\n"))).current_dir(dir).env_clear();
    for var in ["PATH", "HOME", "LANG"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.output().unwrap()
}

/// The banner's commands work for the ports (and deployment file) this `holdfast dev` chose: pasted as is
/// into a shell without any HOLDFAST_* variable, in a directory outside the checkout, they lock, deliver,
/// wait, release and read the order on this stack — never the defaults 8545/8080, where another devnet (with
/// the same chain id and addresses) may be running. Once the stack is stopped, they fail naming the node's
/// URL once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_banner_commands_work_on_the_ports_it_chose() {
    let place = DevPlace::new();
    let dev = DevStack::start(&place, false);
    let block = try_it_block(&dev.banner);
    let rpc = format!("http://127.0.0.1:{}", place.anvil_port);
    let api = format!("http://127.0.0.1:{}", place.api_port);
    for export in [
        format!("export HOLDFAST_RPC_URL={rpc}"),
        format!("export HOLDFAST_API_URL={api}"),
        format!("export HOLDFAST_DEPLOYMENTS={}", dev.deployment.display()),
    ] {
        assert!(block.contains(&export), "the banner lacks {export}:\n{}", dev.banner);
    }
    let elsewhere = std::env::temp_dir().join(format!("holdfast-paste-{}", random_hex()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = pasted(&block, &elsewhere);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the banner's commands failed:\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        block.join("\n")
    );
    let (a0, _) = account(&dev.banner, 0);
    let (a1, _) = account(&dev.banner, 1);
    let id = format!("{:#x}", crate::common::ref_id(a0.parse().unwrap(), a1.parse().unwrap(), "demo-1"));
    assert!(stdout.contains(&format!("\"orderId\":\"{id}\"")), "curl did not print the order:\n{stdout}");
    let (status, order) = get(&format!("{api}/v1/orders/{id}")).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["released"], "12500000", "{order}");
    dev.interrupt();

    // Stopped: the same commands fail, and say which node they could not reach — once.
    let lock: Vec<String> =
        block.iter().filter(|l| l.starts_with("export ") || l.contains("order lock")).cloned().collect();
    let out = pasted(&lock, &elsewhere);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot reach the node at {rpc}/")), "{stderr}");
    assert_eq!(
        stderr.matches(&format!("127.0.0.1:{}", place.anvil_port)).count(),
        1,
        "the URL is repeated: {stderr}"
    );
    let show = format!("holdfast order show demo-1 --payee {a1}");
    let exports: Vec<String> = block.iter().filter(|l| l.starts_with("export ")).cloned().collect();
    let out = pasted(&[exports, vec![show]].concat(), &elsewhere);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot reach the API at {api}/")), "{stderr}");
    assert_eq!(
        stderr.matches(&format!("127.0.0.1:{}", place.api_port)).count(),
        1,
        "the URL is repeated: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&elsewhere);
    place.cleanup();
}

/// Poll `url` (up to 10 s) until `ok(status, body)`; returns the last answer.
async fn until(url: &str, ok: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(url).await;
        if ok(status, &body) || std::time::Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// On an idle devnet, `safe` and `finalized` reach a transaction within seconds (anvil's epoch is one block
/// and `holdfast dev` mines empty blocks until the last transaction is finalized), so `?finality=safe` and
/// `finalized` long-polls complete; then the chain stays idle (no block is mined for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_safe_and_finalized_advance_on_an_idle_devnet() {
    let place = DevPlace::new();
    let dev = DevStack::start(&place, false);
    let (_, key0) = account(&dev.banner, 0);
    let (a1, _) = account(&dev.banner, 1);
    let tx = lock_with_cast(&dev, &key0, &a1, &order_hex(7), 1_000_000);
    for finality in ["safe", "finalized"] {
        let (status, body) =
            get(&format!("{}/v1/transactions/{tx}?wait=8&finality={finality}", dev.api)).await;
        assert_eq!(status, 200, "the lock did not become {finality} on an idle devnet: {body}");
        assert_eq!(body["finality"], finality, "{body}");
    }
    // The CLI's own wait, as the help's examples use it.
    let out = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["order", "show", &order_hex(7), "--wait", "10", "--finality", "finalized", "--json"])
        .envs(place.env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Idle: once everything is finalized, no more blocks.
    let head = cast(&["block-number", "-r", &dev.rpc]);
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(cast(&["block-number", "-r", &dev.rpc]), head, "the idle devnet keeps mining");
    assert!(dev.banner.contains("safe = head − 1, finalized = head − 2"), "{}", dev.banner);
    dev.interrupt();
    place.cleanup();
}

/// `holdfast dev --keep` resumes the same chain any number of times: anvil adds a genesis block to its state
/// file at every start, and block 0 used to change after a few restarts (the indexer then halted with "the
/// chain was reset"). And `--reset` is the way out of a store that does not match the chain: it keeps the
/// chain and re-indexes it into a new store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_keep_survives_many_restarts_and_reset_reindexes() {
    let place = DevPlace::new();
    let dev = DevStack::start(&place, false);
    let genesis = cast(&["block", "0", "-f", "hash", "-r", &dev.rpc]);
    let (_, key0) = account(&dev.banner, 0);
    let (a1, _) = account(&dev.banner, 1);
    let first = order_hex(1);
    let tx = lock_with_cast(&dev, &key0, &a1, &first, 1_000_000);
    let (status, _) = get(&format!("{}/v1/transactions/{tx}?wait=10&finality=pending", dev.api)).await;
    assert_eq!(status, 200);
    dev.interrupt();

    for restart in 1..=7 {
        if restart == 4 {
            // A data directory from before `holdfast dev` recorded the genesis block: it is read from
            // anvil's state file.
            std::fs::remove_file(place.dir.join("genesis.json")).unwrap();
        }
        let dev = DevStack::start(&place, true);
        assert!(dev.banner.contains("resumed from the previous run"), "{}", dev.banner);
        let now = cast(&["block", "0", "-f", "hash", "-r", &dev.rpc]);
        assert_eq!(now, genesis, "restart {restart}: the resumed chain has another genesis block");
        let (_, ready) = until(&format!("{}/readyz", dev.api), |_, b| b["status"] == "ready").await;
        assert_eq!(ready["status"], "ready", "restart {restart}: {ready}");
        let (status, order) = get(&format!("{}/v1/orders/{first}", dev.api)).await;
        assert_eq!(status, 200, "restart {restart}: {order}");
        dev.interrupt();
    }

    // A data directory of an older `holdfast dev`, whose anvil state file already holds several blocks 0
    // (anvil restarted on it without a fixed genesis timestamp): the extra ones are dropped, and the chain
    // keeps its genesis from then on.
    std::fs::remove_file(place.dir.join("genesis.json")).unwrap();
    for _ in 0..3 {
        let mut anvil = crate::common::Killed(
            Command::new(root().join("node_modules/.bin/anvil"))
                .args(["--port", &place.anvil_port.to_string(), "--preserve-historical-states", "--state"])
                .arg(place.dir.join("anvil-state.json"))
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        while port_is_closed(place.anvil_port) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(1_100)); // a genesis stamped a second later
        Command::new("kill").args(["-INT", &anvil.0.id().to_string()]).status().unwrap();
        anvil.0.wait().unwrap();
    }
    let zeros = || {
        let state = std::fs::read_to_string(place.dir.join("anvil-state.json")).unwrap();
        let state: Value = serde_json::from_str(&state).unwrap();
        state["blocks"].as_array().unwrap().iter().filter(|b| b["header"]["number"] == "0x0").count()
    };
    assert!(zeros() > 1, "expected an old-style state file with several blocks 0, found {}", zeros());
    for restart in 1..=3 {
        let dev = DevStack::start(&place, true);
        assert_eq!(zeros(), 1, "old state file, restart {restart}: the extra blocks 0 are still there");
        let now = cast(&["block", "0", "-f", "hash", "-r", &dev.rpc]);
        assert_eq!(now, genesis, "old state file, restart {restart}: another genesis block");
        let (_, ready) = until(&format!("{}/readyz", dev.api), |_, b| b["status"] == "ready").await;
        assert_eq!(ready["status"], "ready", "old state file, restart {restart}: {ready}");
        dev.interrupt();
    }

    // A store that does not match the chain (here: the store of this chain, under a new chain): --keep
    // halts the indexer, --reset keeps the chain and re-indexes it.
    let files = ["holdfast.db", "holdfast.db-wal", "holdfast.db-shm"];
    let aside = place.dir.join("aside");
    std::fs::create_dir_all(&aside).unwrap();
    for f in files {
        let _ = std::fs::copy(place.dir.join(f), aside.join(f));
    }
    let dev = DevStack::start(&place, false);
    let genesis = cast(&["block", "0", "-f", "hash", "-r", &dev.rpc]);
    dev.interrupt();
    for f in files {
        let _ = std::fs::remove_file(place.dir.join(f));
        let _ = std::fs::copy(aside.join(f), place.dir.join(f));
    }
    let dev = DevStack::start(&place, true);
    let (_, ready) =
        until(&format!("{}/readyz", dev.api), |_, b| b.to_string().contains("the chain was reset")).await;
    assert!(ready.to_string().contains("the chain was reset"), "{ready}");
    drop(dev);
    assert!(port_is_closed(place.anvil_port));

    let dev = DevStack::start_with(&place, &["--reset"]);
    assert!(dev.banner.contains("store wiped and re-indexed"), "{}", dev.banner);
    assert_eq!(cast(&["block", "0", "-f", "hash", "-r", &dev.rpc]), genesis, "--reset must keep the chain");
    let (_, ready) = until(&format!("{}/readyz", dev.api), |_, b| b["status"] == "ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let (status, body) = get(&format!("{}/v1/orders/{first}", dev.api)).await;
    assert_eq!(status, 404, "the old chain's order is still served: {body}");
    dev.interrupt();
    place.cleanup();
}

/// The chain ids of `/v1/orders…`'s orders, and their order ids, in the order served.
fn orders_of(list: &Value) -> Vec<(u64, String)> {
    list["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list of orders: {list}"))
        .iter()
        .map(|o| (o["chainId"].as_u64().unwrap(), o["orderId"].as_str().unwrap().to_string()))
        .collect()
}

/// `holdfast dev --chains 2`: two anvils (chain ids 31337 and 31338, on the port and the next one), each with
/// its escrow, indexed into one store and served by one API. An order locked on each chain is served under
/// its own `?chainId=` only, both in the unfiltered list, and `/readyz` reports both chains. Ctrl-C stops
/// both anvils; `--keep` resumes both chains (same genesis blocks, same orders, and the second chain is
/// indexed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_with_two_chains_serves_both_stops_both_and_resumes_both() {
    let place = DevPlace::with_chains(2);
    let _cleanup = place.cleaned_up_on_drop();
    let second_port = place.anvil_port + 1;

    // 1. Both chains are up, listed in the banner, each with its own files and deployment file.
    let dev = DevStack::start(&place, false);
    assert_eq!(dev.anvil.len(), 2, "expected two anvil pid files in {}", place.dir.display());
    for text in ["chain 31337 ", "chain 31338 ", "?chainId=31338", "--keep --chains 2"] {
        assert!(dev.banner.contains(text), "banner lacks {text:?}:\n{}", dev.banner);
    }
    for file in ["anvil-31338.pid", "genesis-31338.json", "deployment-31338.json", "anvil-31338.json"] {
        assert!(place.dir.join(file).exists(), "{file} was not written in {}", place.dir.display());
    }
    let deployment_2 = root().join(place.deployment_rel_of(31338));
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&deployment_2).unwrap()).unwrap();
    assert_eq!(written["chainId"], 31338, "{written}");
    let one = DevChain::of(&dev, 31337);
    let two = DevChain::of(&dev, 31338);
    assert_eq!(one.rpc, dev.rpc);
    assert_eq!(two.rpc, format!("http://127.0.0.1:{second_port}"));
    assert_eq!(cast(&["chain-id", "-r", &one.rpc]), "31337");
    assert_eq!(cast(&["chain-id", "-r", &two.rpc]), "31338");
    let genesis_2 = cast(&["block", "0", "-f", "hash", "-r", &two.rpc]);

    // 2. An order on each chain (account 0 holds MockUSDC on both).
    let (_, key0) = account(&dev.banner, 0);
    let (a1, _) = account(&dev.banner, 1);
    let (first, second) = (order_hex(1), order_hex(2));
    lock_on(&one, &key0, &a1, &first, 12_500_000);
    lock_on(&two, &key0, &a1, &second, 3_000_000);
    let both_served = |api: String, first: String, second: String| async move {
        let (_, list) = until(&format!("{api}/v1/orders?chainId=31337"), |_, b| {
            b["data"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
        assert_eq!(orders_of(&list), vec![(31337, first.clone())], "chain 31337's orders: {list}");
        let (_, list) = until(&format!("{api}/v1/orders?chainId=31338"), |_, b| {
            b["data"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
        assert_eq!(orders_of(&list), vec![(31338, second.clone())], "chain 31338's orders: {list}");
        let (_, list) = get(&format!("{api}/v1/orders")).await;
        let mut all = orders_of(&list);
        all.sort();
        assert_eq!(all, vec![(31337, first), (31338, second)], "all orders: {list}");
    };
    both_served(dev.api.clone(), first.clone(), second.clone()).await;
    let (_, order) = get(&format!("{}/v1/orders/{second}?chainId=31338", dev.api)).await;
    assert_eq!(order["amount"], "3000000", "{order}");
    let (_, ready) = until(&format!("{}/readyz", dev.api), |_, b| b["status"] == "ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    let chains: Vec<u64> =
        ready["chains"].as_array().unwrap().iter().map(|c| c["chainId"].as_u64().unwrap()).collect();
    assert_eq!(chains, vec![31337, 31338], "/readyz: {ready}");

    // 3. Ctrl-C stops both anvils (each writes its state file).
    let out = dev.interrupt();
    assert!(out.contains("stopped."), "{out}");
    for port in [place.anvil_port, second_port] {
        assert!(port_is_closed(port), "anvil still listens on {port} after Ctrl-C");
    }
    assert!(place.dir.join("anvil-state.json").exists());
    assert!(place.dir.join("anvil-state-31338.json").exists());

    // 4. --keep --chains 2: both chains and the store resume; the second chain is indexed again.
    let dev = DevStack::start(&place, true);
    assert!(dev.banner.contains("resumed from the previous run"), "{}", dev.banner);
    assert_eq!(dev.banner.matches("  resumed\n").count(), 2, "both chains resume:\n{}", dev.banner);
    let two = DevChain::of(&dev, 31338);
    assert_eq!(
        cast(&["block", "0", "-f", "hash", "-r", &two.rpc]),
        genesis_2,
        "chain 31338 has another genesis"
    );
    both_served(dev.api.clone(), first.clone(), second.clone()).await;
    let third = order_hex(3);
    lock_on(&two, &key0, &a1, &third, 1_000_000);
    let (_, list) = until(&format!("{}/v1/orders?chainId=31338", dev.api), |_, b| {
        b["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    let mut on_two = orders_of(&list);
    on_two.sort();
    assert_eq!(
        on_two,
        vec![(31338, second.clone()), (31338, third.clone())],
        "a lock on chain 31338 after the resume: {list}"
    );
    let (_, ready) = until(&format!("{}/readyz", dev.api), |_, b| b["status"] == "ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");

    // 5. After a SIGKILL of `holdfast dev`, both anvils keep running; the next run stops both and resumes.
    let mut dev = dev;
    let mut child = dev.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let _leftovers = std::mem::replace(&mut dev.anvil, AnvilGuard(None));
    drop(dev);
    for port in [place.anvil_port, second_port] {
        assert!(!port_is_closed(port), "anvil on {port} is expected to survive a SIGKILL of holdfast dev");
    }
    let dev = DevStack::start(&place, true);
    assert!(dev.banner.contains("stopping the anvil (pid"), "{}", dev.banner);
    assert!(dev.banner.contains("stopping the anvil of chain 31338 (pid"), "{}", dev.banner);
    assert!(dev.banner.contains("resumed from the previous run"), "{}", dev.banner);
    let (_, list) =
        until(&format!("{}/v1/orders", dev.api), |_, b| b["data"].as_array().is_some_and(|d| d.len() == 3))
            .await;
    let mut all = orders_of(&list);
    all.sort();
    assert_eq!(all, vec![(31337, first), (31338, second), (31338, third)], "after the SIGKILL: {list}");
    dev.interrupt();
    for port in [place.anvil_port, second_port] {
        assert!(port_is_closed(port), "anvil still listens on {port} after Ctrl-C");
    }
    place.cleanup();
    assert!(!deployment_2.exists(), "cleanup left {}", deployment_2.display());
}

/// A chain that fails to start (here chain 31338's anvil exits at once) fails `holdfast dev --chains 2`, and
/// stops the anvil of the chain that did start: no process is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_with_two_chains_stops_the_first_anvil_when_the_second_fails() {
    let place = DevPlace::with_chains(2);
    let _cleanup = place.cleaned_up_on_drop();
    std::fs::create_dir_all(&place.dir).unwrap();
    let wrapper = place.dir.join("fake-bin").join("anvil");
    std::fs::create_dir_all(wrapper.parent().unwrap()).unwrap();
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do [[ $a == 31338 ]] && {{ echo 'no chain 31338 today' >&2; exit 3; }}; done\nexec {} \"$@\"\n",
            root().join("node_modules/.bin/anvil").display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .args(["--log", "warn", "dev"])
        .current_dir(root())
        .envs(place.env())
        .env("HOLDFAST_ANVIL", &wrapper)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = crate::common::Killed(child);
    // The first chain's anvil comes up (and is guarded from then on, should the test fail).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while port_is_closed(place.anvil_port) {
        assert!(std::time::Instant::now() < deadline, "the first anvil never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _anvil = AnvilGuard::of(&place);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "holdfast dev did not give up on the failed chain");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "holdfast dev succeeded without its second chain");
    assert!(stderr.contains("anvil did not answer"), "{stderr}");
    assert!(port_is_closed(place.anvil_port), "the first chain's anvil was left running");
    assert!(port_is_closed(place.anvil_port + 1));
}
