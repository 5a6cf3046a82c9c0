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
use holdfast_api::{ApiConfig, EscrowInfo};
use holdfast_indexer::IndexerConfig;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

use crate::opts::{Shutdown, find_project_root, install_metrics, read_deployment_with_token};

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
  holdfast dev --port 9545 --listen 127.0.0.1:9080 --block-time 2";

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
    #[arg(long, env = "HOLDFAST_DEV_DEPLOYMENT", default_value = "deployments/31337.local.json")]
    pub(crate) deployment_file: PathBuf,
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

/// The files of one dev run.
struct DevDir {
    dir: PathBuf,
}

impl DevDir {
    fn state(&self) -> PathBuf {
        self.dir.join("anvil-state.json")
    }
    fn deployment(&self) -> PathBuf {
        self.dir.join("deployment.json")
    }
    /// The chain's genesis block (timestamp and hash), recorded when the chain was created.
    fn genesis(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }
    fn db_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("holdfast.db").display())
    }
    /// Remove what a previous run left (only the files this command writes).
    fn wipe(&self) -> eyre::Result<()> {
        self.remove(&["anvil-state.json", "deployment.json", "anvil.json", "genesis.json"])?;
        self.wipe_store()
    }
    /// Remove the SQLite store.
    fn wipe_store(&self) -> eyre::Result<()> {
        self.remove(&["holdfast.db", "holdfast.db-wal", "holdfast.db-shm"])
    }
    fn remove(&self, names: &[&str]) -> eyre::Result<()> {
        for name in names {
            match std::fs::remove_file(self.dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e)
                        .wrap_err_with(|| format!("cannot remove {}", self.dir.join(name).display()));
                }
            }
        }
        Ok(())
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

    stop_leftover_anvil(&dir, args.port).await;
    // Ports first: a clear message beats anvil's or the indexer's.
    std::net::TcpListener::bind(("127.0.0.1", args.port)).map_err(|e| {
        eyre!(
            "port {} on 127.0.0.1 is not free ({e}): is another `holdfast dev` or anvil running? Use --port",
            args.port
        )
    })?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| eyre!("cannot serve the API on {} ({e}): use --listen", args.listen))?;

    let flag = if args.reset { "--reset" } else { "--keep" };
    let resume = (args.keep || args.reset) && dir.state().exists() && dir.deployment().exists();
    if (args.keep || args.reset) && !resume {
        println!("{flag}: no previous dev run in {} — starting a fresh chain", dir.dir.display());
    }
    if !resume {
        dir.wipe()?;
    } else if args.reset {
        dir.wipe_store()?;
    }
    let genesis = if resume { Some(Genesis::of(&dir)?) } else { None };

    let anvil = start_anvil(&anvil_bin, &args, &dir, genesis.as_ref()).await?;
    // From here on, every exit path stops anvil.
    let result = run_with_anvil(&args, &root, &dir, genesis.as_ref(), listener, shutdown).await;
    let stopped = anvil.stop().await;
    result?;
    stopped?;
    println!(
        "stopped. Chain state and store are in {} (`holdfast dev --keep` resumes them)",
        dir.dir.display()
    );
    Ok(())
}

