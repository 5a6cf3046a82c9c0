//! `holdfast order …` end to end: the real binary against anvil and a `holdfast run` (indexer + API)
//! process. Allowance lock → deliver → partial and full release; a gasless lock relayed by another
//! account; and pre-check failures that must explain the rule and send nothing.

use std::process::{Command, Stdio};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{Provider, ext::AnvilApi},
    signers::SignerSync,
    sol_types::{SolStruct, eip712_domain},
};
use holdfast_primitives::bindings::IHoldfastEscrow::Status;
use serde_json::{Value, json};

alloy::sol! {
    #[sol(rpc)]
    interface IAllowance {
        function allowance(address owner, address spender) external view returns (uint256);
    }
}

use crate::{
    common::{Killed, deployment_file, free_port, ref_id, wait_ready},
    harness::{Chain, ReceiveWithAuthorization, TestDb, random_hex},
};

/// Fields drop in order: the `holdfast run` process before its database and the chain.
struct Env {
    _run: Option<Killed>,
    _db: Option<TestDb>,
    c: Chain,
    deployment: tempfile::TempPath,
    api: String,
}

/// anvil with the contracts, a deployment file, and (with `api`) `holdfast run` indexing it.
async fn setup(api: bool) -> Env {
    setup_with(api, &[]).await
}

/// [`setup`] with extra anvil arguments.
async fn setup_with(api: bool, anvil_args: &[&str]) -> Env {
    let c = Chain::start_with(anvil_args).await;
    let deployment = deployment_file(&c, "order");
    let port = free_port();
    let api_url = format!("http://127.0.0.1:{port}");
    let (run, db) = if api {
        let db = TestDb::sqlite().await;
        let run = Killed(
            Command::new(env!("CARGO_BIN_EXE_holdfast"))
                .args([
                    "--log",
                    "warn",
                    "run",
                    "--rpc-url",
                    &c.anvil.ws_endpoint(),
                    "--database-url",
                    &db.url,
                ])
                .arg("--deployment")
                .arg(&deployment)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_ready(&api_url).await;
        (Some(run), Some(db))
    } else {
        (None, None)
    };
    Env { c, deployment, api: api_url, _run: run, _db: db }
}

/// The result of one `holdfast` invocation.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }

    /// Failed, with `sentence` on stderr.
    #[track_caller]
    fn fails_with(&self, sentence: &str) {
        assert_ne!(self.code, 0, "{self:#?}");
        assert!(self.stderr.contains(sentence), "expected {sentence:?} on stderr: {self:#?}");
    }
}

impl Env {
    fn key(&self, i: usize) -> String {
        // The node's own dev keys (anvil's `keys()`), never guessed.
        format!("0x{}", alloy::hex::encode(self.c.anvil.keys()[i].to_bytes()))
    }

    /// `holdfast order ARGS…` signed by account `signer`, with a clean environment.
    async fn order(&self, signer: usize, args: &[&str]) -> Out {
        self.order_in(None, Some(&self.deployment), signer, args).await
    }

    /// [`Env::order`] run in `cwd` (default: the test's), with `HOLDFAST_DEPLOYMENTS` set to `deployments`
    /// (unset when `None`).
    async fn order_in(
        &self,
        cwd: Option<&std::path::Path>,
        deployments: Option<&std::path::Path>,
        signer: usize,
        args: &[&str],
    ) -> Out {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_holdfast"));
        cmd.env_clear()
            .env("HOLDFAST_LOG", "warn")
            .env("HOLDFAST_RPC_URL", self.c.anvil.endpoint())
            .env("HOLDFAST_API_URL", &self.api)
            .env("HOLDFAST_PRIVATE_KEY", self.key(signer));
        if let Some(d) = deployments {
            cmd.env("HOLDFAST_DEPLOYMENTS", d);
        }
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let out = cmd.arg("order").args(args).output().await.unwrap();
        let out = Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // SHOWOUT=1 … -- --nocapture prints every invocation and its output (for reading the messages).
        if std::env::var_os("SHOWOUT").is_some() {
            eprintln!("$ holdfast order {}\n{}{}", args.join(" "), out.stdout, out.stderr);
        }
        assert!(!out.stderr.contains(&self.key(signer)[2..]), "the key leaked: {out:#?}");
        assert!(!out.stdout.contains(&self.key(signer)[2..]), "the key leaked: {out:#?}");
        out
    }

    async fn nonce(&self, i: usize) -> u64 {
        self.c.provider.get_transaction_count(self.c.addr(i)).await.unwrap()
    }

    async fn balance(&self, i: usize) -> U256 {
        self.c.usdc().balanceOf(self.c.addr(i)).call().await.unwrap()
    }

    async fn api_order(&self, id: B256) -> Value {
        reqwest::get(format!("{}/v1/orders/{id:#x}", self.api)).await.unwrap().json().await.unwrap()
    }
}

