//! `holdfast run` (indexer + API in one process) and `holdfast serve` (API alone, same store) end to end.

use std::process::{Command, Stdio};

use alloy::primitives::{Address, B256, U256};
use serde_json::Value;

use crate::{
    common::{Killed, deployment_file, free_port, wait_ready},
    harness::{Chain, TestDb},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_indexes_and_serves_then_serve_reads_the_same_store() {
    let c = Chain::start().await;
    let deployment = deployment_file(&c, "run");
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
