//! Connecting to the node, the escrow and its token; simulating, sending and summarising transactions;
//! the API client used by `show` and `--wait`.

use std::{path::PathBuf, time::Duration};

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::EthereumWallet,
    primitives::{Address, B256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol,
    sol_types::Eip712Domain,
};
use clap::{Args, ValueEnum};
use eyre::{Context as _, bail, eyre};
use holdfast_primitives::bindings::IHoldfastEscrow::{self, IHoldfastEscrowInstance, Status};
use serde_json::{Value, json};
use url::Url;

use super::{
    domain::{DomainProbe, Eip5267, describe as describe_domain, resolve as resolve_domain},
    explain::{OnChain, Rule, Scene, Stage, TokenMeta, Violation, decode_revert, status_name, violation},
    order_id::OrderId,
    signer::SignerOpts,
};
use crate::opts::{RpcOpts, default_deployment, read_deployment};

sol! {
    #[sol(rpc)]
    /// The ERC-20 (and EIP-2612 / EIP-3009 / EIP-5267) views and calls the CLI uses.
    interface IToken {
        function decimals() external view returns (uint8);
        function symbol() external view returns (string);
        function name() external view returns (string);
        function version() external view returns (string);
        function balanceOf(address account) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 amount) external returns (bool);
        function nonces(address owner) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
        function eip712Domain() external view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions);
        function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    }
}

/// Which escrow.
#[derive(Debug, Clone, Args)]
pub(crate) struct EscrowOpts {
    /// Deployment file(s) written by `script/deploy.sh`; the one whose chainId is the node's is used.
    /// Default: deployments/31337.local.json in the current directory, else in the Holdfast checkout
    /// found from it upwards (the nearest directory with foundry.toml and script/deploy.sh, or
    /// HOLDFAST_PROJECT_ROOT) — the file `holdfast dev` writes.
    #[arg(long = "deployment", env = "HOLDFAST_DEPLOYMENTS", value_delimiter = ',', value_name = "PATH")]
    pub(crate) deployments: Vec<PathBuf>,
    /// Escrow address (instead of a deployment file).
    #[arg(long, env = "HOLDFAST_ESCROW", value_name = "ADDRESS")]
    pub(crate) escrow: Option<Address>,
}

impl EscrowOpts {
    /// The escrow for `chain_id`: --escrow, else the matching deployment file; `Err(why)` inside if neither
    /// is given and the default file does not exist.
    pub(crate) fn resolve(&self, chain_id: u64) -> eyre::Result<Result<Address, String>> {
        if let Some(e) = self.escrow {
            return Ok(Ok(e));
        }
        let files = if self.deployments.is_empty() {
            match default_deployment() {
                Ok(d) => vec![d],
                Err(why) => return Ok(Err(why)),
            }
        } else {
            self.deployments.clone()
        };
        let mut seen = Vec::new();
        for f in &files {
            let d = read_deployment(f)?;
            if d.chain_id == chain_id {
                return Ok(Ok(d.escrow));
            }
            seen.push(format!("{} (chain {})", f.display(), d.chain_id));
        }
        bail!("no deployment for chain {chain_id} among {}; pass --escrow or --deployment", seen.join(", "))
    }
}

/// Output format.
#[derive(Debug, Clone, Args)]
pub(crate) struct OutputOpts {
    /// Print one JSON document (on stdout; errors as JSON on stderr) instead of text.
    #[arg(long, env = "HOLDFAST_JSON")]
    pub(crate) json: bool,
}

/// The read API.
#[derive(Debug, Clone, Args)]
pub(crate) struct ApiUrlOpts {
    /// Base URL of the Holdfast API (`holdfast run` / `holdfast serve`).
    #[arg(long, env = "HOLDFAST_API_URL", default_value = "http://127.0.0.1:8080", value_name = "URL")]
    pub(crate) api_url: Url,
}

/// A finality to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Finality {
    /// Indexed at all.
    Pending,
    /// At or below the chain's safe block.
    Safe,
    /// At or below the finalized block.
    Finalized,
}

impl Finality {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Safe => "safe",
            Self::Finalized => "finalized",
        }
    }
}

