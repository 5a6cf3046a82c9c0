//! `holdfast dev`: the whole stack on a local anvil — chain, MockUSDC + escrow, indexer and API — in one
//! command, with the project's own toolchain (anvil and forge from `node_modules`, installed by `npm ci`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, U64},
    providers::{Provider, ProviderBuilder},
};
use clap::Args;
use eyre::{Context, bail, eyre};
use holdfast_api::{ApiConfig, EscrowInfo, TokenInfo};
use holdfast_indexer::{Deployment, IndexerConfig};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::opts::{
    DEFAULT_DEPLOYMENT, Shutdown, find_project_root, install_metrics, read_deployment_with_token,
};

pub(crate) const EXAMPLES: &str = "\
Examples:
  # Fresh chain and store on 127.0.0.1:8545, API on 127.0.0.1:8080 (Ctrl-C stops everything)
  holdfast dev

  # Resume the previous run: same chain state, same store
  holdfast dev --keep

  # Resume the previous chain, but re-index it into a new store (the way out of a store that no longer
  # matches the chain, e.g. after \"the chain was reset\")
  holdfast dev --reset

  # Other ports, and a block every 2 seconds instead of one per transaction
  holdfast dev --port 9545 --listen 127.0.0.1:9080 --block-time 2

  # Two chains (ids 31337 and 31338, on ports 8545 and 8546) indexed into one store, served by one API
  holdfast dev --chains 2";

/// Arguments of `holdfast dev`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DevArgs {
    /// anvil's port on 127.0.0.1.
    #[arg(long, env = "HOLDFAST_DEV_PORT", default_value_t = 8545)]
    pub(crate) port: u16,
    /// Address to serve the API on.
    #[arg(long, env = "HOLDFAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Resume the previous run's chain (anvil state file) and store instead of starting fresh. Works for
    /// any number of restarts: the chain keeps its genesis block (and so its identity for the indexer).
    #[arg(long)]
    pub(crate) keep: bool,
    /// Resume the previous run's chain (as --keep) but wipe the store and re-index the chain into a new one,
    /// from the escrow's deployment block. Without a previous chain, a fresh chain and store.
    #[arg(long)]
    pub(crate) reset: bool,
    /// Mine a block every N seconds (default: one block per transaction, as soon as it arrives, plus empty
    /// blocks once a second until the last transaction's block is finalized).
    #[arg(long, value_name = "SECONDS")]
    pub(crate) block_time: Option<u64>,
    /// anvil's epoch length, in blocks: `safe` is this many blocks below the head and `finalized` twice as
    /// many (anvil's own default is 32, a minute of blocks that an idle devnet never mines).
    #[arg(long, env = "HOLDFAST_DEV_SLOTS_IN_AN_EPOCH", default_value_t = 1, value_name = "BLOCKS",
          value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) slots_in_an_epoch: u64,
    /// Where the dev stack keeps its store, anvil state and logs (relative to the project root).
    #[arg(long, env = "HOLDFAST_DEV_DIR", default_value = "data/dev")]
    pub(crate) data_dir: PathBuf,
    /// The Holdfast checkout (contracts and deploy script). Default: the nearest directory, from the
    /// current one upwards, that holds foundry.toml and script/deploy.sh.
    #[arg(long, env = "HOLDFAST_PROJECT_ROOT")]
    pub(crate) project_root: Option<PathBuf>,
    /// Deployment file to write (under deployments/, relative to the project root). The default is the file
    /// every `holdfast` command reads when given no --deployment, so they all find this chain's escrow.
    /// With --chains, this is the first chain's; chain 31338 and later write the same path with their chain
    /// id in the name: `31337` replaced by it, or else `-<chain id>` added before the name's first dot
    /// (deployments/31338.local.json; deployments/mine.local.json → deployments/mine-31338.local.json).
    #[arg(long, env = "HOLDFAST_DEV_DEPLOYMENT", default_value = "deployments/31337.local.json")]
    pub(crate) deployment_file: PathBuf,
    /// How many chains to run: anvils with chain ids 31337, 31338, … on --port, --port + 1, …, each with its
    /// own MockUSDC and escrow, all indexed into one store and served by one API (`?chainId=` filters it).
    #[arg(long, env = "HOLDFAST_DEV_CHAINS", default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=MAX_CHAINS as i64))]
    pub(crate) chains: u16,
    /// anvil binary. Default: node_modules/.bin/anvil of the project (`npm ci`), else `anvil` on PATH.
    #[arg(long, env = "HOLDFAST_ANVIL")]
    pub(crate) anvil: Option<PathBuf>,
}

/// What anvil writes with `--config-out`.
#[derive(Debug, Deserialize)]
struct AnvilOut {
    available_accounts: Vec<Address>,
    private_keys: Vec<String>,
}

/// Chain id of the first dev chain; chain k (counting from 0) has chain id `FIRST_CHAIN_ID + k`.
const FIRST_CHAIN_ID: u64 = 31337;

