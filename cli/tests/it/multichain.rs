//! Several chains in one deployment, as real processes: two anvils with different chain ids followed by
//! one `holdfast run --chains FILE` into one store (both backends). Reorgs on one chain while locks keep
//! coming on the other; the API returns both chains' orders (the same order ids on each), filtered by
//! chain; each chain's records then equal a fresh index of that chain alone; a third chain whose node
//! never answers stalls neither; `/readyz` and `/metrics` report each chain. `HOLDFAST_DRILL_SCALE=N` runs N times as many reorgs.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, U256},
    providers::ext::AnvilApi,
    rpc::types::anvil::{ReorgOptions, TransactionData},
};
use serde_json::Value;

use crate::{
    common::{Killed, caught_up, deployment_file, free_port, get, wait_ready},
    harness::{Chain, TestDb, drill_scale, index, random_hex, snapshot},
};

const A: u64 = 31337;
const B: u64 = 31338;
/// A chain listed in the file whose node never answers.
const DEAD: u64 = 31339;

fn id(n: u64) -> B256 {
    B256::from(U256::from(n))
}

/// The order ids the API lists for `query` (all pages).
async fn listed(base: &str, query: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/orders?limit=500");
        if !query.is_empty() {
            url = format!("{url}&{query}");
        }
        if let Some(c) = &cursor {
            url = format!("{url}&cursor={c}");
        }
        let (status, body) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        for o in body["data"].as_array().unwrap() {
            out.push((o["chainId"].as_u64().unwrap(), o["orderId"].as_str().unwrap().to_string()));
        }
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    out
}

/// Replace the last `depth` blocks of `c`; the new chain carries one new lock of `new_id`.
async fn reorg_with_lock(c: &Chain, depth: u64, new_id: B256, deliver_by: u64) {
    let tx = c
        .escrow()
        .lock(new_id, c.addr(8), U256::from(777u64), Address::ZERO, deliver_by, 60)
        .from(c.addr(9))
        .into_transaction_request()
        .with_from(c.addr(9));
    c.provider
        .anvil_reorg(ReorgOptions { depth, tx_block_pairs: vec![(TransactionData::JSON(tx), depth - 1)] })
        .await
        .unwrap();
}

