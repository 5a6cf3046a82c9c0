//! Test harness: a real anvil started per test, contracts deployed from forge's artifacts, and a fresh
//! SQLite file or Postgres database per store.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    signers::{SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{SolStruct, SolValue, eip712_domain},
};
use holdfast_indexer::{Deployment, FinalityPolicy, IndexerConfig, sync::Indexer};
use holdfast_primitives::bindings::IHoldfastEscrow;
use holdfast_store::{OrderFilter, OrderReader, Store};

sol! {
    #[sol(rpc)]
    interface IMockUSDC {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 amount) external returns (bool);
        function transfer(address to, uint256 amount) external returns (bool);
        function balanceOf(address) external view returns (uint256);
        function blacklist(address account) external;
        function unBlacklist(address account) external;
        function nonces(address owner) external view returns (uint256);
    }

    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
    struct ReceiveWithAuthorization {
        address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce;
    }
}

/// When this process's own `newHeads` subscription saw each new block: the benches time the node's share of
/// a latency with it. The subscription ends when this is dropped.
#[allow(dead_code)] // used by the benches (bench/indexer, bench/api), which include this file
pub struct HeadTimes {
    rx: tokio::sync::mpsc::UnboundedReceiver<Instant>,
    task: tokio::task::JoinHandle<()>,
    _provider: DynProvider,
}

#[allow(dead_code)]
impl HeadTimes {
    /// Forget the heads seen so far.
    pub fn clear(&mut self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// When the next head was seen (waits for it, at most `timeout`).
    pub async fn next(&mut self, timeout: Duration) -> Option<Instant> {
        tokio::time::timeout(timeout, self.rx.recv()).await.ok().flatten()
    }
}

impl Drop for HeadTimes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Workspace root.
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().find(|d| d.join("package.json").exists()).expect("workspace root").to_path_buf()
}

/// Forge artifacts, built once per test binary into `target/forge-out` (its own cache, so a concurrent
/// `forge coverage` or `forge clean` in the work tree cannot pull them away).
fn artifacts() -> &'static PathBuf {
    static OUT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let out = root().join("target/forge-out");
        let status = std::process::Command::new(root().join("node_modules/.bin/forge"))
            .current_dir(root())
            .args(["build", "--skip", "test", "--skip", "script", "--out"])
            .arg(&out)
            .arg("--cache-path")
            .arg(root().join("target/forge-cache"))
            .stdout(std::process::Stdio::null())
            .status()
            .expect("forge (run `npm ci` first)");
        assert!(status.success(), "forge build failed");
        out
    })
}

