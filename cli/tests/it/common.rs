//! Helpers shared by the `holdfast` binary tests.

use std::{path::PathBuf, process::Child, time::Duration};

use crate::harness::{Chain, random_hex};

/// A child process killed (SIGKILL) and reaped when dropped.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// A deployment file (as `script/deploy.sh` writes it) for the chain's escrow, in the temp directory.
pub(crate) fn deployment_file(c: &Chain, prefix: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("holdfast-{prefix}-{}.json", random_hex()));
    let json = serde_json::json!({
        "chainId": 31337,
        "escrow": c.escrow.to_string(),
        "deploymentBlock": c.deploy_block,
        "token": { "address": c.token.to_string(), "symbol": "USDC", "decimals": 6 },
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}