fn checksum(a: Address) -> String {
    a.to_checksum(None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_allowance_lock_deliver_release_show() {
    let env = setup(true).await;
    let c = &env.c;
    let (payer, payee) = (1usize, 2usize);
    // No standing approval: the CLI approves exactly the amount.
    c.usdc()
        .approve(c.escrow, U256::ZERO)
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let before = env.balance(payer).await;
    let id = ref_id(c.addr(payer), c.addr(payee), "invoice-1");

    let payee_addr = c.addr(payee).to_string();
    let payer_addr = c.addr(payer).to_string();
    let lock = env
        .order(payer, &["lock", "invoice-1", "--payee", &payee_addr, "--amount", "12.50", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(lock["action"], "lock");
    assert_eq!(lock["orderId"], format!("{id:#x}"));
    assert_eq!(lock["orderRef"], "invoice-1");
    assert_eq!(lock["status"], "held");
    assert_eq!(lock["amount"], "12500000");
    assert_eq!(lock["remainingDecimal"], "12.5");
    assert_eq!(env.balance(payer).await, before - U256::from(12_500_000u64));
    let allowance =
        IAllowance::new(c.token, &c.provider).allowance(c.addr(payer), c.escrow).call().await.unwrap();
    assert_eq!(allowance, U256::ZERO, "approved more than the amount");

    // The API has it (the CLI waits with the API's long-poll).
    let shown = env
        .order(payer, &["show", "invoice-1", "--payee", &payee_addr, "--wait", "20", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(shown["status"], "held");
    assert_eq!(shown["amountDecimal"], "12.5");
    assert_eq!(shown["payer"], checksum(c.addr(payer)));
    assert_eq!(shown["payee"], checksum(c.addr(payee)));

    // The payee delivers with evidence (a text hashed with keccak256); the CLI waits for the API.
    let d = env
        .order(
            payee,
            &["deliver", &format!("{id:#x}"), "--evidence", "report-v1", "--wait", "pending", "--json"],
        )
        .await
        .ok()
        .json();
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["indexed"]["finality"], "pending");
    let o = env.api_order(id).await;
    assert_eq!(o["status"], "delivered");
    assert_eq!(o["evidence"], format!("{:#x}", keccak256("report-v1")));

    // Partial release, then the rest (no AMOUNT).
    let r = env
        .order(payer, &["release", "invoice-1", "5", "--payee", &payee_addr, "--wait", "pending", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(r["amountDecimal"], "5");
    assert_eq!(r["remainingDecimal"], "7.5");
    assert_eq!(r["status"], "delivered");
    let o = env.api_order(id).await;
    assert_eq!(o["releasedDecimal"], "5");
    assert_eq!(o["remainingDecimal"], "7.5");
    let r =
        env.order(payer, &["release", "invoice-1", "--payee", &payee_addr, "--wait", "pending"]).await.ok();
    assert!(r.stdout.contains("released 7.5 USDC: order"), "{r:#?}");
    assert!(r.stdout.contains("settled, 0 USDC remaining"), "{r:#?}");
    let shown = env.order(payer, &["show", "invoice-1", "--payee", &payee_addr, "--json"]).await.ok().json();
    assert_eq!(shown["status"], "released");
    assert_eq!(shown["settled"], true);
    assert_eq!(shown["releasedDecimal"], "12.5");
    let kinds: Vec<&str> =
        shown["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["locked", "delivered", "released", "released"]);
    let human = env.order(payee, &["show", "invoice-1", "--payer", &payer_addr]).await.ok();
    assert!(human.stdout.contains("status       released, settled"), "{human:#?}");
    assert!(human.stdout.contains("amount       12.5 USDC"), "{human:#?}");

    // Unknown to the API: a clear error.
    env.order(payer, &["show", "never-locked", "--payee", &payee_addr])
        .await
        .fails_with("not found in the API");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_gasless_lock_relayed_by_another_account() {
    let env = setup(true).await;
    let c = &env.c;
    let (payer, payee, relayer) = (3usize, 5usize, 4usize);
    let id = B256::repeat_byte(0x3c);
    let hex_id = format!("{id:#x}");
    let file = std::env::temp_dir().join(format!("holdfast-auth-{}.json", random_hex()));
    let (eth_before, usdc_before, nonce_before) = (
        c.provider.get_balance(c.addr(payer)).await.unwrap(),
        env.balance(payer).await,
        env.nonce(payer).await,
    );

    let payee_addr = c.addr(payee).to_string();
    let signed = env
        .order(
            payer,
            &["lock", &hex_id, "--payee", &payee_addr, "--amount", "3.25", "--deliver-by", "2d", "--gasless"],
        )
        .await
        .ok();
    let doc = signed.json();
    assert_eq!(doc["kind"], "holdfast.lockWithAuthorization/v1");
    assert_eq!(doc["order"]["payer"], checksum(c.addr(payer)));
    assert_eq!(doc["order"]["amount"], "3250000");
    assert_eq!(doc["authorization"]["to"], checksum(c.escrow));
    std::fs::write(&file, &signed.stdout).unwrap();
    assert_eq!(env.nonce(payer).await, nonce_before, "signing must send nothing");

    // A tampered document is refused before sending.
    let mut bad = doc.clone();
    bad["order"]["amount"] = "3250001".into();
    bad["authorization"]["value"] = "3250001".into();
    let bad_file = file.with_extension("bad.json");
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let relayer_nonce = env.nonce(relayer).await;
    env.order(relayer, &["relay", bad_file.to_str().unwrap()]).await.fails_with("does not bind these terms");
    assert_eq!(env.nonce(relayer).await, relayer_nonce);
    // Fields no signature covers must agree with the signed terms: a false reference or decimal amount
    // would mislead whoever reads the document or the relay's output.
    let mut bad = doc.clone();
    bad["order"]["orderRef"] = "invoice-99".into();
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    env.order(relayer, &["relay", bad_file.to_str().unwrap()])
        .await
        .fails_with("orderRef \"invoice-99\" is not the reference of this id");
    let mut bad = doc.clone();
    bad["order"]["amountDecimal"] = "32.5".into();
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    env.order(relayer, &["relay", bad_file.to_str().unwrap()])
        .await
        .fails_with("amountDecimal \"32.5\" does not match the signed amount of 3250000 base units");
    // The malleable twin of the signature (n - s, other parity) recovers to the payer too, but the token
    // rejects it: refused before sending, as a signature problem.
    let n =
        U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
    let sig_s: B256 = doc["signature"]["s"].as_str().unwrap().parse().unwrap();
    let mut bad = doc.clone();
    bad["signature"]["s"] = format!("{:#x}", B256::from(n - U256::from_be_bytes(sig_s.0))).into();
    bad["signature"]["v"] = (55 - doc["signature"]["v"].as_u64().unwrap()).into();
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let o = env.order(relayer, &["relay", bad_file.to_str().unwrap()]).await;
    o.fails_with("the signature does not match the payer");
    o.fails_with("no transaction was sent");
    assert_eq!(env.nonce(relayer).await, relayer_nonce);

    // Another account relays it and pays the gas.
    let relayed = env
        .order(relayer, &["relay", file.to_str().unwrap(), "--wait", "pending", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(relayed["action"], "relay");
    assert_eq!(relayed["status"], "held");
    assert_eq!(relayed["payer"], checksum(c.addr(payer)));
    assert_eq!(relayed["relayer"], checksum(c.addr(relayer)));
    assert_eq!(env.nonce(relayer).await, relayer_nonce + 1);

    let shown = env.order(payee, &["show", &hex_id, "--wait", "20", "--json"]).await.ok().json();
    assert_eq!(shown["status"], "held");
    assert_eq!(shown["payer"], checksum(c.addr(payer)));
    assert_eq!(shown["payee"], checksum(c.addr(payee)));
    assert_eq!(shown["amountDecimal"], "3.25");
    // The payer spent the amount and nothing else: no gas, no transaction.
    assert_eq!(env.balance(payer).await, usdc_before - U256::from(3_250_000u64));
    assert_eq!(c.provider.get_balance(c.addr(payer)).await.unwrap(), eth_before);
    assert_eq!(env.nonce(payer).await, nonce_before);

    // Relaying it again is refused before sending (the id is used).
    env.order(relayer, &["relay", file.to_str().unwrap()]).await.fails_with("this id is already used");
    assert_eq!(env.nonce(relayer).await, relayer_nonce + 1);
    for f in [&file, &bad_file] {
        let _ = std::fs::remove_file(f);
    }
}

/// A dApp written for USDC signs a ReceiveWithAuthorization over the domain it writes out itself (name
/// "USD Coin", version "2", chain id, token address: viem's `signTypedData`, nothing read from the token).
/// The devnet token accepts it on chain through the escrow's relayed lock, whether the dApp submits it
/// itself or hands it to `holdfast order relay`; and `holdfast order lock --gasless`, which reads the domain
/// from the token, signs exactly the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_accepts_an_authorization_signed_for_usdc_by_a_third_party() {
    let env = setup(false).await;
    let c = &env.c;
    let (payer, payee, relayer) = (6usize, 7usize, 8usize);
    let domain = eip712_domain! {
        name: "USD Coin",
        version: "2",
        chain_id: 31337,
        verifying_contract: c.token,
    };
    let amount = U256::from(2_500_000u64);
    let deliver_by = c.now().await + 2 * 86_400;
    let dispute_window = 3 * 86_400u32;
    let sign = async |id: B256| {
        let nonce = c
            .escrow()
            .authorizationNonce(id, c.addr(payee), amount, Address::ZERO, deliver_by, dispute_window)
            .call()
            .await
            .unwrap();
        let msg = ReceiveWithAuthorization {
            from: c.addr(payer),
            to: c.escrow,
            value: amount,
            validAfter: U256::ZERO,
            validBefore: U256::from(deliver_by),
            nonce,
        };
        let sig = c.keys[payer].sign_hash_sync(&msg.eip712_signing_hash(&domain)).unwrap();
        (nonce, 27 + sig.v() as u8, B256::from(sig.r()), B256::from(sig.s()))
    };
    let before = env.balance(payer).await;

    // Submitted by the dApp's own relayer, straight to the escrow.
    let direct = keccak256("dapp-direct");
    let (_, v, r, s) = sign(direct).await;
    let receipt = c
        .escrow()
        .lockWithAuthorization(
            c.addr(payer),
            direct,
            c.addr(payee),
            amount,
            Address::ZERO,
            deliver_by,
            dispute_window,
            U256::ZERO,
            U256::from(deliver_by),
            v,
            r,
            s,
        )
        .from(c.addr(relayer))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the devnet token rejects a lock signed for USDC: {e}"))
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status(), "the devnet token rejects a lock signed for USDC");
    let order = c.escrow().getOrder(direct).call().await.unwrap().order;
    assert_eq!(order.status, Status::Held);
    assert_eq!(order.payer, c.addr(payer));
    assert_eq!(env.balance(payer).await, before - amount);

    // The CLI signs the same bytes for the same terms.
    let relayed = ref_id(c.addr(payer), c.addr(payee), "dapp-relayed");
    let (nonce, v, r, s) = sign(relayed).await;
    let cli = env
        .order(
            payer,
            &[
                "lock",
                "dapp-relayed",
                "--payee",
                &c.addr(payee).to_string(),
                "--amount",
                "2.5",
                "--deliver-by",
                &rfc3339(deliver_by),
                "--gasless",
            ],
        )
        .await
        .ok()
        .json();
    assert_eq!(cli["authorization"]["nonce"], format!("{nonce:#x}"));
    assert_eq!(cli["authorization"]["validBefore"], deliver_by.to_string());
    assert_eq!(cli["signature"], json!({"v": v, "r": format!("{r:#x}"), "s": format!("{s:#x}")}));

    // The dApp's signature in a document written by hand, relayed by the CLI (which checks it against the
    // domain it reads from the token before sending).
    let doc = json!({
        "kind": "holdfast.lockWithAuthorization/v1",
        "chainId": 31337,
        "escrow": checksum(c.escrow),
        "token": {"address": checksum(c.token), "symbol": "USDC", "decimals": 6},
        "order": {
            "orderId": format!("{relayed:#x}"),
            "payer": checksum(c.addr(payer)),
            "payee": checksum(c.addr(payee)),
            "amount": amount.to_string(),
            "arbiter": checksum(Address::ZERO),
            "deliverBy": deliver_by,
            "disputeWindow": dispute_window,
        },
        "authorization": {
            "from": checksum(c.addr(payer)),
            "to": checksum(c.escrow),
            "value": amount.to_string(),
            "validAfter": "0",
            "validBefore": deliver_by.to_string(),
            "nonce": format!("{nonce:#x}"),
        },
        "signature": {"v": v, "r": format!("{r:#x}"), "s": format!("{s:#x}")},
    });
    let file = std::env::temp_dir().join(format!("holdfast-dapp-{}.json", random_hex()));
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = env.order(relayer, &["relay", file.to_str().unwrap(), "--json"]).await;
    let _ = std::fs::remove_file(&file);
    let out = out.ok().json();
    assert_eq!(out["status"], "held");
    assert_eq!(out["relayer"], checksum(c.addr(relayer)));
    assert_eq!(c.escrow().getOrder(relayed).call().await.unwrap().order.status, Status::Held);
    assert_eq!(env.balance(payer).await, before - amount - amount);
}

/// A token that tells no EIP-712 domain (no eip712Domain(), no version(), no DOMAIN_SEPARATOR()): signed
/// locks are refused with a typed error naming what it lacks, and nothing is signed or sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_refuses_to_sign_for_a_token_without_a_domain() {
    let env = setup(false).await;
    let c = &env.c;
    let payer = 2usize;
    let (_, escrow) = c.escrow_for_mock("NoReturnToken", payer, 10_000_000).await;
    let payee = c.addr(3).to_string();
    let nonce = env.nonce(payer).await;
    for how in ["--gasless", "--permit"] {
        let o = env
            .order(
                payer,
                &[
                    "lock",
                    "no-domain",
                    "--payee",
                    &payee,
                    "--amount",
                    "1",
                    "--escrow",
                    &escrow.to_string(),
                    how,
                ],
            )
            .await;
        o.fails_with("its EIP-712 domain is unknown");
        o.fails_with("\"Tether USD (mock)\" but neither version() nor DOMAIN_SEPARATOR()");
        o.fails_with("lock by allowance instead");
        assert!(o.stdout.is_empty(), "{o:#?}");
        let j = env
            .order(
                payer,
                &[
                    "lock",
                    "no-domain",
                    "--payee",
                    &payee,
                    "--amount",
                    "1",
                    "--escrow",
                    &escrow.to_string(),
                    how,
                    "--json",
                ],
            )
            .await;
        assert_ne!(j.code, 0, "{j:#?}");
        let e: Value = serde_json::from_str(&j.stderr).unwrap_or_else(|e| panic!("{e}: {j:#?}"));
        assert_eq!(e["error"]["rule"], "TokenDomainUnknown", "{j:#?}");
        assert_eq!(e["error"]["sent"], false, "{j:#?}");
    }
    assert_eq!(env.nonce(payer).await, nonce, "nothing may be sent");
}

/// Unix seconds as RFC 3339 (`2026-11-21T10:00:00Z`).
fn rfc3339(t: u64) -> String {
    let (y, m, d) = civil((t / 86_400) as i64);
    let secs = t % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_prechecks_explain_the_rule_and_send_nothing() {
    let env = setup(false).await;
    let c = &env.c;
    let (payer, payee, arbiter, stranger) = (1usize, 2usize, 3usize, 6usize);
    let payee_addr = c.addr(payee).to_string();
    let now = c.now().await;
    // Fixtures through the harness: plain held, short deadline, and frozen.
    let held = B256::with_last_byte(0x01);
    c.lock(payer, held, c.addr(payee), 1_000_000, Address::ZERO, now + 86_400, 3_600).await;
    let short = B256::with_last_byte(0x02);
    c.lock(payer, short, c.addr(payee), 1_000_000, Address::ZERO, now + 100, 3_600).await;
    let frozen = B256::with_last_byte(0x03);
    c.lock(payer, frozen, c.addr(payee), 1_000_000, c.addr(arbiter), now + 86_400, 3_600).await;
    c.escrow()
        .deliver(frozen, B256::ZERO)
        .from(c.addr(payee))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    c.escrow()
        .freeze(frozen, B256::ZERO)
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();

    let all_nonces = || async {
        [env.nonce(payer).await, env.nonce(payee).await, env.nonce(stranger).await, env.nonce(arbiter).await]
    };
    let start = all_nonces().await;

    // Too many decimals: an error, never a rounding.
    env.order(payer, &["lock", "inv-a", "--payee", &payee_addr, "--amount", "1.1234567"])
        .await
        .fails_with("7 decimal places, but USDC has 6; amounts are never rounded");
    // A malformed hex id is not hashed.
    env.order(payer, &["lock", "0x1234", "--payee", &payee_addr, "--amount", "1"])
        .await
        .fails_with("is not 0x + 64 hex digits");
    // More than the balance (every account holds 1,000,000 USDC).
    let o = env.order(payer, &["lock", "inv-b", "--payee", &payee_addr, "--amount", "2000000"]).await;
    o.fails_with(&format!("{} holds 999997 USDC, less than the 2000000 USDC to lock", c.addr(payer)));
    o.fails_with("no transaction was sent");
    // Release by someone who is not the payer, before delivery.
    let o = env.order(stranger, &["release", &format!("{held:#x}"), "--json"]).await;
    assert_ne!(o.code, 0);
    let err: Value = serde_json::from_str(o.stderr.trim()).unwrap();
    assert_eq!(err["error"]["rule"], "ReleaseNotAllowed");
    assert_eq!(
        err["error"]["message"],
        format!(
            "order {held:#x}: not delivered, so only the payer {} can release it (you are {})",
            c.addr(payer),
            c.addr(stranger)
        )
    );
    // More than remains.
    env.order(payer, &["release", &format!("{held:#x}"), "1.5"])
        .await
        .fails_with(&format!("order {held:#x}: 1.5 USDC exceeds the 1 USDC remaining in escrow"));
    // A frozen order: only the arbiter settles it.
    env.order(payer, &["release", &format!("{frozen:#x}")]).await.fails_with(&format!(
        "order {frozen:#x}: frozen since {}; only the arbiter {} can settle it",
        utc_of(c.now().await),
        c.addr(arbiter)
    ));
    // Delivery after the deadline.
    c.warp(200).await;
    env.order(payee, &["deliver", &format!("{short:#x}")])
        .await
        .fails_with(&format!("order {short:#x}: the delivery deadline passed at"));
    // Not the arbiter.
    env.order(payer, &["resolve", &format!("{frozen:#x}"), "--to-payee", "1"])
        .await
        .fails_with(&format!("only the arbiter {} can resolve it", c.addr(arbiter)));

    assert_eq!(all_nonces().await, start, "a pre-check failure sent a transaction");

    // A rule only the token knows (its blacklist): the node's simulation reverts, the revert is decoded,
    // and nothing is sent.
    let listed = 7usize;
    c.usdc().blacklist(c.addr(listed)).send().await.unwrap().get_receipt().await.unwrap();
    let listed_nonce = env.nonce(listed).await;
    let o = env.order(listed, &["lock", "inv-c", "--payee", &payee_addr, "--amount", "1"]).await;
    o.fails_with(&format!("the token has blacklisted {}", c.addr(listed)));
    o.fails_with("the node's simulation reverted: no transaction was sent");
    assert_eq!(env.nonce(listed).await, listed_nonce);
    // Without an allowance the CLI approves first; when the lock then fails it must say that the approve
    // was sent, never "no transaction was sent".
    c.usdc()
        .approve(c.escrow, U256::ZERO)
        .from(c.addr(listed))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let listed_nonce = env.nonce(listed).await;
    let o = env.order(listed, &["lock", "inv-c", "--payee", &payee_addr, "--amount", "1", "--json"]).await;
    assert_ne!(o.code, 0);
    assert_eq!(env.nonce(listed).await, listed_nonce + 1, "the approve was sent");
    let err: Value = serde_json::from_str(o.stderr.trim()).unwrap();
    assert_eq!(err["error"]["rule"], "AccountBlacklisted", "{o:#?}");
    assert_eq!(err["error"]["sent"], true, "{o:#?}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("the approve transaction 0x"), "{msg}");
    assert!(msg.contains("the lock itself was not sent"), "{msg}");

    // --permit: one transaction, no approve, no allowance left over; signed from a keystore file.
    let permitter = 8usize;
    c.usdc()
        .approve(c.escrow, U256::ZERO)
        .from(c.addr(permitter))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("holdfast-ks-{}", random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
    alloy::signers::local::PrivateKeySigner::encrypt_keystore(
        &dir,
        &mut rng,
        c.anvil.keys()[permitter].to_bytes(),
        "hunter2",
        Some("key.json"),
    )
    .unwrap();
    let before = env.nonce(permitter).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_holdfast"))
        .env_clear()
        .env("HOLDFAST_RPC_URL", c.anvil.endpoint())
        .env("HOLDFAST_DEPLOYMENTS", &env.deployment)
        .env("HOLDFAST_KEYSTORE_PASSWORD", "hunter2")
        .args([
            "order",
            "lock",
            "inv-permit",
            "--payee",
            &payee_addr,
            "--amount",
            "2.5",
            "--permit",
            "--json",
        ])
        .arg("--keystore")
        .arg(dir.join("key.json"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lock: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(lock["status"], "held");
    assert_eq!(lock["payer"], checksum(c.addr(permitter)));
    assert_eq!(env.nonce(permitter).await, before + 1);
    let allowance =
        IAllowance::new(c.token, &c.provider).allowance(c.addr(permitter), c.escrow).call().await.unwrap();
    assert_eq!(allowance, U256::ZERO);
    let _ = std::fs::remove_dir_all(dir);

    // The same rules pass for the right accounts.
    env.order(payee, &["refund", &format!("{short:#x}")]).await.ok();
    env.order(arbiter, &["resolve", &format!("{frozen:#x}"), "--to-payee", "0.25", "--json"]).await.ok();

    // A partial allowance: `approve` sets (not adds), so the CLI approves the whole amount and the lock
    // leaves no allowance behind.
    c.usdc()
        .approve(c.escrow, U256::from(300_000u64))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let lock = env
        .order(payer, &["lock", "inv-partial", "--payee", &payee_addr, "--amount", "1", "--json"])
        .await
        .ok()
        .json();
    assert!(lock["approveTransaction"].is_string(), "{lock}");
    assert_eq!(lock["remainingDecimal"], "1");
    let allowance =
        IAllowance::new(c.token, &c.provider).allowance(c.addr(payer), c.escrow).call().await.unwrap();
    assert_eq!(allowance, U256::ZERO);

    // The transaction succeeds but --wait cannot reach the API: the outcome is still printed, and the error
    // says the transaction went through, so that nobody releases twice by retrying.
    let nonce = env.nonce(payer).await;
    let dead_api = format!("http://127.0.0.1:{}", free_port());
    let o = env
        .order(
            payer,
            &[
                "release",
                &format!("{held:#x}"),
                "0.25",
                "--wait",
                "pending",
                "--api-url",
                &dead_api,
                "--json",
            ],
        )
        .await;
    assert_ne!(o.code, 0, "{o:#?}");
    assert_eq!(env.nonce(payer).await, nonce + 1);
    let done = o.json();
    assert_eq!(done["action"], "release");
    assert_eq!(done["remainingDecimal"], "0.75");
    let err: Value = serde_json::from_str(o.stderr.trim()).unwrap();
    assert_eq!(err["error"]["sent"], true, "{o:#?}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains(done["transactionHash"].as_str().unwrap()), "{msg}");
    assert!(msg.contains("(do not send it again)"), "{msg}");
    let o = env
        .order(payer, &["release", &format!("{held:#x}"), "--wait", "pending", "--api-url", &dead_api])
        .await;
    o.fails_with("succeeded in block");
    o.fails_with("[a transaction was sent: check it before sending anything again]");
    assert!(o.stdout.contains("released 0.75 USDC: order"), "{o:#?}");
}

/// The freeze time the CLI prints: the latest block's time, to the second (freeze was the last block).
fn utc_of(t: u64) -> String {
    let days = t / 86_400;
    let secs = t % 86_400;
    let (y, m, d) = civil(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Without --deployment, the CLI finds `deployments/31337.local.json` in the checkout from any directory in
/// it (upwards from the current one, as `holdfast dev` finds the project root), not only from its root; an
/// explicit --deployment or HOLDFAST_DEPLOYMENTS still wins, and outside a checkout the error says where it
/// looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_finds_the_deployment_from_a_subdirectory_of_the_checkout() {
    let env = setup(false).await;
    let c = &env.c;
    let proj = std::env::temp_dir().join(format!("holdfast-checkout-{}", random_hex()));
    let sub = proj.join("contracts/deep/er");
    for d in [proj.join("script"), proj.join("deployments"), sub.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(proj.join("foundry.toml"), "[profile.default]\n").unwrap();
    std::fs::write(proj.join("script/deploy.sh"), "#!/usr/bin/env bash\n").unwrap();
    std::fs::copy(&env.deployment, proj.join("deployments/31337.local.json")).unwrap();
    let payee = c.addr(2).to_string();

    let lock = env
        .order_in(
            Some(&sub),
            None,
            1,
            &["lock", "from-a-subdir", "--payee", &payee, "--amount", "1", "--json"],
        )
        .await
        .ok()
        .json();
    assert_eq!(lock["escrow"], checksum(c.escrow));
    assert_eq!(lock["status"], "held");

    // An explicit deployment (here one for another chain) is used, not the one found in the checkout.
    let other = proj.join("other-chain.json");
    std::fs::write(
        &other,
        serde_json::json!({"chainId": 1, "escrow": c.escrow.to_string(), "deploymentBlock": 1}).to_string(),
    )
    .unwrap();
    let args = ["lock", "from-a-subdir-2", "--payee", payee.as_str(), "--amount", "1"];
    let flag = [&args[..], &["--deployment", other.to_str().unwrap()]].concat();
    env.order_in(Some(&sub), None, 1, &flag).await.fails_with("no deployment for chain 31337 among");
    env.order_in(Some(&sub), Some(&other), 1, &args).await.fails_with("no deployment for chain 31337 among");

    // Outside any checkout: a clear error that says where it looked.
    let nowhere = std::env::temp_dir().join(format!("holdfast-nowhere-{}", random_hex()));
    std::fs::create_dir_all(&nowhere).unwrap();
    let out = env.order_in(Some(&nowhere), None, 1, &args).await;
    out.fails_with(
        "no escrow: deployments/31337.local.json does not exist and no Holdfast checkout here or above",
    );
    assert!(out.stderr.contains("pass --escrow or --deployment"), "{out:#?}");
    let _ = std::fs::remove_dir_all(&proj);
    let _ = std::fs::remove_dir_all(&nowhere);
}

fn wall_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// `--deliver-by 7d` (and `--valid-until 1h`) count from the wall clock, not from the latest block's
/// timestamp: on a chain whose clock lags (an idle or resumed devnet; here anvil started a day in the past),
/// the deadline is still seven days from now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_relative_deadlines_count_from_the_wall_clock() {
    let day_ago = (wall_clock() - 86_400).to_string();
    let env = setup_with(false, &["--timestamp", &day_ago]).await;
    let c = &env.c;
    assert!(c.now().await + 3_600 < wall_clock(), "the chain's clock is expected to lag the wall clock");
    let payee = c.addr(2).to_string();

    let before = wall_clock();
    let lock = env
        .order(1, &["lock", "wall-1", "--payee", &payee, "--amount", "1", "--deliver-by", "7d", "--json"])
        .await
        .ok()
        .json();
    let after = wall_clock();
    let by = lock["deliverBy"].as_u64().unwrap();
    assert!(
        (before + 7 * 86_400..=after + 7 * 86_400).contains(&by),
        "deliverBy {by} is not 7 days after the wall clock ({before}..{after})"
    );
    let order = c.escrow().getOrder(ref_id(c.addr(1), c.addr(2), "wall-1")).call().await.unwrap();
    assert_eq!(order.order.deadline.to::<u64>(), by, "the order on chain has another deadline");

    // The gasless authorization's validity too.
    let before = wall_clock();
    let signed = env
        .order(1, &["lock", "wall-2", "--payee", &payee, "--amount", "1", "--gasless", "--valid-until", "1h"])
        .await
        .ok()
        .json();
    let after = wall_clock();
    let valid_before: u64 = signed["authorization"]["validBefore"].as_str().unwrap().parse().unwrap();
    assert!((before + 3_600..=after + 3_600).contains(&valid_before), "validBefore {valid_before}");
    let deliver_by = signed["order"]["deliverBy"].as_u64().unwrap();
    assert!(deliver_by >= before + 7 * 86_400, "the default --deliver-by 7d: {deliver_by}");
}

/// `--wait-timeout N` waits N seconds (not N − 1) and says so, not the API's last long-poll chunk; a
/// transaction a reorg removed while the CLI waits gets its own message at once (the API's 409
/// TX_REVERTED), not "not at … finality within N s" after the whole wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_wait_reports_the_real_wait_and_a_reorged_transaction() {
    let env = setup(true).await;
    let c = &env.c;
    let payee = c.addr(2).to_string();

    // anvil marks safe 32 blocks below the head and mines only on transactions: safe never arrives.
    let start = std::time::Instant::now();
    let out = env
        .order(
            1,
            &["lock", "wait-1", "--payee", &payee, "--amount", "1", "--wait", "safe", "--wait-timeout", "3"],
        )
        .await;
    let waited = start.elapsed();
    out.fails_with("did not reach safe finality within 3 s");
    assert!(!out.stderr.contains("within 2 s") && !out.stderr.contains("within 0 s"), "{out:#?}");
    assert!(waited >= std::time::Duration::from_secs(3), "waited only {waited:?}: {out:#?}");
    assert!(
        out.stdout.contains("locked") || out.stdout.contains("order"),
        "the outcome is printed: {out:#?}"
    );

    // A lock whose block a reorg replaces while the CLI waits for safe.
    let id = ref_id(c.addr(1), c.addr(2), "wait-2");
    let start = std::time::Instant::now();
    let reorg = async {
        for _ in 0..200 {
            let r = reqwest::get(format!("{}/v1/orders/{id:#x}", env.api)).await.unwrap();
            if r.status().is_success() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The CLI reads the order back from the node before it waits: let it get there.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        c.provider
            .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions { depth: 1, tx_block_pairs: vec![] })
            .await
            .unwrap();
    };
    let args =
        ["lock", "wait-2", "--payee", &payee, "--amount", "1", "--wait", "safe", "--wait-timeout", "60"];
    let (out, ()) = tokio::join!(env.order(1, &args), reorg);
    let waited = start.elapsed();
    out.fails_with("was removed from the chain by a reorg");
    out.fails_with("TX_REVERTED");
    assert!(!out.stderr.contains("finality within"), "{out:#?}");
    assert!(waited < std::time::Duration::from_secs(30), "answered only after {waited:?}: {out:#?}");
}

/// A reference's id is bound to the payer and the payee: not `keccak256(reference)`, which anyone who
/// guesses the reference could lock first. A squatter's order under that bare hash does not block the
/// payer; the follow-up commands find the order from the same reference with the other party named (the
/// one omitted is the signer); a gasless document carries the reference and relays; a wrong party or a
/// missing one is explained and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_reference_ids_are_bound_to_the_payer_and_the_payee() {
    let env = setup(true).await;
    let c = &env.c;
    let (payer, payee, squatter, other_payer, relayer) = (1usize, 2usize, 6usize, 3usize, 4usize);
    let (payer_addr, payee_addr) = (c.addr(payer).to_string(), c.addr(payee).to_string());
    let id = ref_id(c.addr(payer), c.addr(payee), "invoice-7");
    let plain = keccak256("invoice-7");
    assert_ne!(id, plain);

    // Someone who guessed the reference locks its bare keccak256 first, with a tiny order.
    let now = c.now().await;
    c.lock(squatter, plain, c.addr(payee), 1, Address::ZERO, now + 86_400, 60).await;

    // The payer's lock is not blocked: its id is another.
    let lock = env
        .order(payer, &["lock", "invoice-7", "--payee", &payee_addr, "--amount", "4", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(lock["orderId"], format!("{id:#x}"));
    assert_eq!(lock["orderRef"], "invoice-7");
    assert_eq!(lock["status"], "held");
    let on_chain = c.escrow().getOrder(id).call().await.unwrap();
    assert_eq!(on_chain.order.payer, c.addr(payer));
    assert_eq!(U256::from(on_chain.order.remaining), U256::from(4_000_000u64));
    // The text output names the reference and the parties it was derived from.
    let text = env.order(payer, &["lock", "invoice-7b", "--payee", &payee_addr, "--amount", "1"]).await.ok();
    assert!(
        text.stdout.contains(&format!(
            "locked: order {:#x} (reference \"invoice-7b\")",
            ref_id(c.addr(payer), c.addr(payee), "invoice-7b")
        )),
        "{text:#?}"
    );
    assert!(
        text.stdout.contains(&format!(
            "reference    \"invoice-7b\" between payer {} and payee {}",
            c.addr(payer),
            c.addr(payee)
        )),
        "{text:#?}"
    );

    // Another payer's "invoice-7" with the same payee is another order.
    let other = env
        .order(other_payer, &["lock", "invoice-7", "--payee", &payee_addr, "--amount", "1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(other["orderId"], format!("{:#x}", ref_id(c.addr(other_payer), c.addr(payee), "invoice-7")));

    // Without the other party, or with a wrong one, nothing is sent and the message says why.
    let nonces = [env.nonce(payer).await, env.nonce(payee).await];
    env.order(payee, &["deliver", "invoice-7"]).await.fails_with(
        "the id of a reference depends on the payer and the payee: pass --payer ADDRESS or --payee",
    );
    let wrong = env.order(payee, &["deliver", "invoice-7", "--payer", &c.addr(5).to_string()]).await;
    wrong.fails_with(&format!(
        "order {:#x}: no such order on escrow {} (never locked); this is the id of the reference \"invoice-7\" \
         between payer {} and payee {}: check --payer and --payee",
        ref_id(c.addr(5), c.addr(payee), "invoice-7"),
        c.escrow,
        c.addr(5),
        c.addr(payee)
    ));
    // The order under the bare hash (as an older holdfast locked it) is named.
    wrong.fails_with(&format!("an order {plain:#x} = keccak256(\"invoice-7\") exists"));
    wrong.fails_with("[checked before sending: no transaction was sent]");
    env.order(payee, &["deliver", &format!("{id:#x}"), "--payer", &payer_addr])
        .await
        .fails_with("--payer and --payee only derive the id of a reference; omit them");
    assert_eq!([env.nonce(payer).await, env.nonce(payee).await], nonces);

    // The payee delivers naming the payer; both read it back by the reference; the payer releases naming
    // the payee.
    let d = env
        .order(payee, &["deliver", "invoice-7", "--payer", &payer_addr, "--evidence", "parcel 7", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(d["orderId"], format!("{id:#x}"));
    assert_eq!(d["orderRef"], "invoice-7");
    assert_eq!(d["status"], "delivered");
    let shown = env
        .order(payer, &["show", "invoice-7", "--payee", &payee_addr, "--wait", "20", "--finality", "pending"])
        .await
        .ok();
    assert!(shown.stdout.contains(&format!("order        {id:#x} (reference \"invoice-7\")")), "{shown:#?}");
    let both = env
        .order(relayer, &["show", "invoice-7", "--payer", &payer_addr, "--payee", &payee_addr, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(both["orderId"], format!("{id:#x}"));
    assert_eq!(both["status"], "delivered");
    assert_eq!(both["evidence"], format!("{:#x}", keccak256("parcel 7")));
    // With the wrong payer (here the signer, the party omitted), `show` says what the id was derived from
    // and names the order under the bare hash.
    let out = env.order(5, &["show", "invoice-7", "--payee", &payee_addr]).await;
    out.fails_with("not found in the API");
    out.fails_with(&format!(
        "this is the id of the reference \"invoice-7\" between payer {} and payee {}: check --payer and --payee",
        c.addr(5),
        c.addr(payee)
    ));
    out.fails_with(&format!("the API has an order {plain:#x} = keccak256(\"invoice-7\")"));
    let r = env.order(payer, &["release", "invoice-7", "--payee", &payee_addr, "--json"]).await.ok().json();
    assert_eq!(r["orderId"], format!("{id:#x}"));
    assert_eq!(r["status"], "settled");
    // The squatter's order is untouched.
    assert_eq!(
        U256::from(c.escrow().getOrder(plain).call().await.unwrap().order.remaining),
        U256::from(1u64)
    );

    // Gasless: the document carries the derived id and the reference; the relay checks that they agree.
    let signed = env
        .order(payer, &["lock", "invoice-8", "--payee", &payee_addr, "--amount", "2", "--gasless"])
        .await
        .ok();
    let doc = signed.json();
    let id8 = ref_id(c.addr(payer), c.addr(payee), "invoice-8");
    assert_eq!(doc["order"]["orderId"], format!("{id8:#x}"));
    assert_eq!(doc["order"]["orderRef"], "invoice-8");
    let file = std::env::temp_dir().join(format!("holdfast-auth-ref-{}.json", random_hex()));
    std::fs::write(&file, &signed.stdout).unwrap();
    let relayed = env.order(relayer, &["relay", file.to_str().unwrap(), "--json"]).await.ok().json();
    assert_eq!(relayed["orderId"], format!("{id8:#x}"));
    assert_eq!(relayed["orderRef"], "invoice-8");
    assert_eq!(c.escrow().getOrder(id8).call().await.unwrap().order.payer, c.addr(payer));
    let _ = std::fs::remove_file(&file);
}

/// `order show` for an order a reorg removed says so, with the block of its reverted lock (the API no
/// longer serves the order, but its events endpoint lists the reverted ones), with and without --wait; and
/// it prints the delivery evidence and the freeze reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_show_explains_a_reorged_order_and_prints_evidence_and_freeze_reason() {
    let env = setup(true).await;
    let c = &env.c;
    let (payer, payee, arbiter) = (1usize, 2usize, 3usize);
    let now = c.now().await;

    // Evidence and freeze reason.
    let disputed = B256::with_last_byte(0x51);
    c.lock(payer, disputed, c.addr(payee), 1_000_000, c.addr(arbiter), now + 86_400, 3_600).await;
    let hex = format!("{disputed:#x}");
    env.order(payee, &["deliver", &hex, "--evidence", "report-v2"]).await.ok();
    env.order(payer, &["freeze", &hex, "--reason", "not as described", "--wait", "pending"]).await.ok();
    let shown = env.order(payer, &["show", &hex]).await.ok();
    assert!(shown.stdout.contains("status       frozen"), "{shown:#?}");
    assert!(
        shown.stdout.contains(&format!("evidence     {:#x}", keccak256("report-v2"))),
        "no evidence line: {shown:#?}"
    );
    assert!(
        shown.stdout.contains(&format!(
            "freeze       reason {:#x}, by {}",
            keccak256("not as described"),
            checksum(c.addr(payer))
        )),
        "no freeze line: {shown:#?}"
    );
    // An order without them prints neither.
    let plain = B256::with_last_byte(0x52);
    c.lock(payer, plain, c.addr(payee), 1_000_000, Address::ZERO, now + 86_400, 3_600).await;
    let shown = env.order(payer, &["show", &format!("{plain:#x}"), "--wait", "20"]).await.ok();
    assert!(!shown.stdout.contains("evidence") && !shown.stdout.contains("freeze "), "{shown:#?}");

    // A lock in the last block, indexed, then removed by a reorg.
    let gone = B256::with_last_byte(0x53);
    let tx = c.lock(payer, gone, c.addr(payee), 1_000_000, Address::ZERO, now + 86_400, 3_600).await;
    let block = c.provider.get_transaction_receipt(tx).await.unwrap().unwrap().block_number.unwrap();
    let gone_hex = format!("{gone:#x}");
    env.order(payer, &["show", &gone_hex, "--wait", "20"]).await.ok();
    c.provider
        .anvil_reorg(alloy::rpc::types::anvil::ReorgOptions { depth: 1, tx_block_pairs: vec![] })
        .await
        .unwrap();
    assert!(c.escrow().getOrder(gone).call().await.unwrap().order.payer.is_zero(), "the reorg kept the lock");
    // Until the indexer has seen the reorg, the API still serves the order.
    let mut reverted = false;
    for _ in 0..200 {
        let r = reqwest::get(format!("{}/v1/orders/{gone_hex}", env.api)).await.unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            reverted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reverted, "the API never dropped the reorged order");

    let sentence = format!(
        "order {gone_hex}: removed from the chain by a reorg: its lock in block {block} (transaction {tx:#x}) \
         was reverted, and no lock of it is on the current chain"
    );
    let out = env.order(payer, &["show", &gone_hex]).await;
    out.fails_with(&sentence);
    assert!(!out.stderr.contains("not locked, or not indexed yet"), "{out:#?}");
    let out = env.order(payer, &["show", &gone_hex, "--json"]).await;
    assert_ne!(out.code, 0);
    let err: Value = serde_json::from_str(out.stderr.trim()).unwrap();
    assert!(err["error"]["message"].as_str().unwrap().contains(&sentence), "{out:#?}");
    assert_eq!(err["error"]["rule"], "OrderReorged", "{out:#?}");
    let out = env.order(payer, &["show", &gone_hex, "--wait", "1"]).await;
    out.fails_with(&sentence);
    out.fails_with("it was not locked again within the wait (1 s)");

    // An order never locked is still "not found".
    env.order(payer, &["show", &format!("{:#x}", B256::with_last_byte(0x54))])
        .await
        .fails_with("not found in the API");
}

/// `order show` prints a payout the token refused, credited to the recipient, and then its withdrawal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_show_prints_deferred_payouts_and_their_withdrawal() {
    let env = setup(true).await;
    let c = &env.c;
    let (payer, blocked) = (1usize, 4usize);
    let id = B256::with_last_byte(0x53);
    let hex = format!("{id:#x}");
    c.lock(payer, id, c.addr(blocked), 2_500_000, Address::ZERO, c.now().await + 86_400, 60).await;
    c.usdc().blacklist(c.addr(blocked)).send().await.unwrap().get_receipt().await.unwrap();
    let release = c
        .escrow()
        .release(id, U256::from(2_500_000))
        .from(c.addr(payer))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let indexed = |tx: B256| format!("{}/v1/transactions/{tx:#x}?wait=20", env.api);
    assert!(reqwest::get(indexed(release.transaction_hash)).await.unwrap().status().is_success());
    let shown = env.order(payer, &["show", &hex]).await.ok();
    let line =
        format!("deferred     2.5 USDC to {}: refused by the token, credited;", checksum(c.addr(blocked)));
    assert!(shown.stdout.contains(&format!("{line} withdrawable by the recipient")), "{shown:#?}");

    c.usdc().unBlacklist(c.addr(blocked)).send().await.unwrap().get_receipt().await.unwrap();
    let withdrawal = c
        .escrow()
        .withdraw(c.addr(blocked))
        .from(c.addr(blocked))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(reqwest::get(indexed(withdrawal.transaction_hash)).await.unwrap().status().is_success());
    let shown = env.order(payer, &["show", &hex]).await.ok();
    assert!(
        shown.stdout.contains(&format!("{line} withdrawn in {:#x}", withdrawal.transaction_hash)),
        "{shown:#?}"
    );
}