fn bytecode(contract: &str) -> Bytes {
    let path = artifacts().join(format!("{contract}.sol/{contract}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["bytecode"]["object"].as_str().unwrap().parse().unwrap()
}

/// A running anvil with the escrow deployed.
pub struct Chain {
    pub anvil: AnvilInstance,
    /// The anvil's `HOME`: where it writes `.foundry/anvil/tmp` (an `anvil_reorg` spills states there even
    /// with `--prune-history`); removed with the chain.
    _home: AnvilHome,
    pub provider: DynProvider,
    pub keys: Vec<PrivateKeySigner>,
    pub token: Address,
    pub escrow: Address,
    pub deploy_block: u64,
}

/// A directory of its own for one anvil's home, removed when dropped (after the anvil: fields drop in
/// declaration order, and the instance kills its process when dropped).
struct AnvilHome(PathBuf);

impl AnvilHome {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("holdfast-anvil-home-{}", random_hex()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for AnvilHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Chain {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// [`Chain::start`] with extra anvil arguments. Unless they say otherwise, anvil keeps at most 4,096
    /// historical states, in memory (`--prune-history`): without it anvil spills every historical state to
    /// `~/.foundry/anvil/tmp`, where nothing removes them (gigabytes over a test run, tens of GB for a
    /// large bench chain, which passes a smaller number).
    pub async fn start_with(args: &[&str]) -> Self {
        // `--chain-id N` goes through the builder, so that the instance (and every deployment and signer
        // made from it) knows it.
        let chain_at = args.iter().position(|a| *a == "--chain-id");
        let chain_id = chain_at.map_or(31337, |i| args[i + 1].parse().expect("a chain id"));
        let args: Vec<&str> = match chain_at {
            Some(i) => args[..i].iter().chain(&args[i + 2..]).copied().collect(),
            None => args.to_vec(),
        };
        let args = args.as_slice();
        let mut anvil = Anvil::at(root().join("node_modules/.bin/anvil"))
            .chain_id(chain_id)
            .arg("--accounts")
            .arg("10")
            .args(args);
        if !args.contains(&"--prune-history") {
            anvil = anvil.args(["--prune-history", "4096"]);
        }
        let home = AnvilHome::new();
        let anvil = anvil.env("HOME", &home.0).spawn();
        let keys: Vec<PrivateKeySigner> = anvil.keys().iter().map(|k| k.clone().into()).collect();
        let mut wallet = EthereumWallet::from(keys[0].clone());
        for k in &keys[1..] {
            wallet.register_signer(k.clone());
        }
        // Nonces asked of the node every time: a reorg rolls account nonces back, which a cache would miss.
        let provider = DynProvider::new(
            ProviderBuilder::new()
                .disable_recommended_fillers()
                .with_gas_estimation()
                .with_simple_nonce_management()
                .with_chain_id(anvil.chain_id())
                .wallet(wallet)
                .connect_http(anvil.endpoint_url()),
        );
        // Some history below the contracts, so finality (head - 64 on anvil) sits below the deployment.
        provider.anvil_mine(Some(70), None).await.unwrap();
        let token = deploy(&provider, keys[0].address(), bytecode("MockUSDC")).await;
        let mut code = bytecode("HoldfastEscrow").to_vec();
        code.extend(token.abi_encode());
        let escrow = deploy(&provider, keys[0].address(), code.into()).await;
        let deploy_block = provider.get_block_number().await.unwrap();
        let usdc = IMockUSDC::new(token, &provider);
        for k in &keys {
            usdc.mint(k.address(), U256::from(1_000_000_000_000u64))
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            usdc.approve(escrow, U256::MAX)
                .from(k.address())
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        }
        Self { anvil, _home: home, provider, keys, token, escrow, deploy_block }
    }

    /// Subscribe to new heads over a websocket of its own (see [`HeadTimes`]).
    #[allow(dead_code)]
    pub async fn head_times(&self) -> HeadTimes {
        let ws = DynProvider::new(
            ProviderBuilder::new()
                .connect_ws(alloy::providers::WsConnect::new(self.anvil.ws_endpoint()))
                .await
                .unwrap(),
        );
        let mut heads = ws.subscribe_blocks().await.unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match heads.recv().await {
                    Ok(_) => {
                        let _ = tx.send(Instant::now());
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        HeadTimes { rx, task, _provider: ws }
    }

    pub fn addr(&self, i: usize) -> Address {
        self.keys[i].address()
    }

    pub fn escrow(&self) -> IHoldfastEscrow::IHoldfastEscrowInstance<&DynProvider> {
        IHoldfastEscrow::new(self.escrow, &self.provider)
    }

    pub fn usdc(&self) -> IMockUSDC::IMockUSDCInstance<&DynProvider> {
        IMockUSDC::new(self.token, &self.provider)
    }

    pub fn deployment(&self) -> Deployment {
        Deployment {
            chain_id: self.anvil.chain_id(),
            escrow: self.escrow,
            start_block: self.deploy_block,
            token: Some(self.token),
        }
    }

    pub fn config(&self, ws: bool) -> IndexerConfig {
        let url = if ws { self.anvil.ws_endpoint_url() } else { self.anvil.endpoint_url() };
        let mut cfg = IndexerConfig::new(url, vec![self.deployment()]);
        cfg.finality = FinalityPolicy::default();
        cfg.poll_interval = Duration::from_millis(20);
        cfg
    }

    pub async fn genesis(&self) -> B256 {
        self.provider.get_block_by_number(0.into()).await.unwrap().unwrap().header.hash
    }

    pub async fn now(&self) -> u64 {
        self.provider.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp
    }

    /// Release what remains of an order to its payee, as its payer `payer`.
    pub async fn release_all(&self, payer: usize, order_id: B256) {
        let amount = U256::from(self.escrow().getOrder(order_id).call().await.unwrap().order.remaining);
        self.escrow()
            .release(order_id, amount)
            .from(self.addr(payer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    /// Move time forward and mine a block.
    pub async fn warp(&self, secs: u64) {
        self.provider.anvil_increase_time(secs).await.unwrap();
        self.provider.anvil_mine(Some(1), None).await.unwrap();
    }

    /// Lock by allowance from account `payer`; returns the transaction hash.
    pub async fn lock(
        &self,
        payer: usize,
        order_id: B256,
        payee: Address,
        amount: u64,
        arbiter: Address,
        deliver_by: u64,
        window: u32,
    ) -> B256 {
        self.escrow()
            .lock(order_id, payee, U256::from(amount), arbiter, deliver_by, window)
            .from(self.addr(payer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap()
            .transaction_hash
    }

    /// Lock with an EIP-2612 permit signed by `payer` (after revoking the standing approval).
    pub async fn lock_with_permit(
        &self,
        payer: usize,
        order_id: B256,
        payee: Address,
        amount: u64,
        deliver_by: u64,
    ) {
        self.usdc()
            .approve(self.escrow, U256::ZERO)
            .from(self.addr(payer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let nonce = self.usdc().nonces(self.addr(payer)).call().await.unwrap();
        let deadline = U256::from(deliver_by);
        let msg = Permit {
            owner: self.addr(payer),
            spender: self.escrow,
            value: U256::from(amount),
            nonce,
            deadline,
        };
        let sig = self.keys[payer].sign_hash_sync(&msg.eip712_signing_hash(&self.usdc_domain())).unwrap();
        self.escrow()
            .lockWithPermit(
                order_id,
                payee,
                U256::from(amount),
                Address::ZERO,
                deliver_by,
                60,
                deadline,
                27 + sig.v() as u8,
                sig.r().into(),
                sig.s().into(),
            )
            .from(self.addr(payer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        // Restore the standing approval the other helpers rely on.
        self.usdc()
            .approve(self.escrow, U256::MAX)
            .from(self.addr(payer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    /// Lock with an EIP-3009 authorization signed by `payer`, relayed by `relayer`.
    pub async fn lock_with_authorization(
        &self,
        payer: usize,
        relayer: usize,
        order_id: B256,
        payee: Address,
        amount: u64,
        deliver_by: u64,
    ) {
        let nonce = self
            .escrow()
            .authorizationNonce(order_id, payee, U256::from(amount), Address::ZERO, deliver_by, 60)
            .call()
            .await
            .unwrap();
        let msg = ReceiveWithAuthorization {
            from: self.addr(payer),
            to: self.escrow,
            value: U256::from(amount),
            validAfter: U256::ZERO,
            validBefore: U256::from(deliver_by),
            nonce,
        };
        let sig = self.keys[payer].sign_hash_sync(&msg.eip712_signing_hash(&self.usdc_domain())).unwrap();
        self.escrow()
            .lockWithAuthorization(
                self.addr(payer),
                order_id,
                payee,
                U256::from(amount),
                Address::ZERO,
                deliver_by,
                60,
                U256::ZERO,
                U256::from(deliver_by),
                27 + sig.v() as u8,
                sig.r().into(),
                sig.s().into(),
            )
            .from(self.addr(relayer))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
    }

    /// USDC's EIP-712 domain for the devnet token, written out as a third-party client does (name "USD Coin",
    /// version "2", the chain id, the token's address), never read from the token.
    pub fn usdc_domain(&self) -> alloy::sol_types::Eip712Domain {
        eip712_domain! { name: "USD Coin", version: "2", chain_id: self.anvil.chain_id(), verifying_contract: self.token, }
    }
}

async fn deploy(provider: &DynProvider, from: Address, code: Bytes) -> Address {
    let tx = alloy::rpc::types::TransactionRequest::default().from(from).input(code.into());
    let receipt = provider.send_transaction(tx.into_create()).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status(), "deployment reverted");
    receipt.contract_address.unwrap()
}

/// A fresh store of one backend.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    file: Option<PathBuf>,
}

/// Postgres server for tests (trust auth on the development machines).
pub fn pg_admin_url() -> String {
    std::env::var("HOLDFAST_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let file = std::env::temp_dir().join(format!("holdfast-test-{}.db", random_hex()));
        Self { url: format!("sqlite://{}", file.display()), pg_name: None, file: Some(file) }
    }

    pub async fn postgres() -> Self {
        use sqlx::Connection;
        let name = format!("holdfast_test_{}", random_hex());
        let mut conn =
            sqlx::PgConnection::connect(&pg_admin_url()).await.expect("postgres at 127.0.0.1:5432");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let base = pg_admin_url();
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Self { url, pg_name: Some(name), file: None }
    }

    pub async fn of(backend: &str) -> Self {
        match backend {
            "sqlite" => Self::sqlite().await,
            _ => Self::postgres().await,
        }
    }

    /// The Postgres database's name (`None` for SQLite), e.g. to make it refuse connections in a drill.
    #[allow(dead_code)] // used by the `holdfast` binary tests
    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }

    /// The SQLite file (`None` for Postgres).
    #[allow(dead_code)] // used by the `holdfast` binary tests
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url).await.unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url))
    }

    pub async fn cleanup(mut self, store: Store) {
        store.close().await;
        if let Some(name) = self.pg_name.take() {
            drop_database(&name).await;
        }
        if let Some(f) = self.file.take() {
            remove_sqlite_files(&f);
        }
    }
}

/// A test that ends without `cleanup` (it failed, or never called it) still leaves no database or file
/// behind: the database is dropped on a thread of its own (this may run inside a runtime, or during a
/// panic's unwinding).
impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            remove_sqlite_files(&f);
        }
        if let Some(name) = self.pg_name.take() {
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(drop_database(&name)))
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop a test database");
            }
        }
    }
}

async fn drop_database(name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&pg_admin_url()).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
}

fn remove_sqlite_files(f: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".writer.lock", ".migrate.lock"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", f.display()));
    }
}

/// Index the chain to its head into `store`.
pub async fn index(chain: &Chain, store: &Store) -> Indexer<Store> {
    let indexer = Indexer::new(chain.config(false), store.clone()).await.unwrap();
    indexer.sync_to_head().await.unwrap();
    indexer
}

/// All orders of the store as JSON (canonical comparison).
pub async fn snapshot(store: &Store) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.orders(&OrderFilter { after, limit: 500, ..Default::default() }).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|o| (o.locked.pos.block_number, o.locked.pos.log_index));
        out.extend(page.iter().map(|o| serde_json::to_value(o).unwrap()));
    }
    out
}

/// How much longer the drills run (reorg rounds, crash kills, fault-drill traffic, in-memory reorg cases):
/// `HOLDFAST_DRILL_SCALE=N` multiplies them by N (default 1, the size CI runs).
pub fn drill_scale() -> usize {
    std::env::var("HOLDFAST_DRILL_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

/// 16 random hex characters.
pub fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

sol! {
    #[sol(rpc)]
    interface ILoadGenerator {
        function lockMany(uint256 firstId, uint256 n, address payee, uint256 amountBase, uint64 deliverBy) external;
        function releaseMany(uint256 firstId, uint256 n, uint256 amountBase) external;
    }
}

/// Orders per generator transaction (well under the per-transaction gas cap).
pub const GEN_BATCH: u64 = 150;

impl Chain {
    /// Deploy the test token `contract` (a mock from `test/mocks` with a no-argument constructor and an open
    /// `mint`), mint to account `holder`, and deploy an escrow for it: `(token, escrow)`.
    #[allow(dead_code)] // used by the `holdfast` binary tests
    pub async fn escrow_for_mock(&self, contract: &str, holder: usize, amount: u64) -> (Address, Address) {
        let token = deploy(&self.provider, self.addr(0), bytecode(contract)).await;
        let mut code = bytecode("HoldfastEscrow").to_vec();
        code.extend(token.abi_encode());
        let escrow = deploy(&self.provider, self.addr(0), code.into()).await;
        IMockUSDC::new(token, &self.provider)
            .mint(self.addr(holder), U256::from(amount))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        (token, escrow)
    }

    /// Deploy a funded LoadGenerator (payer of many orders per transaction).
    pub async fn load_generator(&self) -> Address {
        let mut code = bytecode("LoadGenerator").to_vec();
        code.extend(self.escrow.abi_encode());
        let generator = deploy(&self.provider, self.addr(0), code.into()).await;
        self.usdc().mint(generator, U256::from(u64::MAX)).send().await.unwrap().get_receipt().await.unwrap();
        generator
    }

    /// `batches` transactions locking `GEN_BATCH` orders each, and every other batch released (full or part).
    /// Returns the next free order id.
    pub async fn generate(&self, generator: Address, first_id: u64, batches: u64) -> u64 {
        let g = ILoadGenerator::new(generator, &self.provider);
        let deliver_by = self.now().await + 365 * 86_400;
        let mut id = first_id;
        for b in 0..batches {
            g.lockMany(U256::from(id), U256::from(GEN_BATCH), self.addr(7), U256::from(1_000), deliver_by)
                .gas(16_000_000)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
            if b % 2 == 1 {
                g.releaseMany(U256::from(id), U256::from(GEN_BATCH), U256::from(1_000))
                    .gas(16_000_000)
                    .send()
                    .await
                    .unwrap()
                    .get_receipt()
                    .await
                    .unwrap();
            }
            id += GEN_BATCH;
        }
        id
    }
}
