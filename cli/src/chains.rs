//! `--chains FILE`: several chains followed by one process (`holdfast run`/`index`), each with its own
//! node, escrows and finality; anything a chain does not set comes from the command's own flags.
//!
//! ```toml
//! [[chain]]
//! rpc_url = "wss://base.example/ws"
//! deployments = ["deployments/8453.json"]   # relative to this file
//!
//! [[chain]]
//! rpc_url = "https://eth.example"
//! deployments = ["deployments/1.json"]
//! finality = "depth"                        # tags (default) | depth
//! safe_depth = 12
//! finalized_depth = 64
//! poll_ms = 2000
//! ```

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use clap::Args;
use eyre::{Context, bail};
use holdfast_indexer::IndexerConfig;
use serde::Deserialize;
use url::Url;

use crate::opts::{DeploymentOpts, FinalityMode, IndexOpts, RpcOpts, indexer_config};

/// Several chains in one process.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ChainsOpts {
    /// A TOML file listing the chains to follow (`[[chain]]` with `rpc_url`, `deployments` and optional
    /// `finality`, `safe_depth`, `finalized_depth`, `poll_ms`, `log_range`, `max_log_range`,
    /// `concurrency`); replaces --rpc-url, --deployment and --escrow. See the README, "Several chains".
    #[arg(long, env = "HOLDFAST_CHAINS")]
    pub(crate) chains: Option<PathBuf>,
}

/// The chains file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainsFile {
    chain: Vec<ChainEntry>,
}

/// One `[[chain]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainEntry {
    rpc_url: Url,
    deployments: Vec<PathBuf>,
    #[serde(default)]
    finality: Option<Finality>,
    #[serde(default)]
    safe_depth: Option<u64>,
    #[serde(default)]
    finalized_depth: Option<u64>,
    #[serde(default)]
    poll_ms: Option<u64>,
    #[serde(default)]
    log_range: Option<u64>,
    #[serde(default)]
    max_log_range: Option<u64>,
    #[serde(default)]
    concurrency: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Finality {
    Tags,
    Depth,
}

/// What a command follows: one indexer config per chain, and the deployment files they came from (for the
/// API's token symbols and decimals).
#[derive(Debug, Clone)]
pub(crate) struct ChainSet {
    /// One per chain, chain ids distinct.
    pub(crate) configs: Vec<IndexerConfig>,
    /// The deployment files read (as `DeploymentOpts`, for the API's records config).
    pub(crate) deployments: DeploymentOpts,
}