/// Optional wait for the API after a transaction.
#[derive(Debug, Clone, Args)]
pub(crate) struct WaitOpts {
    /// After the transaction is mined, wait until the API has indexed it at this finality.
    #[arg(long, value_enum, value_name = "FINALITY")]
    pub(crate) wait: Option<Finality>,
    /// Longest wait for --wait, in seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub(crate) wait_timeout: u64,
    #[command(flatten)]
    pub(crate) api: ApiUrlOpts,
}

/// Everything a transaction-sending subcommand needs.
#[derive(Debug, Clone, Args)]
pub(crate) struct TxOpts {
    #[command(flatten)]
    pub(crate) rpc: RpcOpts,
    #[command(flatten)]
    pub(crate) escrow: EscrowOpts,
    #[command(flatten)]
    pub(crate) signer: SignerOpts,
    #[command(flatten)]
    pub(crate) output: OutputOpts,
    #[command(flatten)]
    pub(crate) wait: WaitOpts,
}

/// Node, escrow, token and signer.
pub(crate) struct Ctx {
    pub(crate) provider: DynProvider,
    pub(crate) chain_id: u64,
    pub(crate) escrow: Address,
    pub(crate) token: TokenMeta,
    pub(crate) signer: PrivateKeySigner,
}

impl Ctx {
    /// Connect with `opts`' signer; the escrow from the options (or `fallback_escrow`).
    pub(crate) async fn connect(opts: &TxOpts, fallback_escrow: Option<Address>) -> eyre::Result<Self> {
        let signer = opts.signer.signer()?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer.clone()))
            .connect(opts.rpc.rpc_url.as_str())
            .await
            .map_err(|e| eyre!("cannot connect to the node at {}: {}", opts.rpc.rpc_url, causes(&e)))?
            .erased();
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| eyre!("cannot reach the node at {}: {}", opts.rpc.rpc_url, causes(&e)))?;
        let escrow = match opts.escrow.resolve(chain_id)? {
            Ok(e) => e,
            Err(why) => fallback_escrow.ok_or_else(|| {
                eyre!("no escrow: {why}; run `holdfast dev`, or pass --escrow or --deployment")
            })?,
        };
        if provider.get_code_at(escrow).await?.is_empty() {
            bail!("no contract at the escrow address {escrow} on chain {chain_id}");
        }
        let e = IHoldfastEscrow::new(escrow, &provider);
        let token_address = e
            .token()
            .call()
            .await
            .wrap_err_with(|| format!("{escrow} does not answer token(): not an escrow?"))?;
        let t = IToken::new(token_address, &provider);
        let decimals = t
            .decimals()
            .call()
            .await
            .wrap_err_with(|| format!("the token {token_address} does not answer decimals()"))?;
        let symbol = t.symbol().call().await.unwrap_or_else(|_| "tokens".into());
        let token = TokenMeta { address: token_address, symbol, decimals };
        tracing::debug!(chain_id, %escrow, token = %token_address, from = %signer.address(), "connected");
        Ok(Self { provider, chain_id, escrow, token, signer })
    }

    pub(crate) fn from(&self) -> Address {
        self.signer.address()
    }

    pub(crate) fn escrow(&self) -> IHoldfastEscrowInstance<&DynProvider> {
        IHoldfastEscrow::new(self.escrow, &self.provider)
    }

    pub(crate) fn token(&self) -> IToken::ITokenInstance<&DynProvider> {
        IToken::new(self.token.address, &self.provider)
    }

    /// The latest block's timestamp.
    pub(crate) async fn now(&self) -> eyre::Result<u64> {
        let b = self
            .provider
            .get_block_by_number(Default::default())
            .await?
            .ok_or_else(|| eyre!("no latest block"))?;
        Ok(b.header.timestamp)
    }

    /// What relative times (`--deliver-by 7d`) count from: the wall clock now, or the latest block's
    /// timestamp if that is later (a chain ahead of the clock, e.g. after `evm_increaseTime`). Never the
    /// block time alone: on an idle chain, or a devnet resumed after a pause, it lags the clock.
    pub(crate) fn relative_base(chain_now: u64) -> u64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        wall.max(chain_now)
    }

    /// The order as stored.
    pub(crate) async fn order(&self, id: B256) -> eyre::Result<OnChain> {
        let r = self.escrow().getOrder(id).call().await.wrap_err("getOrder failed")?;
        Ok(OnChain { order: r.order, arbiter: r.arbiter })
    }

    /// The order as stored, for a command that acts on an existing order. For an id derived from a
    /// reference that has no order, the pre-check's sentence says which reference, payer and payee gave the
    /// id, and names the order locked under the reference's bare keccak256 (the id older versions of
    /// holdfast used), if there is one.
    pub(crate) async fn existing_order(&self, id: &OrderId) -> eyre::Result<OnChain> {
        let o = self.order(id.value).await?;
        let Some(derivation) = id.derivation().filter(|_| o.status() == Status::None) else {
            return Ok(o);
        };
        let text = id.text().unwrap_or_default();
        let legacy = keccak256(text.as_bytes());
        let mut message = format!(
            "order {:#x}: no such order on escrow {} (never locked); this is the id of the {derivation}: check \
             --payer and --payee, or pass the 0x id that `lock` printed",
            id.value, self.escrow
        );
        if self.order(legacy).await?.status() != Status::None {
            message.push_str(&format!(
                "; an order {legacy:#x} = keccak256({text:?}) exists (the id an older holdfast derived from the \
                 reference alone): pass that id to act on it"
            ));
        }
        Err(Violation { rule: "InvalidStatus".into(), message, stage: Stage::PreCheck }.into())
    }

    pub(crate) fn scene<'a>(
        &'a self,
        id: B256,
        action: super::explain::Action,
        order: Option<&'a OnChain>,
    ) -> Scene<'a> {
        Scene { id, action, escrow: self.escrow, token: &self.token, order }
    }

    /// Fail with the pre-check's violation, if any.
    pub(crate) fn precheck(&self, rule: Option<impl Into<Rule>>, sc: &Scene<'_>) -> eyre::Result<()> {
        match rule {
            Some(r) => Err(violation(&r.into(), sc, Stage::PreCheck).into()),
            None => Ok(()),
        }
    }

    fn rejected(&self, e: alloy::contract::Error, sc: &Scene<'_>) -> eyre::Report {
        match e.as_revert_data() {
            Some(data) => decode_revert(&data, sc, Stage::Simulation).into(),
            None => eyre!(e).wrap_err("the node rejected the transaction (nothing was sent)"),
        }
    }

    /// Simulate (`eth_call`), then send from the signer and wait for the receipt. A revert in the simulation
    /// or the gas estimate is decoded and nothing is sent.
    pub(crate) async fn execute<P: Provider, D: CallDecoder>(
        &self,
        call: CallBuilder<P, D>,
        sc: &Scene<'_>,
    ) -> eyre::Result<TransactionReceipt> {
        let call = call.from(self.from());
        if let Err(e) = call.call().await {
            return Err(self.rejected(e, sc));
        }
        let pending = call.send().await.map_err(|e| self.rejected(e, sc))?;
        let tx = *pending.tx_hash();
        tracing::debug!(%tx, "sent");
        let receipt = pending.get_receipt().await.map_err(|e| Violation {
            rule: "ReceiptUnavailable".into(),
            message: format!(
                "order {:#x}: transaction {tx:#x} was sent, but its receipt could not be read ({e}); look it up \
                 before sending again",
                sc.id
            ),
            stage: Stage::Sent,
        })?;
        if !receipt.status() {
            // Re-run the call at the receipt's parent block to recover the reason.
            let block = receipt.block_number.unwrap_or_default();
            let mut v = match call.call().block(block.saturating_sub(1).into()).await {
                Err(e) => match e.as_revert_data() {
                    Some(data) => decode_revert(&data, sc, Stage::Mined),
                    None => Violation { rule: "Revert".into(), message: e.to_string(), stage: Stage::Mined },
                },
                Ok(_) => Violation {
                    rule: "Revert".into(),
                    message: "no reason available".into(),
                    stage: Stage::Mined,
                },
            };
            v.message = format!("transaction {tx:#x} reverted in block {block}: {}", v.message);
            return Err(v.into());
        }
        Ok(receipt)
    }

    /// The token's EIP-712 domain, read from the token (see [`super::domain`]): ERC-5267 `eip712Domain()`,
    /// else `name()` and `version()`, checked against its `DOMAIN_SEPARATOR()` when it has one. A token that
    /// tells neither is a [`super::domain::TokenDomainError`], not a guess.
    pub(crate) async fn token_domain(&self) -> eyre::Result<Eip712Domain> {
        let t = self.token();
        let eip5267 = absent_as_none(t.eip712Domain().call().await, "eip712Domain()")?.map(|d| Eip5267 {
            fields: d.fields.0[0],
            name: d.name,
            version: d.version,
            chain_id: d.chainId,
            verifying_contract: d.verifyingContract,
            salt: d.salt,
            extensions: d.extensions,
        });
        let (name, version) = if eip5267.is_some() {
            (None, None)
        } else {
            (
                absent_as_none(t.name().call().await, "name()")?,
                absent_as_none(t.version().call().await, "version()")?,
            )
        };
        let separator = absent_as_none(t.DOMAIN_SEPARATOR().call().await, "DOMAIN_SEPARATOR()")?;
        let probe = DomainProbe { eip5267, name, version, separator };
        let (domain, source) = resolve_domain(self.token.address, self.chain_id, &probe)?;
        tracing::debug!(token = %self.token.address, source, domain = %describe_domain(&domain), "EIP-712 domain");
        Ok(domain)
    }

    /// Print the outcome of a transaction, reading the order's state as of the receipt's block, and
    /// optionally wait for the API to index it.
    pub(crate) async fn report(
        &self,
        opts: &TxOpts,
        action: &str,
        headline: &str,
        id: &OrderId,
        receipt: &TransactionReceipt,
        extra: Value,
    ) -> eyre::Result<()> {
        let block = receipt.block_number.unwrap_or_default();
        let tx = receipt.transaction_hash;
        // From here on the transaction is mined and succeeded: a failure must say so, or a caller that
        // retries would move funds twice.
        let succeeded = |why: String| Violation {
            rule: "AfterSuccess".into(),
            message: format!(
                "order {:#x}: transaction {tx:#x} succeeded in block {block} (do not send it again), but {why}",
                id.value
            ),
            stage: Stage::Sent,
        };
        let after = self
            .escrow()
            .getOrder(id.value)
            .block(block.into())
            .call()
            .await
            .map_err(|e| succeeded(format!("the order could not be read back: {e}")))?;
        let after = OnChain { order: after.order, arbiter: after.arbiter };
        let status = status_name(after.status());
        let mut doc = json!({
            "action": action,
            "orderId": format!("{:#x}", id.value),
            "orderRef": id.text(),
            "chainId": self.chain_id,
            "escrow": self.escrow.to_checksum(None),
            "from": self.from().to_checksum(None),
            "transactionHash": format!("{tx:#x}"),
            "blockNumber": block,
            "gasUsed": receipt.gas_used,
            "status": status,
            "remaining": after.remaining().to_string(),
            "remainingDecimal": super::amount::format_amount(after.remaining(), self.token.decimals),
            "token": {"address": self.token.address.to_checksum(None), "symbol": self.token.symbol, "decimals": self.token.decimals},
        });
        if let (Some(d), Value::Object(extra)) = (doc.as_object_mut(), extra) {
            d.extend(extra);
        }
        let (indexed, wait_error) = match opts.wait.wait {
            Some(f) => match wait_tx(&opts.wait.api.api_url, tx, f, opts.wait.wait_timeout).await {
                Ok(rec) => (Some(rec), None),
                Err(e) => (None, Some(format!("waiting for the API failed: {e:#}"))),
            },
            None => (None, None),
        };
        if let Some(rec) = &indexed {
            doc["indexed"] = json!({"finality": rec["finality"], "confirmations": rec["confirmations"]});
        }
        // The outcome is printed even when the wait failed: the transaction happened.
        if opts.output.json {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string()));
        } else {
            println!("{headline}: order {id}");
            if let Some(r) = &id.reference {
                println!("  reference    {:?} between payer {} and payee {}", r.text, r.payer, r.payee);
            }
            println!("  transaction  {tx:#x} (block {block}, gas {})", receipt.gas_used);
            println!("  status       {status}, {} remaining", self.token.units(after.remaining()));
            if let Some(rec) = indexed {
                println!(
                    "  indexed      {} ({})",
                    rec["finality"].as_str().unwrap_or("?"),
                    super::confirmations(&rec["confirmations"])
                );
            }
        }
        match wait_error {
            Some(why) => Err(succeeded(why).into()),
            None => Ok(()),
        }
    }
}