async fn two_chains(backend: &str) {
    let a = Chain::start().await;
    let b = Arc::new(Chain::start_with(&["--chain-id", &B.to_string()]).await);
    assert_eq!((a.anvil.chain_id(), b.anvil.chain_id()), (A, B));
    // Headroom for the reorgs above anvil's finalized block (head - 64).
    a.provider.anvil_mine(Some(80), None).await.unwrap();
    let (file_a, file_b) = (deployment_file(&a, "multi-a"), deployment_file(&b, "multi-b"));
    // A third chain whose node never answers: it must not stall the other two.
    let file_dead = std::env::temp_dir().join(format!("holdfast-multi-dead-{}.json", random_hex()));
    let dead = serde_json::json!({
        "chainId": DEAD, "escrow": Address::repeat_byte(0xde).to_string(), "deploymentBlock": 1,
    });
    std::fs::write(&file_dead, dead.to_string()).unwrap();
    // Chain A over http, chain B over websocket: each with its own node and poll.
    let chains = std::env::temp_dir().join(format!("holdfast-chains-{}.toml", random_hex()));
    std::fs::write(
        &chains,
        format!(
            "[[chain]]\nrpc_url = \"{}\"\ndeployments = [\"{}\"]\npoll_ms = 100\n\n\
             [[chain]]\nrpc_url = \"{}\"\ndeployments = [\"{}\"]\npoll_ms = 100\n\n\
             [[chain]]\nrpc_url = \"http://127.0.0.1:{}\"\ndeployments = [\"{}\"]\n",
            a.anvil.endpoint(),
            file_a.display(),
            b.anvil.ws_endpoint(),
            file_b.display(),
            free_port(),
            file_dead.display()
        ),
    )
    .unwrap();
    let db = TestDb::of(backend).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let run = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_holdfast"))
            .args(["--log", "warn", "run", "--database-url", &db.url])
            .arg("--chains")
            .arg(&chains)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--ready-max-stall-secs", "30"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&base).await;

    // The same three order ids on both chains, with different amounts.
    let deliver_by = a.now().await + 86_400;
    for n in 1..=3u64 {
        a.lock(1, id(n), a.addr(2), 10 * n, Address::ZERO, deliver_by, 60).await;
        b.lock(1, id(n), b.addr(3), 1_000 * n, Address::ZERO, deliver_by, 60).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while listed(&base, "").await.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "both chains' orders were not indexed: {:?}",
            listed(&base, "").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let only_a = listed(&base, &format!("chainId={A}")).await;
    let only_b = listed(&base, &format!("chainId={B}")).await;
    assert_eq!(only_a.len(), 3, "{only_a:?}");
    assert_eq!(only_b.len(), 3, "{only_b:?}");
    assert!(only_a.iter().all(|(c, _)| *c == A) && only_b.iter().all(|(c, _)| *c == B));
    let (status, order) = get(&format!("{base}/v1/orders/{}?chainId={B}", id(2))).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["amount"], "2000", "{order}");
    let (_, order) = get(&format!("{base}/v1/orders/{}?chainId={A}", id(2))).await;
    assert_eq!(order["amount"], "20", "{order}");

    // Reorgs on chain A while chain B keeps getting locks.
    let rounds = 3 * drill_scale() as u64;
    let traffic = {
        let b = b.clone();
        tokio::spawn(async move {
            for n in 0..rounds * 3 {
                b.lock(2, id(100 + n), b.addr(4), 5 + n, Address::ZERO, deliver_by, 60).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    for r in 0..rounds {
        let doomed = id(200 + r);
        a.lock(1, doomed, a.addr(2), 1, Address::ZERO, deliver_by, 60).await;
        // Indexed first, so that the reorg has something to roll back.
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&format!("{base}/v1/orders/{doomed}?chainId={A}")).await.0 != 200 {
            assert!(Instant::now() < deadline, "the lock of round {r} was not indexed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reorg_with_lock(&a, 1 + r % 4, id(300 + r), deliver_by).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let gone = get(&format!("{base}/v1/orders/{doomed}?chainId={A}")).await.0 == 404;
            let replaced = get(&format!("{base}/v1/orders/{}?chainId={A}", id(300 + r))).await.0 == 200;
            if gone && replaced {
                break;
            }
            assert!(Instant::now() < deadline, "round {r}: the reorg on chain {A} was not followed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Out of the next round's reach (depth at most 4).
        a.provider.anvil_mine(Some(4), None).await.unwrap();
    }
    traffic.await.unwrap();

    // Each chain's records equal a fresh index of that chain alone.
    let store = db.store().await;
    caught_up(&a, &store, A).await;
    caught_up(&b, &store, B).await;
    let all = snapshot(&store).await;
    for (c, chain_id) in [(&a, A), (&*b, B)] {
        let fresh_db = TestDb::sqlite().await;
        let fresh = fresh_db.store().await;
        index(c, &fresh).await;
        let mine: Vec<&Value> = all.iter().filter(|o| o["chainId"] == chain_id).collect();
        let expected = snapshot(&fresh).await;
        assert_eq!(mine.len(), expected.len(), "chain {chain_id}: order count differs from a fresh index");
        assert!(
            mine.iter().zip(&expected).all(|(m, e)| *m == e),
            "chain {chain_id} differs from a fresh index"
        );
        fresh_db.cleanup(fresh).await;
    }
    assert_eq!(listed(&base, &format!("chainId={B}")).await.len() as u64, 3 + rounds * 3);
    assert_eq!(listed(&base, &format!("chainId={A}")).await.len() as u64, 3 + rounds);

    // Readiness per chain: the dead chain is not ready, with its node's fault; the other two are.
    let (status, ready) = get(&format!("{base}/readyz")).await;
    assert_eq!(status, 503, "{ready}");
    let report = &ready["error"]["details"];
    let reasons = report["reasons"].to_string();
    assert!(reasons.contains(&format!("chain {DEAD}: indexer:")), "{reasons}");
    assert!(
        !reasons.contains(&format!("chain {A}")) && !reasons.contains(&format!("chain {B}")),
        "{reasons}"
    );
    let chains_seen = report["chains"].as_array().unwrap();
    let ids: Vec<u64> = chains_seen.iter().map(|c| c["chainId"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![A, B], "{ready}");
    assert!(chains_seen.iter().all(|c| c["role"] == "writer"), "{ready}");
    for chain_id in [A, B] {
        let (status, one) = get(&format!("{base}/readyz?chainId={chain_id}")).await;
        assert_eq!(status, 200, "{one}");
        assert_eq!(one["chains"][0]["indexer"], "running", "{one}");
    }
    assert_eq!(get(&format!("{base}/readyz?chainId={DEAD}")).await.0, 503);
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    for chain_id in [A, B] {
        assert!(metrics.contains(&format!("holdfast_indexed_block{{chain_id=\"{chain_id}\"}}")), "{metrics}");
    }
    assert!(metrics.contains(&format!("holdfast_reorgs_total{{chain_id=\"{A}\"}}")), "{metrics}");
    assert!(!metrics.contains(&format!("holdfast_reorgs_total{{chain_id=\"{B}\"}}")), "{metrics}");

    drop(run);
    db.cleanup(store).await;
    for f in [file_dead, chains] {
        let _ = std::fs::remove_file(f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_one_process_sqlite() {
    two_chains("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chains_one_process_postgres() {
    two_chains("postgres").await;
}