impl ChainsOpts {
    /// The chains to follow: those of `--chains`, else the one chain of --rpc-url and --deployment.
    pub(crate) fn resolve(
        &self,
        rpc: &RpcOpts,
        deployments: &DeploymentOpts,
        idx: &IndexOpts,
    ) -> eyre::Result<ChainSet> {
        let Some(path) = &self.chains else {
            return Ok(ChainSet {
                configs: vec![indexer_config(rpc, deployments, idx)?],
                deployments: deployments.clone(),
            });
        };
        let text = std::fs::read_to_string(path).wrap_err_with(|| {
            // `holdfast dev --chains N` takes a count; here it is a file: say so to whoever mixed them up.
            let count = path.to_str().is_some_and(|p| p.parse::<u16>().is_ok());
            let hint = if count {
                " (--chains takes a TOML file listing the chains, see the README, \"Several chains\"; \
                 `holdfast dev --chains N` is the one that runs N local chains)"
            } else {
                ""
            };
            format!("cannot read chains file {}{hint}", path.display())
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        chain_set(&text, base, idx).wrap_err_with(|| format!("chains file {}", path.display()))
    }
}

/// A chain's id and its node.
pub(crate) type Node = (u64, Url);

impl ChainsOpts {
    /// For `holdfast serve`: each chain's (chain id, node) and the deployment files, if `--chains` is given.
    pub(crate) fn nodes(&self) -> eyre::Result<Option<(Vec<Node>, DeploymentOpts)>> {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            idx: IndexOpts,
        }
        if self.chains.is_none() {
            return Ok(None);
        }
        let idx = <Defaults as clap::Parser>::try_parse_from(["holdfast"])?.idx;
        let unused = RpcOpts { rpc_url: Url::parse("http://127.0.0.1:8545").expect("a valid URL") };
        let set = self.resolve(&unused, &DeploymentOpts::default(), &idx)?;
        let nodes = set
            .configs
            .iter()
            .map(|c| Ok((c.chain_id()?, c.rpc_url.clone())))
            .collect::<eyre::Result<_>>()?;
        Ok(Some((nodes, set.deployments)))
    }
}

/// Parse a chains file whose relative paths are relative to `base`; `idx` gives every unset setting.
fn chain_set(text: &str, base: &Path, idx: &IndexOpts) -> eyre::Result<ChainSet> {
    let file: ChainsFile = toml::from_str(text).wrap_err("not a chains file")?;
    if file.chain.is_empty() {
        bail!("lists no [[chain]]");
    }
    let mut configs = Vec::new();
    let mut all_files = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, entry) in file.chain.into_iter().enumerate() {
        if entry.deployments.is_empty() {
            bail!("chain #{}: `deployments` is empty", i + 1);
        }
        let files: Vec<PathBuf> = entry.deployments.iter().map(|f| base.join(f)).collect();
        let opts = IndexOpts {
            finality: match entry.finality {
                Some(Finality::Tags) => FinalityMode::Tags,
                Some(Finality::Depth) => FinalityMode::Depth,
                None => idx.finality,
            },
            safe_depth: entry.safe_depth.unwrap_or(idx.safe_depth),
            finalized_depth: entry.finalized_depth.unwrap_or(idx.finalized_depth),
            poll_ms: entry.poll_ms.unwrap_or(idx.poll_ms),
            log_range: entry.log_range.unwrap_or(idx.log_range),
            max_log_range: entry.max_log_range.unwrap_or(idx.max_log_range),
            concurrency: entry.concurrency.unwrap_or(idx.concurrency),
            ..idx.clone()
        };
        let deployments =
            DeploymentOpts { deployments: files.clone(), escrow: None, start_block: None, chain_id: None };
        let cfg = indexer_config(&RpcOpts { rpc_url: entry.rpc_url }, &deployments, &opts)
            .wrap_err_with(|| format!("chain #{}", i + 1))?;
        let chain_id = cfg.chain_id()?;
        if !seen.insert(chain_id) {
            bail!("chain {chain_id} is listed twice (list all of a chain's escrows under one [[chain]])");
        }
        configs.push(cfg);
        all_files.extend(files);
    }
    Ok(ChainSet {
        configs,
        deployments: DeploymentOpts {
            deployments: all_files,
            escrow: None,
            start_block: None,
            chain_id: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use holdfast_indexer::FinalityPolicy;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        idx: IndexOpts,
    }

    fn idx() -> IndexOpts {
        Cli::parse_from(["x"]).idx
    }

    fn deployment(dir: &Path, name: &str, chain_id: u64, escrow_byte: u8) {
        let text = serde_json::json!({
            "chainId": chain_id,
            "escrow": format!("0x{}", format!("{escrow_byte:02x}").repeat(20)),
            "deploymentBlock": 7,
        });
        std::fs::write(dir.join(name), text.to_string()).unwrap();
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("holdfast-chains-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn two_chains_with_their_own_settings_and_the_flags_as_defaults() {
        let d = dir();
        deployment(&d, "a.json", 31337, 0xaa);
        deployment(&d, "b.json", 31338, 0xbb);
        let set = chain_set(
            r#"
            [[chain]]
            rpc_url = "ws://127.0.0.1:8545"
            deployments = ["a.json"]

            [[chain]]
            rpc_url = "http://127.0.0.1:8546"
            deployments = ["b.json"]
            finality = "depth"
            safe_depth = 3
            finalized_depth = 6
            poll_ms = 40
            "#,
            &d,
            &idx(),
        )
        .unwrap();
        assert_eq!(set.configs.len(), 2);
        let (a, b) = (&set.configs[0], &set.configs[1]);
        assert_eq!((a.chain_id().unwrap(), b.chain_id().unwrap()), (31337, 31338));
        assert_eq!(a.rpc_url.as_str(), "ws://127.0.0.1:8545/");
        assert_eq!(
            a.finality,
            FinalityPolicy::Tags { fallback_safe_depth: 32, fallback_finalized_depth: 64 }
        );
        assert_eq!(a.poll_interval, std::time::Duration::from_millis(500));
        assert_eq!(b.finality, FinalityPolicy::Depth { safe: 3, finalized: 6 });
        assert_eq!(b.poll_interval, std::time::Duration::from_millis(40));
        assert_eq!(b.deployments[0].start_block, 7);
        assert_eq!(set.deployments.deployments, vec![d.join("a.json"), d.join("b.json")]);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_chain_listed_twice_an_empty_list_and_unknown_keys_are_refused() {
        let d = dir();
        deployment(&d, "a.json", 31337, 0xaa);
        deployment(&d, "a2.json", 31337, 0xab);
        deployment(&d, "b.json", 31338, 0xbb);
        let twice = r#"
            [[chain]]
            rpc_url = "http://n1"
            deployments = ["a.json"]
            [[chain]]
            rpc_url = "http://n2"
            deployments = ["a2.json"]
        "#;
        let e = format!("{:#}", chain_set(twice, &d, &idx()).unwrap_err());
        assert!(e.contains("chain 31337 is listed twice"), "{e}");
        let mixed = r#"
            [[chain]]
            rpc_url = "http://n1"
            deployments = ["a.json", "b.json"]
        "#;
        let e = format!("{:#}", chain_set(mixed, &d, &idx()).unwrap_err());
        assert!(e.contains("chain #1"), "{e}");
        let e = format!("{:#}", chain_set("chain = []", &d, &idx()).unwrap_err());
        assert!(e.contains("lists no [[chain]]"), "{e}");
        let unknown = r#"
            [[chain]]
            rpc = "http://n1"
            deployments = ["a.json"]
        "#;
        let e = format!("{:#}", chain_set(unknown, &d, &idx()).unwrap_err());
        assert!(e.contains("unknown field `rpc`"), "{e}");
        let missing = r#"
            [[chain]]
            rpc_url = "http://n1"
            deployments = ["nope.json"]
        "#;
        let e = format!("{:#}", chain_set(missing, &d, &idx()).unwrap_err());
        assert!(e.contains("nope.json"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