/// An error and its causes on one line, each said once: transport errors repeat their URL ("error sending
/// request for url (…)") and their cause's text at every level, and the caller names the URL already.
pub(crate) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let mut text = err.to_string();
        if let Some(i) = text.find(" for url (")
            && let Some(j) = text[i..].find(')')
        {
            text.replace_range(i..i + j + 1, "");
        }
        if !text.is_empty() && !said.iter().any(|s| s.contains(&text)) {
            said.push(text);
        }
        next = err.source();
    }
    said.join(": ")
}

/// An address for JSON output: EIP-55 checksummed (as the API writes them); the zero address as null.
pub(crate) fn addr(a: Address) -> Value {
    if a.is_zero() { Value::Null } else { Value::String(a.to_checksum(None)) }
}

/// The API does not serve the order or transaction (404), also after a wait: it was never indexed, or a
/// reorg removed it (`show` then looks at the order's events).
#[derive(Debug)]
pub(crate) struct NotFound(pub(crate) String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// Longest single long-poll request (under the API's ordinary request timeout); repeated until the
/// caller's own deadline.
const POLL_CHUNK: u64 = 8;

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(POLL_CHUNK + 10)).build().unwrap_or_default()
}

/// The answer of one API request: status and JSON body.
async fn api_get(client: &reqwest::Client, url: Url) -> eyre::Result<(u16, Value)> {
    let r = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| eyre!("cannot reach the API at {url}: {}", causes(&e)))?;
    let status = r.status().as_u16();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn api_error(body: &Value) -> (String, String) {
    let code = body["error"]["code"].as_str().unwrap_or("UNKNOWN").to_string();
    let msg = body["error"]["message"].as_str().unwrap_or("unexpected answer").to_string();
    (code, msg)
}

