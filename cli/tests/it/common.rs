//! Helpers shared by the `holdfast` binary tests.

use std::{process::Child, time::Duration};

use alloy::primitives::{Address, B256, keccak256};

use crate::harness::Chain;

/// A child process killed (SIGKILL) and reaped when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago, chosen below the kernel's ephemeral range.
///
/// A port from `bind(":0")` is in the ephemeral range, where the kernel hands the same number to any
/// later `bind(":0")` or outgoing connection once it is released. A test that releases it and binds it
/// again later (a `holdfast dev` restarted with `--keep`, a process started after the port was chosen)
/// could then find it taken by another test's client socket or anvil, and fail with "port … is not
/// free". Below the ephemeral range only an explicit choice takes a port, so only another test's random
/// pick from this same range (about 1 in 20,000) can collide.
pub(crate) fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let (from, to) = if low > 12_000 { (10_000, low) } else { (61_000, 65_535) };
    loop {
        let port = rand::random_range(from..to);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// GET `url`: its status and JSON body (`null` when the body is not JSON).
pub(crate) async fn get(url: impl reqwest::IntoUrl) -> (u16, serde_json::Value) {
    try_get(url).await.unwrap()
}

/// [`get`], with the request's error returned instead of panicking on it.
pub(crate) async fn try_get(url: impl reqwest::IntoUrl) -> reqwest::Result<(u16, serde_json::Value)> {
    let r = reqwest::get(url).await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(serde_json::Value::Null)))
}

/// Wait (up to 60 s) until `chain_id`'s cursor in `store` reaches `c`'s head.
pub(crate) async fn caught_up(c: &Chain, store: &holdfast_store::Store, chain_id: u64) {
    use alloy::providers::Provider;
    use holdfast_store::ChainReader;
    let head = c.provider.get_block_number().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.chain_meta(chain_id).await.unwrap().is_none_or(|m| m.cursor < head) {
        assert!(
            std::time::Instant::now() < deadline,
            "chain {chain_id} did not catch up with its head within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait (up to 10 s) until `{base}/healthz` answers 2xx.
pub(crate) async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} never became healthy");
}

/// A deployment file (as `script/deploy.sh` writes it) for the chain's escrow, in the temp directory,
/// removed when dropped (also when the test fails: a panic unwinds through it).
pub(crate) fn deployment_file(c: &Chain, prefix: &str) -> tempfile::TempPath {
    let file =
        tempfile::Builder::new().prefix(&format!("holdfast-{prefix}-")).suffix(".json").tempfile().unwrap();
    let json = serde_json::json!({
        "chainId": c.anvil.chain_id(),
        "escrow": c.escrow.to_string(),
        "deploymentBlock": c.deploy_block,
        "token": { "address": c.token.to_string(), "symbol": "USDC", "decimals": 6 },
    });
    std::fs::write(file.path(), json.to_string()).unwrap();
    file.into_temp_path()
}

/// `holdfast run` over `db_url`, indexing `c` over http with a 200 ms poll, its API on `port`, `/readyz`
/// failing after `stall_secs` without a confirmed head.
pub(crate) fn spawn_run(
    c: &Chain,
    deployment: &std::path::Path,
    db_url: &str,
    port: u16,
    stall_secs: u64,
) -> Killed {
    Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "run", "--rpc-url", &c.anvil.endpoint(), "--database-url", db_url])
            .arg("--deployment")
            .arg(deployment)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--poll-ms", "200"])
            .args(["--ready-max-stall-secs", &stall_secs.to_string()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The id of `reference` between `payer` and `payee`, written out independently of the CLI:
/// keccak256(abi.encode(payer, payee, keccak256(bytes(reference)))), each address left-padded to 32 bytes.
pub(crate) fn ref_id(payer: Address, payee: Address, reference: &str) -> B256 {
    let mut buf = Vec::with_capacity(96);
    for a in [payer, payee] {
        buf.extend_from_slice(&[0u8; 12]);
        buf.extend_from_slice(a.as_slice());
    }
    buf.extend_from_slice(keccak256(reference).as_slice());
    keccak256(buf)
}