/// The most chains `--chains` runs.
const MAX_CHAINS: u16 = 4;

/// The files of one dev run.
struct DevDir {
    dir: PathBuf,
}

impl DevDir {
    /// Chain `index` (from 0) of this run, its anvil on `base_port + index`, its deployment file derived
    /// from the first chain's `deployment_file` (see [`chain_deployment_file`]).
    fn chain(&self, index: u16, base_port: u16, deployment_file: &Path) -> DevChain {
        let chain_id = FIRST_CHAIN_ID + u64::from(index);
        DevChain {
            dir: self.dir.clone(),
            index,
            chain_id,
            port: base_port.saturating_add(index),
            deployment_file: if index == 0 {
                deployment_file.to_path_buf()
            } else {
                chain_deployment_file(deployment_file, chain_id)
            },
        }
    }
    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("holdfast.db").display())
    }
    /// Remove what a previous run left (only the files this command writes), for every chain it may have
    /// run.
    fn wipe(&self) -> eyre::Result<()> {
        for index in 0..MAX_CHAINS {
            self.chain(index, 0, Path::new(DEFAULT_DEPLOYMENT)).wipe()?;
        }
        self.wipe_store()
    }
    /// Remove the SQLite store.
    fn wipe_store(&self) -> eyre::Result<()> {
        remove_files(&["holdfast.db", "holdfast.db-wal", "holdfast.db-shm"].map(|n| self.dir.join(n)))
    }
}

/// The deployment file of chain `chain_id` given the first chain's: `first` with `31337` in its name
/// replaced by the chain id, or, without it, `-<chain id>` added before the name's first dot
/// (`deployments/mine.local.json` → `deployments/mine-31338.local.json`).
fn chain_deployment_file(first: &Path, chain_id: u64) -> PathBuf {
    let name = first.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let first_id = FIRST_CHAIN_ID.to_string();
    let name = if name.contains(&first_id) {
        name.replacen(&first_id, &chain_id.to_string(), 1)
    } else {
        match name.split_once('.') {
            Some((stem, rest)) => format!("{stem}-{chain_id}.{rest}"),
            None => format!("{name}-{chain_id}"),
        }
    };
    first.with_file_name(name)
}

/// Remove `paths` that exist.
fn remove_files(paths: &[PathBuf]) -> eyre::Result<()> {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).wrap_err_with(|| format!("cannot remove {}", path.display())),
        }
    }
    Ok(())
}

/// One chain of a dev run: its chain id, anvil's port, and its files in the dev directory. The first
/// chain's files have plain names (`anvil-state.json`, `anvil.pid`, `genesis.json`, …, as before
/// `--chains` existed); those of chain k > 0 carry its chain id (`anvil-state-31338.json`,
/// `anvil-31338.pid`, `genesis-31338.json`, …).
struct DevChain {
    dir: PathBuf,
    /// Position in the run, from 0.
    index: u16,
    chain_id: u64,
    /// anvil's port on 127.0.0.1.
    port: u16,
    /// The deployment file the commands read, relative to the project root.
    deployment_file: PathBuf,
}

impl DevChain {
    /// `stem.ext` in the dev directory, for chain k > 0 `stem-<chain id>.ext`.
    fn file(&self, stem: &str, ext: &str) -> PathBuf {
        if self.index == 0 {
            self.dir.join(format!("{stem}.{ext}"))
        } else {
            self.dir.join(format!("{stem}-{}.{ext}", self.chain_id))
        }
    }
    /// anvil's state file (`--state`).
    fn state(&self) -> PathBuf {
        self.file("anvil-state", "json")
    }
    /// The copy of the deployment file kept with the chain.
    fn deployment(&self) -> PathBuf {
        self.file("deployment", "json")
    }
    /// The chain's genesis block (timestamp and hash), recorded when the chain was created.
    fn genesis(&self) -> PathBuf {
        self.file("genesis", "json")
    }
    /// What anvil writes with `--config-out` (its accounts and keys).
    fn config_out(&self) -> PathBuf {
        self.file("anvil", "json")
    }
    /// anvil's pid and port, for stopping it after a `holdfast dev` that was killed.
    fn pid_file(&self) -> PathBuf {
        self.file("anvil", "pid")
    }
    fn anvil_log(&self) -> PathBuf {
        self.file("anvil", "log")
    }
    fn deploy_log(&self) -> PathBuf {
        self.file("deploy", "log")
    }
    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn ws(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
    /// Remove the chain's files of a previous run (not its logs).
    fn wipe(&self) -> eyre::Result<()> {
        remove_files(&[self.state(), self.deployment(), self.config_out(), self.genesis()])
    }
}

/// anvil, stopped with SIGINT (so it writes its state file) when dropped or stopped.
struct Anvil {
    child: Child,
}

impl Anvil {
    /// Ask anvil to stop (it dumps its state on SIGINT) and wait for it; kill it after 15 s.
    async fn stop(mut self) -> eyre::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status.wrap_err("waiting for anvil")?;
            }
            Err(_) => {
                tracing::warn!("anvil did not stop within 15 s; killing it (its state file may be stale)");
                self.child.kill().await.wrap_err("cannot kill anvil")?;
            }
        }
        Ok(())
    }
}

