//! The README quickstart, run verbatim: `holdfast dev` brings the stack up, then every line of the README's
//! quickstart block runs in bash from the repository root, and the API is checked after each step.

use std::{path::PathBuf, process::Command, time::Duration};

use alloy::primitives::{Address, keccak256};
use serde_json::Value;

use crate::{
    common::ref_id,
    dev::{DevPlace, DevStack},
    harness::root,
};

/// The lines of the README's quickstart block (between the quickstart markers, inside the sh fence).
fn quickstart_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("<!-- quickstart:begin -->").expect("README has a quickstart:begin marker");
    let end = readme.find("<!-- quickstart:end -->").expect("README has a quickstart:end marker");
    let block = &readme[start..end];
    let body = block.split("```sh\n").nth(1).expect("a ```sh block").split("```").next().unwrap();
    body.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

async fn order(api: &str, id: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{api}/v1/orders/{id}")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Wait (up to 10 s) until the API serves the order with `field == want`; returns the record.
async fn until(api: &str, id: &str, field: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = order(api, id).await;
        if status == 200 && body[field] == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the API never showed {field} = {want}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_quickstart_runs_verbatim_against_holdfast_dev() {
    // The block puts target/debug first on PATH: that must be the binary under test.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_holdfast"));
    assert_eq!(
        bin.canonicalize().unwrap(),
        root().join("target/debug/holdfast").canonicalize().unwrap(),
        "the quickstart runs target/debug/holdfast; run the tests without a custom CARGO_TARGET_DIR"
    );
    let lines = quickstart_lines();
    let place = DevPlace::new();
    let dev = DevStack::start(&place, false);
    // The banner suggests the same commands (it prints the PATH line with the binary's own directory).
    for line in lines.iter().filter(|l| !l.starts_with("export PATH=")) {
        assert!(
            dev.banner.contains(line.as_str()),
            "the banner lacks the quickstart line {line}:\n{}",
            dev.banner
        );
    }
    let api = dev.api.clone();
    let payer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    let payee = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let id = format!(
        "{:#x}",
        ref_id(payer.parse::<Address>().unwrap(), payee.parse::<Address>().unwrap(), "demo-1")
    );

    let mut exports = String::new();
    let mut steps = Vec::new();
    for line in &lines {
        if line.starts_with("export ") {
            exports.push_str(line);
            exports.push('\n');
            continue;
        }
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{exports}{line}"))
            .current_dir(root())
            .envs(place.env())
            .env_remove("HOLDFAST_PRIVATE_KEY")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "quickstart line failed: {line}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with("HOLDFAST_")).collect();
        let step = match words.as_slice() {
            ["holdfast", "order", "lock", ..] => {
                let o = until(&api, &id, "status", "held").await;
                assert_eq!(o["amount"], "12500000");
                assert_eq!(o["amountDecimal"].as_str().map(|s| s.trim_end_matches('0')), Some("12.5"));
                assert_eq!(o["payer"], payer);
                assert_eq!(o["payee"], payee);
                assert!(
                    stdout.contains(&id),
                    "lock prints the id derived from demo-1, payer and payee: {stdout}"
                );
                "lock"
            }
            ["holdfast", "order", "deliver", ..] => {
                let o = until(&api, &id, "status", "delivered").await;
                assert_eq!(o["remaining"], "12500000");
                let events: Value =
                    reqwest::get(format!("{api}/v1/orders/{id}/events")).await.unwrap().json().await.unwrap();
                let evidence = format!("{:#x}", keccak256("parcel 1Z999"));
                assert!(
                    events.to_string().contains(&evidence),
                    "the evidence hash is in the history: {events}"
                );
                "deliver"
            }
            ["holdfast", "order", "show", _, "--payee", _, "--wait", ..] => {
                assert!(
                    stdout.contains(&id) && stdout.contains("delivered"),
                    "show --wait printed:\n{stdout}"
                );
                "wait"
            }
            ["holdfast", "order", "release", _, amount, "--payee", _] => {
                assert_eq!(*amount, "5");
                let o = until(&api, &id, "remaining", "7500000").await;
                assert_eq!(o["released"], "5000000");
                assert_eq!(o["status"], "delivered");
                "release part"
            }
            ["holdfast", "order", "release", _, "--payee", _] => {
                let o = until(&api, &id, "status", "released").await;
                assert_eq!((o["released"].as_str(), o["remaining"].as_str()), (Some("12500000"), Some("0")));
                "release rest"
            }
            ["holdfast", "order", "show", _, "--payee", _] => {
                assert!(stdout.contains("released") && stdout.contains(payer), "show printed:\n{stdout}");
                "show"
            }
            _ => panic!("the quickstart has a line this test does not check: {line}"),
        };
        steps.push(step);
    }
    assert_eq!(steps, ["lock", "deliver", "wait", "release part", "release rest", "show"]);
    // The payee got the whole amount on chain.
    let token = dev.banner_field("Token");
    let balance = crate::dev::cast(&["call", "-r", &dev.rpc, &token, "balanceOf(address)(uint256)", payee]);
    assert!(balance.starts_with("1000012500000"), "payee balance {balance}");
    dev.interrupt();
    place.cleanup();
}
