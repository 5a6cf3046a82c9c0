//! The signing account: a private key from `HOLDFAST_PRIVATE_KEY` (or `--private-key`), or an encrypted
//! JSON keystore (`--keystore`) with its password from `HOLDFAST_KEYSTORE_PASSWORD` or `--password-file`.
//! The key is never printed or logged: it is held in a type whose `Debug` is redacted, clap hides the
//! environment value in `--help`, and a malformed key is reported without echoing it.

use std::{fmt, path::PathBuf, str::FromStr};

use alloy::{primitives::B256, signers::local::PrivateKeySigner};
use clap::Args;
use eyre::{Context, bail, eyre};

/// Environment variable holding the keystore password.
pub(crate) const PASSWORD_ENV: &str = "HOLDFAST_KEYSTORE_PASSWORD";

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone, Default)]
pub(crate) struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    /// Always accepted here, so that clap never echoes a malformed key in its error; checked in
    /// [`SignerOpts::signer`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

/// Which account signs.
#[derive(Debug, Clone, Args)]
pub(crate) struct SignerOpts {
    /// Private key of the signing account (0x + 64 hex digits). Prefer the environment variable or a
    /// keystore: a command-line flag is visible to other users of the machine.
    #[arg(long, env = "HOLDFAST_PRIVATE_KEY", hide_env_values = true, value_name = "KEY")]
    pub(crate) private_key: Option<Secret>,
    /// Encrypted JSON keystore (geth / foundry `cast wallet` format) of the signing account.
    #[arg(long, env = "HOLDFAST_KEYSTORE", value_name = "PATH")]
    pub(crate) keystore: Option<PathBuf>,
    /// File holding the keystore's password (else the HOLDFAST_KEYSTORE_PASSWORD environment variable).
    #[arg(long, env = "HOLDFAST_PASSWORD_FILE", value_name = "PATH")]
    pub(crate) password_file: Option<PathBuf>,
}

impl SignerOpts {
    /// The local signer.
    pub(crate) fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        match (&self.private_key, &self.keystore) {
            (Some(_), Some(_)) => {
                bail!(
                    "both a private key (--private-key / HOLDFAST_PRIVATE_KEY) and --keystore are set; use one"
                )
            }
            (Some(key), None) => parse_key(&key.0),
            (None, Some(path)) => {
                let password = match &self.password_file {
                    Some(f) => std::fs::read_to_string(f)
                        .wrap_err_with(|| format!("cannot read the password file {}", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_string(),
                    None => std::env::var(PASSWORD_ENV).map_err(|_| {
                        eyre!("--keystore needs a password: set {PASSWORD_ENV} or pass --password-file")
                    })?,
                };
                PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| {
                    eyre!(
                        "cannot decrypt the keystore {}: {e} (wrong password or not a keystore)",
                        path.display()
                    )
                })
            }
            (None, None) => bail!(
                "no signer: set HOLDFAST_PRIVATE_KEY (or --private-key), or pass --keystore with \
                 HOLDFAST_KEYSTORE_PASSWORD or --password-file"
            ),
        }
    }
}

impl SignerOpts {
    /// The signing account's address, if a key or keystore is given (`show` uses it for the party omitted
    /// with a reference).
    pub(crate) fn address_if_set(&self) -> eyre::Result<Option<alloy::primitives::Address>> {
        if self.private_key.is_none() && self.keystore.is_none() {
            return Ok(None);
        }
        self.signer().map(|s| Some(s.address()))
    }
}

fn parse_key(s: &str) -> eyre::Result<PrivateKeySigner> {
    let t = s.trim();
    let hex = t.strip_prefix("0x").unwrap_or(t);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the private key is malformed: expected 0x + 64 hex digits (the value is not shown)");
    }
    let bytes =
        B256::from_str(hex).map_err(|_| eyre!("the private key is malformed (the value is not shown)"))?;
    PrivateKeySigner::from_bytes(&bytes)
        .map_err(|_| eyre!("the private key is not a valid secp256k1 key (the value is not shown)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn never_shows_the_key() {
        let opts =
            SignerOpts { private_key: Some(KEY.parse().unwrap()), keystore: None, password_file: None };
        let dbg = format!("{opts:?}");
        assert!(!dbg.contains("ac0974"), "{dbg}");
        let signer = opts.signer().unwrap();
        assert_eq!(signer.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert!(!format!("{signer:?}").contains("ac0974"));
        let bad = SignerOpts {
            private_key: Some("0xac0974zz".parse().unwrap()),
            keystore: None,
            password_file: None,
        };
        let e = format!("{:#}", bad.signer().unwrap_err());
        assert!(!e.contains("ac0974"), "{e}");
    }

    #[test]
    fn keystore_round_trip() {
        let dir = std::env::temp_dir().join(format!("holdfast-ks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = B256::from_str(&KEY[2..]).unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        PrivateKeySigner::encrypt_keystore(&dir, &mut rng, key, "pw", Some("k.json")).unwrap();
        let pw = dir.join("pw.txt");
        std::fs::write(&pw, "pw\n").unwrap();
        let opts =
            SignerOpts { private_key: None, keystore: Some(dir.join("k.json")), password_file: Some(pw) };
        assert_eq!(
            opts.signer().unwrap().address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