pub(crate) async fn run(args: DevArgs) -> eyre::Result<()> {
    // Before anvil exists: from here on a Ctrl-C is ours to handle, so it can never kill this process
    // with the default action and leave anvil (in its own process group) running.
    let shutdown = Shutdown::install()?;
    let root = match &args.project_root {
        Some(r) => r.canonicalize().wrap_err_with(|| format!("project root {}", r.display()))?,
        None => {
            find_project_root().map_err(|e| eyre!("{e}; run from the repository or pass --project-root"))?
        }
    };
    let anvil_bin = match &args.anvil {
        Some(p) => p.clone(),
        None => {
            let local = root.join("node_modules/.bin/anvil");
            if local.exists() { local } else { PathBuf::from("anvil") }
        }
    };
    let dir = DevDir { dir: root.join(&args.data_dir) };
    std::fs::create_dir_all(&dir.dir).wrap_err_with(|| format!("cannot create {}", dir.dir.display()))?;
    if args.port.checked_add(args.chains - 1).is_none() {
        bail!("--port {} leaves no room for {} chains (ports --port, --port + 1, …)", args.port, args.chains);
    }
    let chains: Vec<DevChain> =
        (0..args.chains).map(|i| dir.chain(i, args.port, &args.deployment_file)).collect();

    // The anvils a killed previous run left, of any chain it may have run (not only the ones run now).
    for index in 0..MAX_CHAINS {
        stop_leftover_anvil(&dir.chain(index, args.port, &args.deployment_file)).await;
    }
    // Ports first: a clear message beats anvil's or the indexer's.
    for c in &chains {
        std::net::TcpListener::bind(("127.0.0.1", c.port)).map_err(|e| {
            let which = if c.index == 0 {
                String::new()
            } else {
                format!(" (chain {}'s anvil: --port + {})", c.chain_id, c.index)
            };
            eyre!(
                "port {} on 127.0.0.1 is not free ({e}): is another `holdfast dev` or anvil running? Use \
                 --port{which}",
                c.port
            )
        })?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| eyre!("cannot serve the API on {} ({e}): use --listen", args.listen))?;

    let flag = if args.reset { "--reset" } else { "--keep" };
    let has_run = |c: &DevChain| c.state().exists() && c.deployment().exists();
    // The first chain decides: without it, everything starts fresh (every chain's files and the store).
    let resume = (args.keep || args.reset) && has_run(&chains[0]);
    if (args.keep || args.reset) && !resume {
        println!("{flag}: no previous dev run in {} — starting a fresh chain", dir.dir.display());
    }
    if !resume {
        dir.wipe()?;
    } else if args.reset {
        dir.wipe_store()?;
    }
    let mut genesis = Vec::new();
    for c in &chains {
        let resumed = resume && has_run(c);
        if resume && !resumed {
            println!("{flag}: no previous chain {} in {} — starting it fresh", c.chain_id, dir.dir.display());
            c.wipe()?;
        }
        genesis.push(if resumed { Some(Genesis::of(c)?) } else { None });
    }

    let mut anvils = Vec::new();
    for (c, g) in chains.iter().zip(&genesis) {
        match start_anvil(&anvil_bin, &args, c, g.as_ref()).await {
            Ok(anvil) => anvils.push(anvil),
            Err(e) => {
                // No anvil is left behind: the chains started so far stop too.
                let _ = stop_all(anvils).await;
                return Err(e);
            }
        }
    }
    // From here on, every exit path stops every anvil.
    let result = run_with_anvils(&args, &root, &dir, &chains, &genesis, listener, shutdown).await;
    let stopped = stop_all(anvils).await;
    result?;
    stopped?;
    let keep = if chains.len() > 1 { format!(" --keep --chains {}", chains.len()) } else { " --keep".into() };
    println!(
        "stopped. Chain state and store are in {} (`holdfast dev{keep}` resumes them)",
        dir.dir.display()
    );
    Ok(())
}

/// Stop every anvil (at once; each writes its state file), and wait for all of them.
async fn stop_all(anvils: Vec<Anvil>) -> eyre::Result<()> {
    let results = futures::future::join_all(anvils.into_iter().map(Anvil::stop)).await;
    results.into_iter().collect()
}