/// `{api}/{path}?{query}` (the API may live under a path prefix).
fn endpoint(api: &Url, path: &str, query: &[(String, String)]) -> eyre::Result<Url> {
    let mut base = api.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let mut url = base.join(path)?;
    if !query.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in query {
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

/// Long-poll `GET /v1/transactions/{tx}` until it is indexed at `finality`, for at most `timeout` seconds.
pub(crate) async fn wait_tx(api: &Url, tx: B256, finality: Finality, timeout: u64) -> eyre::Result<Value> {
    poll(api, &format!("v1/transactions/{tx:#x}"), &[], finality, timeout, "transaction", &format!("{tx:#x}"))
        .await
}

/// Long-poll `GET /v1/orders/{id}` until the order exists with its latest state at `finality`.
pub(crate) async fn wait_order(
    api: &Url,
    id: B256,
    query: &[(String, String)],
    finality: Finality,
    timeout: u64,
) -> eyre::Result<Value> {
    poll(api, &format!("v1/orders/{id:#x}"), query, finality, timeout, "order", &format!("{id:#x}")).await
}

async fn poll(
    api: &Url,
    path: &str,
    query: &[(String, String)],
    finality: Finality,
    timeout: u64,
    what: &str,
    id: &str,
) -> eyre::Result<Value> {
    let client = http();
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(timeout);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut q = query.to_vec();
        q.push(("wait".into(), wait_param(left).to_string()));
        q.push(("finality".into(), finality.as_str().into()));
        let (status, body) = api_get(&client, endpoint(api, path, &q)?).await?;
        let (code, msg) = api_error(&body);
        match status {
            200 => return Ok(body),
            // Not indexed yet (404), or indexed below the finality (408): ask again until the deadline. The
            // server's wait held the request, so this is no busy loop; a fast 404 is paced here all the same.
            404 | 408 if tokio::time::Instant::now() < deadline => {
                if status == 404 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            404 => {
                let why = not_reached(what, id, finality, status, &body, start.elapsed(), timeout);
                return Err(NotFound(why).into());
            }
            408 => bail!("{}", not_reached(what, id, finality, status, &body, start.elapsed(), timeout)),
            409 if code == "TX_REVERTED" => bail!(
                "{what} {id} was removed from the chain by a reorg after it was mined: it reaches no finality \
                 unless the chain includes it again; check it with a node and send it again if it was dropped \
                 (TX_REVERTED)"
            ),
            _ => bail!(
                "{what} {id}: waiting for {} finality, the API answered {status} {code}: {msg}",
                finality.as_str()
            ),
        }
    }
}

/// The `?wait=` for one long-poll with `left` of the wait to go: whole seconds rounded up (a 6 s wait asks
/// for 6 s, not 5), at most [`POLL_CHUNK`].
fn wait_param(left: Duration) -> u64 {
    left.as_millis().div_ceil(1000).min(u128::from(POLL_CHUNK)) as u64
}

/// Why a wait ended without the finality, with how long it really waited (not the server's last chunk).
fn not_reached(
    what: &str,
    id: &str,
    finality: Finality,
    status: u16,
    body: &Value,
    waited: Duration,
    timeout: u64,
) -> String {
    let now = match (status, body["error"]["details"]["finality"].as_str()) {
        (404, _) => "not indexed yet".to_string(),
        (_, Some(f)) => format!("indexed at {f} finality"),
        _ => "indexed below it".to_string(),
    };
    format!(
        "{what} {id}: did not reach {} finality within {} s ({now}; --wait-timeout {timeout})",
        finality.as_str(),
        waited.as_secs_f64().round()
    )
}

/// `GET /v1/orders/{id}` once.
pub(crate) async fn get_order(api: &Url, id: B256, query: &[(String, String)]) -> eyre::Result<Value> {
    let (status, body) = api_get(&http(), endpoint(api, &format!("v1/orders/{id:#x}"), query)?).await?;
    match status {
        200 => Ok(body),
        404 => Err(NotFound(format!(
            "order {id:#x}: not found in the API at {api} (not locked, or not indexed yet: add --wait to wait for it)"
        ))
        .into()),
        _ => {
            let (code, msg) = api_error(&body);
            bail!("order {id:#x}: the API answered {status} {code}: {msg}")
        }
    }
}

/// `Ok(None)` if the token does not have the view `what` (the call reverts, or returns nothing or something
/// that does not decode); a failure to reach the node is an error.
fn absent_as_none<T>(r: Result<T, alloy::contract::Error>, what: &str) -> eyre::Result<Option<T>> {
    use alloy::contract::Error as E;
    match r {
        Ok(v) => Ok(Some(v)),
        Err(E::ZeroData(..) | E::AbiError(_)) => Ok(None),
        Err(E::TransportError(e)) if e.as_error_resp().is_some_and(|p| p.message.contains("revert")) => {
            Ok(None)
        }
        Err(e) => Err(eyre!("cannot read the token's {what}: {}", causes(&e))),
    }
}

/// `GET /v1/orders/{id}/events` once: every event of the order ever indexed, reverted ones included; `None`
/// when there is none (404).
pub(crate) async fn order_events(
    api: &Url,
    id: B256,
    query: &[(String, String)],
) -> eyre::Result<Option<Vec<Value>>> {
    let (status, body) =
        api_get(&http(), endpoint(api, &format!("v1/orders/{id:#x}/events"), query)?).await?;
    match status {
        200 => Ok(Some(body["data"].as_array().cloned().unwrap_or_default())),
        404 => Ok(None),
        _ => {
            let (code, msg) = api_error(&body);
            bail!("order {id:#x}: reading its events, the API answered {status} {code}: {msg}")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::{Finality, not_reached, wait_param};

    #[test]
    fn wait_param_rounds_up_and_is_chunked() {
        assert_eq!(wait_param(Duration::from_millis(5_999)), 6);
        assert_eq!(wait_param(Duration::from_secs(6)), 6);
        assert_eq!(wait_param(Duration::from_millis(920)), 1);
        assert_eq!(wait_param(Duration::ZERO), 0);
        assert_eq!(wait_param(Duration::from_secs(120)), super::POLL_CHUNK);
    }

    #[test]
    fn timeout_message_says_the_real_wait() {
        let body = json!({"error": {"code": "WAIT_TIMEOUT", "message": "… within 0 s", "details": {"finality": "pending"}}});
        let m =
            not_reached("transaction", "0xab", Finality::Safe, 408, &body, Duration::from_millis(6_040), 6);
        assert_eq!(
            m,
            "transaction 0xab: did not reach safe finality within 6 s (indexed at pending finality; --wait-timeout 6)"
        );
        let m = not_reached(
            "order",
            "0xcd",
            Finality::Finalized,
            404,
            &json!({}),
            Duration::from_millis(2_960),
            3,
        );
        assert_eq!(
            m,
            "order 0xcd: did not reach finalized finality within 3 s (not indexed yet; --wait-timeout 3)"
        );
    }
}
