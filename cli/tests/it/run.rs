//! `holdfast run` (indexer + API in one process) and `holdfast serve` (API alone, same store) end to end.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use alloy::primitives::{Address, B256, U256};
use serde_json::Value;

use crate::harness::{Chain, TestDb, random_hex};

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_ready(base: &str) {
    for _ in 0..200 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} never became healthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_indexes_and_serves_then_serve_reads_the_same_store() {
    let c = Chain::start().await;
    let deployment = std::env::temp_dir().join(format!("holdfast-run-{}.json", random_hex()));
    std::fs::write(
        &deployment,
        serde_json::json!({"chainId": 31337, "escrow": c.escrow.to_string(), "deploymentBlock": c.deploy_block,
            "token": {"address": c.token.to_string(), "symbol": "USDC", "decimals": 6}})
        .to_string(),
    )
    .unwrap();
    let db = TestDb::sqlite().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let bin = env!("CARGO_BIN_EXE_holdfast");
    let run = Killed(
        Command::new(bin)
            .args(["--log", "warn", "run", "--rpc-url", &c.anvil.ws_endpoint(), "--database-url", &db.url])
            .arg("--deployment")
            .arg(&deployment)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;

    let id = B256::with_last_byte(0x42);
    let deliver_by = c.now().await + 86_400;
    let receipt = c
        .escrow()
        .lock(id, c.addr(2), U256::from(12_500_000u64), Address::ZERO, deliver_by, 60)
        .from(c.addr(1))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    // The agent's "wait for my transaction": long-poll until indexed.
    let tx: Value =
        reqwest::get(format!("{base}/v1/transactions/{}?wait=20&finality=pending", receipt.transaction_hash))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tx["transactionHash"].as_str().unwrap().to_lowercase(), receipt.transaction_hash.to_string());
    let order: Value = reqwest::get(format!("{base}/v1/orders/{id}")).await.unwrap().json().await.unwrap();
    assert_eq!(order["status"], "held", "{order}");
    assert_eq!(order["amount"], "12500000", "{order}");
    assert_eq!(order["amountDecimal"], "12.5", "{order}");
    assert_eq!(order["payer"], c.addr(1).to_checksum(None));
    drop(run);

    // The API alone over the same store.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _serve = Killed(
        Command::new(bin)
            .args([
                "--log",
                "warn",
                "serve",
                "--database-url",
                &db.url,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--deployment")
            .arg(&deployment)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;
    let again: Value = reqwest::get(format!("{base}/v1/orders/{id}")).await.unwrap().json().await.unwrap();
    assert_eq!(again["orderId"], order["orderId"]);
    assert_eq!(again["status"], "held");
    let missing = reqwest::get(format!("{base}/v1/orders/0x1234")).await.unwrap();
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
    let _ = std::fs::remove_file(deployment);
}