/// Deploy (or resume), then index and serve until stopped; the anvils run throughout (`run` stops them).
async fn run_with_anvils(
    args: &DevArgs,
    root: &Path,
    dir: &DevDir,
    chains: &[DevChain],
    genesis: &[Option<Genesis>],
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> eyre::Result<()> {
    // A stop signal during start-up (deploying, waiting for anvil) ends it here; `run` then stops anvil.
    let (cfgs, api_cfg) = tokio::select! {
        prepared = prepare(args, root, dir, chains, genesis) => prepared?,
        () = shutdown.clone().requested() => {
            println!("interrupted while starting");
            return Ok(());
        }
    };
    let render = install_metrics()?;
    // Without interval mining, anvil mines only on transactions, and `safe`/`finalized` (head − N, head − 2N)
    // would never reach the last transaction's block on an idle devnet.
    let miners: Vec<_> = if args.block_time.is_none() {
        chains.iter().map(|c| tokio::spawn(mine_until_finalized(c.port))).collect()
    } else {
        Vec::new()
    };
    let result = super::run::run_stack(
        cfgs,
        &dir.db_url(),
        api_cfg,
        dev_delivery(),
        render,
        listener,
        shutdown.requested(),
    )
    .await;
    for m in miners {
        m.abort();
    }
    result
}

/// How often the devnet's miner looks at the chain.
const MINE_EVERY: Duration = Duration::from_secs(1);

/// Mine an empty block every [`MINE_EVERY`] while a block above the finalized one holds transactions, so
/// that `safe` and `finalized` reach every transaction within seconds; an idle chain gets no blocks (each
/// block adds a historical state to anvil's state file).
async fn mine_until_finalized(port: u16) {
    let Ok(url) = format!("http://127.0.0.1:{port}").parse() else { return };
    let provider = ProviderBuilder::new().connect_http(url);
    loop {
        tokio::time::sleep(MINE_EVERY).await;
        match unfinalized_transactions(&provider).await {
            Ok(true) => {
                if let Err(e) = provider.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await {
                    tracing::debug!(error = %e, "devnet miner: evm_mine failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "devnet miner: cannot read the chain"),
        }
    }
}

/// Whether a block above the finalized one (at most 130 blocks) holds a transaction.
async fn unfinalized_transactions(provider: &impl Provider) -> eyre::Result<bool> {
    let head = provider.get_block_number().await?;
    let finalized = provider
        .get_block_by_number(BlockNumberOrTag::Finalized)
        .await?
        .map_or(0, |b| b.header.number)
        .max(head.saturating_sub(130));
    for n in (finalized + 1..=head).rev() {
        let count = provider.get_block_transaction_count_by_number(n.into()).await?;
        if count.unwrap_or(0) > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The chain's genesis block. anvil creates a genesis block, stamped with the current time unless given
/// `--timestamp`, every time it starts, and adds it to the blocks of the state file it loads: block 0 of a
/// resumed chain would change after a few restarts (and the indexer would see a new chain). Resuming with
/// the first run's genesis timestamp recreates the very same block.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Genesis {
    timestamp: u64,
    hash: Option<B256>,
}

impl Genesis {
    /// Recorded by the run that created the chain; for a chain from before the record, the earliest block 0
    /// in anvil's state file (every later genesis anvil added to it is stamped later).
    fn of(chain: &DevChain) -> eyre::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(chain.genesis()) {
            return serde_json::from_str(&text)
                .wrap_err_with(|| format!("{} is not a genesis record", chain.genesis().display()));
        }
        Self::repair(chain)
    }

    /// The genesis of a state file written before `holdfast dev` recorded it: the earliest block 0 (every
    /// later genesis anvil added to the file is stamped later). Those later ones are removed from the file:
    /// anvil would otherwise pick any of the file's blocks 0 when it loads it.
    fn repair(chain: &DevChain) -> eyre::Result<Self> {
        let path = chain.state();
        let unreadable =
            || format!("cannot read the blocks of {} (run without --keep for a fresh chain)", path.display());
        let text =
            std::fs::read_to_string(&path).wrap_err_with(|| format!("cannot read {}", path.display()))?;
        let mut state: serde_json::Value = serde_json::from_str(&text).wrap_err_with(unreadable)?;
        let blocks =
            state.get_mut("blocks").and_then(|b| b.as_array_mut()).ok_or_else(|| eyre!(unreadable()))?;
        let field = |b: &serde_json::Value, name: &str| -> Option<u64> {
            serde_json::from_value::<U64>(b.get("header")?.get(name)?.clone()).ok().map(|v| v.to::<u64>())
        };
        let timestamp = blocks
            .iter()
            .filter(|b| field(b, "number") == Some(0))
            .filter_map(|b| field(b, "timestamp"))
            .min()
            .ok_or_else(|| eyre!("{} holds no genesis block", path.display()))?;
        let before = blocks.len();
        blocks.retain(|b| field(b, "number") != Some(0) || field(b, "timestamp") == Some(timestamp));
        if blocks.len() != before {
            tracing::info!(
                removed = before - blocks.len(),
                "removing the extra genesis blocks from anvil's state file"
            );
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&state)?)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .wrap_err_with(|| format!("cannot rewrite {}", path.display()))?;
        }
        Ok(Self { timestamp, hash: None })
    }

    /// Read block 0 of the running chain.
    async fn read(provider: &impl Provider) -> eyre::Result<Self> {
        let b = provider
            .get_block_by_number(BlockNumberOrTag::Number(0))
            .await?
            .ok_or_else(|| eyre!("the node has no block 0"))?;
        Ok(Self { timestamp: b.header.timestamp, hash: Some(b.header.hash) })
    }

    fn save(&self, chain: &DevChain) -> eyre::Result<()> {
        std::fs::write(chain.genesis(), serde_json::to_string_pretty(self)?)
            .wrap_err_with(|| format!("cannot write {}", chain.genesis().display()))
    }
}

/// Deploy to every chain (or restore the deployment of a resumed one), print the banner, and return the
/// indexer's configuration of each chain and the API's configuration.
async fn prepare(
    args: &DevArgs,
    root: &Path,
    dir: &DevDir,
    chains: &[DevChain],
    genesis: &[Option<Genesis>],
) -> eyre::Result<(Vec<IndexerConfig>, ApiConfig)> {
    // One after the other: the deployments share the project's forge build cache.
    let mut ready = Vec::new();
    for (c, g) in chains.iter().zip(genesis) {
        ready.push(prepare_chain(args, root, c, g.as_ref()).await?);
    }
    let mut api_cfg = ApiConfig::default();
    let mut cfgs = Vec::new();
    for r in &ready {
        cfgs.push(IndexerConfig::new(r.ws.parse()?, vec![r.deployment.clone()]));
        api_cfg.escrows.push(EscrowInfo {
            chain_id: r.chain_id,
            escrow: r.deployment.escrow,
            token: r.token.clone(),
        });
    }
    let first = &ready[0];
    print_banner(&Banner {
        resumed: first.resumed,
        reset: first.resumed && args.reset,
        slots: args.slots_in_an_epoch,
        block_time: args.block_time,
        http: &first.http,
        ws: &first.ws,
        chain_id: first.chain_id,
        escrow: first.deployment.escrow,
        deployment_block: first.deployment.start_block,
        token_address: first.token.address.unwrap_or_default(),
        symbol: &first.token.symbol,
        decimals: first.token.decimals,
        api: args.listen,
        dir: &dir.dir,
        deployment: &first.deployment_file,
        accounts: &first.accounts,
        chains: &ready,
    });
    Ok((cfgs, api_cfg))
}

/// A chain of the run, deployed (or resumed) and checked.
struct ChainReady {
    chain_id: u64,
    /// Resumed from the previous run (else a fresh chain).
    resumed: bool,
    http: String,
    ws: String,
    deployment: Deployment,
    token: TokenInfo,
    /// The deployment file the commands read (absolute).
    deployment_file: PathBuf,
    /// anvil's accounts and keys.
    accounts: AnvilOut,
}

/// Wait for the chain's anvil, check its genesis block (a resumed chain) or record it (a fresh one), and
/// deploy MockUSDC and the escrow to a fresh chain.
async fn prepare_chain(
    args: &DevArgs,
    root: &Path,
    chain: &DevChain,
    genesis: Option<&Genesis>,
) -> eyre::Result<ChainReady> {
    let resume = genesis.is_some();
    let http = chain.http();
    let provider = ProviderBuilder::new().connect_http(http.parse()?);
    wait_for_node(&provider).await?;
    let chain_id = provider.get_chain_id().await?;
    if chain.index > 0 && chain_id != chain.chain_id {
        bail!(
            "the node on port {} is chain {chain_id}, not the chain {} that `holdfast dev` started there",
            chain.port,
            chain.chain_id
        );
    }
    let now = Genesis::read(&provider).await?;
    match genesis {
        None => now.save(chain)?,
        Some(before) => {
            // Block 1 names the chain's true genesis as its parent.
            if let Some(b1) = provider.get_block_by_number(BlockNumberOrTag::Number(1)).await?
                && Some(b1.header.parent_hash) != now.hash
            {
                bail!(
                    "anvil's state file {} yields a block 0 ({}) that is not the parent of block 1 ({}); run \
                     without --keep for a fresh chain",
                    chain.state().display(),
                    now.hash.unwrap_or_default(),
                    b1.header.parent_hash
                );
            }
            if before.hash.is_some_and(|h| Some(h) != now.hash) && !args.reset {
                bail!(
                    "the resumed chain's genesis block {} is not the one of the chain the store indexed ({}); \
                     run `holdfast dev --reset` to re-index it, or without --keep for a fresh chain",
                    now.hash.unwrap_or_default(),
                    before.hash.unwrap_or_default()
                );
            }
            now.save(chain)?;
            // anvil's clock restarts at the genesis timestamp given to it: back to the wall clock (or the
            // latest block's time, if later), so resumed blocks are not stamped in the past.
            let wall =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let latest = provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await?
                .map_or(0, |b| b.header.timestamp);
            provider
                .raw_request::<_, serde_json::Value>("evm_setTime".into(), [wall.max(latest)])
                .await
                .wrap_err("cannot set anvil's clock")?;
        }
    }

    let accounts = read_anvil_out(chain).await?;

    let deployment_file = root.join(&chain.deployment_file);
    if resume {
        // The commands' default deployment file points at this chain again.
        if let Some(parent) = deployment_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(chain.deployment(), &deployment_file)
            .wrap_err_with(|| format!("cannot restore {}", deployment_file.display()))?;
    } else {
        deploy(root, chain, &http, &accounts).await?;
        std::fs::copy(&deployment_file, chain.deployment())
            .wrap_err_with(|| format!("cannot keep a copy of {}", deployment_file.display()))?;
    }
    let (deployment, token) = read_deployment_with_token(&chain.deployment())?;
    if provider.get_code_at(deployment.escrow).await?.is_empty() {
        bail!(
            "the escrow {} of {} has no code on this chain: the state file does not match; run without --keep",
            deployment.escrow,
            chain.deployment().display()
        );
    }
    let token = token.ok_or_else(|| eyre!("{} has no token entry", chain.deployment().display()))?;
    Ok(ChainReady {
        chain_id,
        resumed: resume,
        http,
        ws: chain.ws(),
        deployment,
        token,
        deployment_file,
        accounts,
    })
}

/// anvil's accounts and keys, from its `--config-out` file (written as it starts: read again for up to
/// 2 s while it is missing or incomplete).
async fn read_anvil_out(chain: &DevChain) -> eyre::Result<AnvilOut> {
    let path = chain.config_out();
    let mut tries = 0;
    loop {
        let read = std::fs::read_to_string(&path)
            .wrap_err("cannot read anvil's --config-out file")
            .and_then(|text| serde_json::from_str(&text).wrap_err("cannot parse anvil's --config-out file"));
        match read {
            Ok(out) => return Ok(out),
            Err(e) if tries >= 20 => return Err(e).wrap_err_with(|| path.display().to_string()),
            Err(_) => tries += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start the chain's anvil (resuming `genesis`'s chain from its state file, if given) and record its pid.
async fn start_anvil(
    bin: &Path,
    args: &DevArgs,
    chain: &DevChain,
    genesis: Option<&Genesis>,
) -> eyre::Result<Anvil> {
    let log = std::fs::File::create(chain.anvil_log())?;
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &chain.port.to_string()])
        .arg("--state")
        .arg(chain.state())
        // Old blocks stay queryable after a resume (the indexer reconciles against historical balances).
        .arg("--preserve-historical-states")
        .arg("--config-out")
        .arg(chain.config_out())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal reaches `holdfast dev` only, which stops the
        // indexer and the API first and then anvil (SIGINT, so that anvil writes its state file).
        .process_group(0)
        .kill_on_drop(true);
    // safe = head − N, finalized = head − 2N (anvil's default N is 32).
    cmd.args(["--slots-in-an-epoch", &args.slots_in_an_epoch.to_string()]);
    if chain.index > 0 {
        // The first chain keeps anvil's default, 31337.
        cmd.args(["--chain-id", &chain.chain_id.to_string()]);
    }
    if let Some(g) = genesis {
        cmd.args(["--timestamp", &g.timestamp.to_string()]);
    }
    if let Some(secs) = args.block_time {
        cmd.args(["--block-time", &secs.to_string()]);
    }
    let child = cmd.spawn().map_err(|e| {
        eyre!(
            "cannot start anvil ({}): {e}. Run `npm ci` in the project (it installs Foundry) or pass --anvil",
            bin.display()
        )
    })?;
    // From here on, dropping `anvil` kills it (an error writing the pid file included).
    let anvil = Anvil { child };
    if let Some(pid) = anvil.child.id() {
        std::fs::write(chain.pid_file(), format!("{pid} {}", chain.port))?;
    }
    Ok(anvil)
}

/// anvil runs in its own process group, so if `holdfast dev` itself was killed (SIGKILL), its anvil kept
/// running. Stop such a leftover — only when the recorded pid is still an anvil on the same port.
async fn stop_leftover_anvil(chain: &DevChain) {
    let port = chain.port;
    let pid_file = chain.pid_file();
    let Ok(text) = std::fs::read_to_string(&pid_file) else { return };
    let _ = std::fs::remove_file(&pid_file);
    let mut parts = text.split_whitespace();
    let (Some(Ok(pid)), Some(Ok(old_port))) =
        (parts.next().map(str::parse::<u32>), parts.next().map(str::parse::<u16>))
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_ours = old_port == port
        && args.first().is_some_and(|a| a.ends_with(b"anvil"))
        && args.windows(2).any(|w| w[0] == b"--port" && w[1] == port.to_string().as_bytes());
    if is_ours {
        if chain.index == 0 {
            println!("stopping the anvil (pid {pid}) that a previous `holdfast dev` left running");
        } else {
            println!(
                "stopping the anvil of chain {} (pid {pid}) that a previous `holdfast dev` left running",
                chain.chain_id
            );
        }
        let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
        if stopped(pid, port, 100).await {
            return;
        }
        tracing::warn!(pid, "the leftover anvil did not stop within 10 s of SIGINT; killing it");
        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status().await;
        stopped(pid, port, 50).await;
    }
}

/// Wait up to `tries` × 100 ms until `pid` has stopped and released `port`.
///
/// Both are checked: the process state alone is not enough. An orphan that exited stays a zombie until its
/// new parent reaps it (a container's init may never do so), and the thread-group leader shows as a zombie
/// while the process's other threads are still exiting and still hold its sockets.
async fn stopped(pid: u32, port: u16, tries: u32) -> bool {
    for _ in 0..tries {
        if !is_running(pid) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Whether `pid` is a live process (a zombie, state Z or X in /proc/PID/stat, counts as gone).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state is the first field after the parenthesised command name, which may itself hold spaces.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

async fn wait_for_node(provider: &impl Provider) -> eyre::Result<()> {
    for _ in 0..200 {
        if provider.get_chain_id().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("anvil did not answer within 10 s (see its log in the dev directory)")
}

/// Deploy MockUSDC and the escrow to `chain` (at `rpc`) with script/deploy.sh, which writes the chain's
/// deployment file.
async fn deploy(root: &Path, chain: &DevChain, rpc: &str, accounts: &AnvilOut) -> eyre::Result<()> {
    let log_path = chain.deploy_log();
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("script/deploy.sh"))
        .args(["--rpc-url", rpc])
        .current_dir(root)
        .env("DEPLOYMENT_FILE", &chain.deployment_file)
        // forge's broadcast log in this run's own directory: every devnet is chain 31337, and two
        // `holdfast dev` deploying at once would otherwise write (and read) the same
        // broadcast/Deploy.s.sol/31337/run-latest.json. (forge keeps one directory per chain id in it.)
        .env("FOUNDRY_BROADCAST", chain.dir.join("broadcast"))
        .env_remove("PRIVATE_KEY")
        .env_remove("TOKEN")
        .env_remove("MINT_TO")
        .env_remove("MINT_AMOUNT");
    if chain.chain_id != FIRST_CHAIN_ID {
        // The script's devnet defaults (anvil's first key, a MockUSDC minted to anvil's accounts) are for
        // chain 31337 only: the same, spelled out, for the other dev chains.
        let key = accounts.private_keys.first().ok_or_else(|| eyre!("anvil reported no accounts"))?;
        let mint_to: Vec<String> = accounts.available_accounts.iter().map(ToString::to_string).collect();
        cmd.env("PRIVATE_KEY", key).env("ALLOW_MOCK_TOKEN", "true").env("MINT_TO", mint_to.join(","));
    }
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // An interrupted start-up drops this future: the script goes with it.
        .kill_on_drop(true)
        .status()
        .await
        .wrap_err("cannot run script/deploy.sh")?;
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "deploying MockUSDC and the escrow failed ({status}); {}:\n{}",
            log_path.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

struct Banner<'a> {
    resumed: bool,
    reset: bool,
    slots: u64,
    block_time: Option<u64>,
    http: &'a str,
    ws: &'a str,
    chain_id: u64,
    escrow: Address,
    deployment_block: u64,
    token_address: Address,
    symbol: &'a str,
    decimals: u8,
    api: SocketAddr,
    dir: &'a Path,
    deployment: &'a Path,
    accounts: &'a AnvilOut,
    /// Every chain of the run (listed when there are several; the lines above are the first one's).
    chains: &'a [ChainReady],
}

/// `text` as one shell word: bare when it needs no quoting, else in double quotes (`expand`: `$PATH` stays
/// expandable) or single quotes.
fn shell_word(text: &str, expand: bool) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._:-=@+,%".contains(c);
    if text.chars().all(plain) {
        text.to_string()
    } else if expand {
        let escaped: String =
            text.chars().flat_map(|c| if "\\\"`".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
        format!("\"{escaped}\"")
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn print_banner(b: &Banner<'_>) {
    let api = format!("http://{}", b.api);
    let how = match (b.resumed, b.reset) {
        (true, true) => {
            "chain resumed from the previous run, store wiped and re-indexed from the deployment block"
        }
        (true, false) => "resumed from the previous run",
        (false, _) => "fresh chain and store",
    };
    let accounts = &b.accounts.available_accounts;
    let keys = &b.accounts.private_keys;
    println!("Holdfast dev stack is up ({how})");
    println!("  RPC         {}  (ws: {})  chain id {}", b.http, b.ws, b.chain_id);
    println!("  Escrow      {}  (deployed in block {})", b.escrow, b.deployment_block);
    println!(
        "  Token       {}  {}, {} decimals (MockUSDC: anyone can mint)",
        b.token_address, b.symbol, b.decimals
    );
    println!("  API         {api}  (docs {api}/docs)");
    let mining = match b.block_time {
        Some(secs) => format!("a block every {secs} s"),
        None => "a block per transaction, then one a second until it is finalized".into(),
    };
    println!("  Finality    safe = head − {}, finalized = head − {}  ({mining})", b.slots, 2 * b.slots);
    println!("  Data        {}  (SQLite store, anvil state, logs)", b.dir.display());
    if b.chains.len() > 1 {
        print_chains(b.chains, &api);
    }
    println!();
    let every = if b.chains.len() > 1 { ", on every chain" } else { "" };
    println!(
        "Funded accounts: 10,000 ETH and 1,000,000 {} each at deployment{every} (anvil's public dev keys)",
        b.symbol
    );
    for (i, (a, k)) in accounts.iter().zip(keys).enumerate() {
        println!("  ({i}) {a}  key {k}");
    }
    if let (Some(a0), Some(k0), Some(a1), Some(k1)) =
        (accounts.first(), keys.first(), accounts.get(1), keys.get(1))
    {
        let exe = std::env::current_exe().ok();
        let bin_dir = exe.as_deref().and_then(Path::parent).map(|d| d.display().to_string());
        println!();
        println!(
            "Try it in another terminal (account 0 pays account 1; the exports point every command at this stack):"
        );
        if let Some(d) = bin_dir {
            println!("  export PATH={}", shell_word(&format!("{d}:$PATH"), true));
        }
        println!("  export HOLDFAST_RPC_URL={}", shell_word(b.http, false));
        println!("  export HOLDFAST_API_URL={}", shell_word(&api, false));
        println!("  export HOLDFAST_DEPLOYMENTS={}", shell_word(&b.deployment.display().to_string(), false));
        println!("  export HOLDFAST_PRIVATE_KEY={k0}");
        println!("  holdfast order lock demo-1 --payee {a1} --amount 12.50");
        println!(
            "  HOLDFAST_PRIVATE_KEY={k1} holdfast order deliver demo-1 --payer {a0} --evidence \"parcel 1Z999\""
        );
        println!("  holdfast order show demo-1 --payee {a1} --wait 10 --finality safe");
        println!("  holdfast order release demo-1 5 --payee {a1}");
        println!("  holdfast order release demo-1 --payee {a1}");
        println!(
            "  curl -s {api}/v1/orders/{:#x}    # demo-1's id: keccak256(abi.encode(payer, payee, keccak256(\"demo-1\")))",
            super::order::reference_id(*a0, *a1, "demo-1")
        );
        let db = format!("sqlite://{}", b.dir.join("holdfast.db").display());
        println!();
        println!(
            "Webhooks to a local receiver that verifies and prints each delivery (add prints the secret):"
        );
        println!(
            "  holdfast webhooks add --url http://127.0.0.1:9000/ --allow-private-targets --database-url {}",
            shell_word(&db, false)
        );
        println!("  holdfast webhooks listen --port 9000 --secret whsec_…");
    }
    println!();
    if b.chains.len() > 1 {
        println!(
            "Ctrl-C stops everything; `holdfast dev --keep --chains {}` resumes these chains and the store.",
            b.chains.len()
        );
    } else {
        println!("Ctrl-C stops everything; `holdfast dev --keep` resumes this chain and store.");
    }
}

/// The banner's list of the chains of a run with several, and how to read one chain's orders.
fn print_chains(chains: &[ChainReady], api: &str) {
    println!();
    println!(
        "Chains: {}, indexed into one store and served by one API (every order has its chainId; filter by it \
         with ?chainId=):",
        chains.len()
    );
    for c in chains {
        let how = if c.resumed { "resumed" } else { "fresh" };
        println!("  chain {}  RPC {}  (ws: {})  {how}", c.chain_id, c.http, c.ws);
        println!(
            "               Escrow {}  (deployed in block {})",
            c.deployment.escrow, c.deployment.start_block
        );
        println!(
            "               Token {}  {}, {} decimals",
            c.token.address.unwrap_or_default(),
            c.token.symbol,
            c.token.decimals
        );
        println!("               Deployment {}", c.deployment_file.display());
    }
    if let Some(last) = chains.last() {
        let url = format!("{api}/v1/orders?chainId={}", last.chain_id);
        println!("  curl -s {}    # chain {}'s orders only", shell_word(&url, false), last.chain_id);
    }
}

/// The devnet's webhook worker: local receivers (`holdfast webhooks listen`) are private targets, so they
/// are allowed here.
fn dev_delivery() -> holdfast_webhooks::WorkerConfig {
    holdfast_webhooks::WorkerConfig { allow_private_targets: true, ..Default::default() }
}