async fn run_with_anvil(
    args: &DevArgs,
    root: &Path,
    dir: &DevDir,
    genesis: Option<&Genesis>,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> eyre::Result<()> {
    // A stop signal during start-up (deploying, waiting for anvil) ends it here; `run` then stops anvil.
    let (cfg, api_cfg) = tokio::select! {
        prepared = prepare(args, root, dir, genesis) => prepared?,
        () = shutdown.clone().requested() => {
            println!("interrupted while starting");
            return Ok(());
        }
    };
    let render = install_metrics()?;
    // Without interval mining, anvil mines only on transactions, and `safe`/`finalized` (head − N, head − 2N)
    // would never reach the last transaction's block on an idle devnet.
    let miner = args.block_time.is_none().then(|| tokio::spawn(mine_until_finalized(args.port)));
    let result = super::run::run_stack(
        vec![cfg],
        &dir.db_url(),
        api_cfg,
        dev_delivery(),
        render,
        listener,
        shutdown.requested(),
    )
    .await;
    if let Some(m) = miner {
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
    fn of(dir: &DevDir) -> eyre::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(dir.genesis()) {
            return serde_json::from_str(&text)
                .wrap_err_with(|| format!("{} is not a genesis record", dir.genesis().display()));
        }
        Self::repair(dir)
    }

    /// The genesis of a state file written before `holdfast dev` recorded it: the earliest block 0 (every
    /// later genesis anvil added to the file is stamped later). Those later ones are removed from the file:
    /// anvil would otherwise pick any of the file's blocks 0 when it loads it.
    fn repair(dir: &DevDir) -> eyre::Result<Self> {
        let path = dir.state();
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

    fn save(&self, dir: &DevDir) -> eyre::Result<()> {
        std::fs::write(dir.genesis(), serde_json::to_string_pretty(self)?)
            .wrap_err_with(|| format!("cannot write {}", dir.genesis().display()))
    }
}

/// Deploy (or restore the deployment of a resumed chain), print the banner, and return the indexer's and
/// the API's configuration.
async fn prepare(
    args: &DevArgs,
    root: &Path,
    dir: &DevDir,
    genesis: Option<&Genesis>,
) -> eyre::Result<(IndexerConfig, ApiConfig)> {
    let resume = genesis.is_some();
    let http = format!("http://127.0.0.1:{}", args.port);
    let provider = ProviderBuilder::new().connect_http(http.parse()?);
    wait_for_node(&provider).await?;
    let chain_id = provider.get_chain_id().await?;
    let now = Genesis::read(&provider).await?;
    match genesis {
        None => now.save(dir)?,
        Some(before) => {
            // Block 1 names the chain's true genesis as its parent.
            if let Some(b1) = provider.get_block_by_number(BlockNumberOrTag::Number(1)).await?
                && Some(b1.header.parent_hash) != now.hash
            {
                bail!(
                    "anvil's state file {} yields a block 0 ({}) that is not the parent of block 1 ({}); run \
                     without --keep for a fresh chain",
                    dir.state().display(),
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
            now.save(dir)?;
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

    let deployment_file = root.join(&args.deployment_file);
    if resume {
        // The commands' default deployment file points at this chain again.
        if let Some(parent) = deployment_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(dir.deployment(), &deployment_file)
            .wrap_err_with(|| format!("cannot restore {}", deployment_file.display()))?;
    } else {
        deploy(root, dir, &http, &args.deployment_file).await?;
        std::fs::copy(&deployment_file, dir.deployment())
            .wrap_err_with(|| format!("cannot keep a copy of {}", deployment_file.display()))?;
    }
    let (deployment, token) = read_deployment_with_token(&dir.deployment())?;
    if provider.get_code_at(deployment.escrow).await?.is_empty() {
        bail!(
            "the escrow {} of {} has no code on this chain: the state file does not match; run without --keep",
            deployment.escrow,
            dir.deployment().display()
        );
    }
    let token = token.ok_or_else(|| eyre!("{} has no token entry", dir.deployment().display()))?;

    let ws = format!("ws://127.0.0.1:{}", args.port);
    let cfg = IndexerConfig::new(ws.parse()?, vec![deployment.clone()]);
    let mut api_cfg = ApiConfig::default();
    api_cfg.escrows.push(EscrowInfo { chain_id, escrow: deployment.escrow, token: token.clone() });

    let anvil_out: AnvilOut = serde_json::from_str(
        &std::fs::read_to_string(dir.dir.join("anvil.json"))
            .wrap_err("cannot read anvil's --config-out file")?,
    )
    .wrap_err("cannot parse anvil's --config-out file")?;

    print_banner(&Banner {
        resumed: resume,
        reset: resume && args.reset,
        slots: args.slots_in_an_epoch,
        block_time: args.block_time,
        http: &http,
        ws: &ws,
        chain_id,
        escrow: deployment.escrow,
        deployment_block: deployment.start_block,
        token_address: token.address.unwrap_or_default(),
        symbol: &token.symbol,
        decimals: token.decimals,
        api: args.listen,
        dir: &dir.dir,
        deployment: &deployment_file,
        accounts: &anvil_out,
    });
    Ok((cfg, api_cfg))
}

async fn start_anvil(
    bin: &Path,
    args: &DevArgs,
    dir: &DevDir,
    genesis: Option<&Genesis>,
) -> eyre::Result<Anvil> {
    let log = std::fs::File::create(dir.dir.join("anvil.log"))?;
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &args.port.to_string()])
        .arg("--state")
        .arg(dir.state())
        // Old blocks stay queryable after a resume (the indexer reconciles against historical balances).
        .arg("--preserve-historical-states")
        .arg("--config-out")
        .arg(dir.dir.join("anvil.json"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal reaches `holdfast dev` only, which stops the
        // indexer and the API first and then anvil (SIGINT, so that anvil writes its state file).
        .process_group(0)
        .kill_on_drop(true);
    // safe = head − N, finalized = head − 2N (anvil's default N is 32).
    cmd.args(["--slots-in-an-epoch", &args.slots_in_an_epoch.to_string()]);
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
    if let Some(pid) = child.id() {
        std::fs::write(dir.dir.join("anvil.pid"), format!("{pid} {}", args.port))?;
    }
    Ok(Anvil { child })
}

/// anvil runs in its own process group, so if `holdfast dev` itself was killed (SIGKILL), its anvil kept
/// running. Stop such a leftover — only when the recorded pid is still an anvil on the same port.
async fn stop_leftover_anvil(dir: &DevDir, port: u16) {
    let pid_file = dir.dir.join("anvil.pid");
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
        println!("stopping the anvil (pid {pid}) that a previous `holdfast dev` left running");
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

async fn deploy(root: &Path, dir: &DevDir, rpc: &str, deployment_file: &Path) -> eyre::Result<()> {
    let log_path = dir.dir.join("deploy.log");
    let log = std::fs::File::create(&log_path)?;
    let status = Command::new("bash")
        .arg(root.join("script/deploy.sh"))
        .args(["--rpc-url", rpc])
        .current_dir(root)
        .env("DEPLOYMENT_FILE", deployment_file)
        // forge's broadcast log in this run's own directory: every devnet is chain 31337, and two
        // `holdfast dev` deploying at once would otherwise write (and read) the same
        // broadcast/Deploy.s.sol/31337/run-latest.json.
        .env("FOUNDRY_BROADCAST", dir.dir.join("broadcast"))
        .env_remove("PRIVATE_KEY")
        .env_remove("TOKEN")
        .env_remove("MINT_TO")
        .env_remove("MINT_AMOUNT")
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
    println!();
    println!(
        "Funded accounts: 10,000 ETH and 1,000,000 {} each at deployment (anvil's public dev keys)",
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
    println!("Ctrl-C stops everything; `holdfast dev --keep` resumes this chain and store.");
}

/// The devnet's webhook worker: local receivers (`holdfast webhooks listen`) are private targets, so they
/// are allowed here.
fn dev_delivery() -> holdfast_webhooks::WorkerConfig {
    holdfast_webhooks::WorkerConfig { allow_private_targets: true, ..Default::default() }
}
