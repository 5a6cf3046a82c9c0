//! The token's EIP-712 domain, read from the token itself so that the CLI signs for any token the way the
//! token verifies (USDC and the devnet's MockUSDC use ("USD Coin", "2"), OpenZeppelin tokens version "1",
//! and a token's name need not be the same on every chain). Nothing is assumed that the token does not
//! confirm.
//!
//! Sources, in order: ERC-5267 `eip712Domain()`; else `name()` and `version()` (USDC's FiatTokenV2_2);
//! else `name()` with version "1" (OpenZeppelin's ERC20Permit before 5.0, which has no `version()`) only if
//! the token's `DOMAIN_SEPARATOR()` is that domain's. Whenever the token has a `DOMAIN_SEPARATOR()`, the
//! domain used must produce it, so a signature is never made over a domain the token would not recognise.

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::Eip712Domain,
};

/// What a token answered to the EIP-712 views; `None` where it does not have the function.
#[derive(Debug, Clone, Default)]
pub(crate) struct DomainProbe {
    /// ERC-5267 `eip712Domain()`.
    pub(crate) eip5267: Option<Eip5267>,
    /// `name()`.
    pub(crate) name: Option<String>,
    /// `version()`.
    pub(crate) version: Option<String>,
    /// EIP-2612 `DOMAIN_SEPARATOR()`.
    pub(crate) separator: Option<B256>,
}

/// The ERC-5267 `eip712Domain()` answer.
#[derive(Debug, Clone)]
pub(crate) struct Eip5267 {
    /// Which fields the domain uses: bit 0 name, 1 version, 2 chainId, 3 verifyingContract, 4 salt.
    pub(crate) fields: u8,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) chain_id: U256,
    pub(crate) verifying_contract: Address,
    pub(crate) salt: B256,
    pub(crate) extensions: Vec<U256>,
}

/// Why the CLI will not sign for a token (checked before anything is signed or sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TokenDomainError {
    /// The token tells neither its domain (ERC-5267) nor its name and version.
    #[error(
        "cannot sign for the token {token} on chain {chain_id}: its EIP-712 domain is unknown ({why}); the \
         CLI reads it from eip712Domain() (ERC-5267), or name() and version(), and guesses nothing. Signed \
         locks (--permit, --gasless, relay) are not possible for it: lock by allowance instead"
    )]
    Unknown {
        /// The token.
        token: Address,
        /// The node's chain id.
        chain_id: u64,
        /// What the token lacks.
        why: String,
    },
    /// ERC-5267 extensions change how signatures are made in ways the CLI does not know.
    #[error(
        "cannot sign for the token {token}: its eip712Domain() declares extensions {extensions:?}, which the \
         CLI does not support; lock by allowance instead"
    )]
    Extensions {
        /// The token.
        token: Address,
        /// The extension ids it declares.
        extensions: Vec<U256>,
    },
    /// The domain the token describes is not the one its `DOMAIN_SEPARATOR()` is made of.
    #[error(
        "cannot sign for the token {token}: the EIP-712 domain from its {source_} ({domain}) gives the separator \
         {computed}, but its DOMAIN_SEPARATOR() is {on_chain}; a signature over that domain would be rejected \
         (InvalidSignature), so signed locks are not possible for it: lock by allowance instead"
    )]
    SeparatorMismatch {
        /// The token.
        token: Address,
        /// Where the domain came from.
        source_: &'static str,
        /// The domain, described.
        domain: String,
        /// Its separator.
        computed: B256,
        /// The token's `DOMAIN_SEPARATOR()`.
        on_chain: B256,
    },
}

impl TokenDomainError {
    /// The rule name in `--json` errors.
    pub(crate) fn rule(&self) -> &'static str {
        match self {
            Self::Unknown { .. } => "TokenDomainUnknown",
            Self::Extensions { .. } => "TokenDomainExtensions",
            Self::SeparatorMismatch { .. } => "TokenDomainMismatch",
        }
    }
}

/// The domain of `token` on `chain_id` from what it answered (see the module documentation), with where it
/// came from.
pub(crate) fn resolve(
    token: Address,
    chain_id: u64,
    p: &DomainProbe,
) -> Result<(Eip712Domain, &'static str), TokenDomainError> {
    let from_name = |name: &str, version: &str| {
        Eip712Domain::new(
            Some(name.to_owned().into()),
            Some(version.to_owned().into()),
            Some(U256::from(chain_id)),
            Some(token),
            None,
        )
    };
    let (domain, source_) = match (&p.eip5267, &p.name, &p.version) {
        (Some(d), _, _) => {
            if !d.extensions.is_empty() {
                return Err(TokenDomainError::Extensions { token, extensions: d.extensions.clone() });
            }
            let f = d.fields;
            let domain = Eip712Domain::new(
                (f & 0x01 != 0).then(|| d.name.clone().into()),
                (f & 0x02 != 0).then(|| d.version.clone().into()),
                (f & 0x04 != 0).then_some(d.chain_id),
                (f & 0x08 != 0).then_some(d.verifying_contract),
                (f & 0x10 != 0).then_some(d.salt),
            );
            (domain, "eip712Domain()")
        }
        (None, Some(name), Some(version)) => (from_name(name, version), "name() and version()"),
        (None, Some(name), None) => {
            let v1 = from_name(name, "1");
            match p.separator {
                Some(sep) if sep == v1.separator() => (v1, "name() and DOMAIN_SEPARATOR() (version \"1\")"),
                Some(_) => {
                    let why = format!(
                        "it has name() {name:?} but no version(), and its DOMAIN_SEPARATOR() is not that of \
                         version \"1\""
                    );
                    return Err(TokenDomainError::Unknown { token, chain_id, why });
                }
                None => {
                    let why = format!("it has name() {name:?} but neither version() nor DOMAIN_SEPARATOR()");
                    return Err(TokenDomainError::Unknown { token, chain_id, why });
                }
            }
        }
        (None, None, _) => {
            let why = "it has neither eip712Domain() nor name()".to_owned();
            return Err(TokenDomainError::Unknown { token, chain_id, why });
        }
    };
    if let Some(on_chain) = p.separator {
        let computed = domain.separator();
        if computed != on_chain {
            return Err(TokenDomainError::SeparatorMismatch {
                token,
                source_,
                domain: describe(&domain),
                computed,
                on_chain,
            });
        }
    }
    Ok((domain, source_))
}

/// `name "USD Coin", version "2", chainId 8453, verifyingContract 0x…` (the fields the domain has).
pub(crate) fn describe(d: &Eip712Domain) -> String {
    let mut parts = Vec::new();
    if let Some(n) = &d.name {
        parts.push(format!("name {n:?}"));
    }
    if let Some(v) = &d.version {
        parts.push(format!("version {v:?}"));
    }
    if let Some(c) = d.chain_id {
        parts.push(format!("chainId {c}"));
    }
    if let Some(a) = d.verifying_contract {
        parts.push(format!("verifyingContract {a}"));
    }
    if let Some(s) = d.salt {
        parts.push(format!("salt {s}"));
    }
    if parts.is_empty() { "no fields".to_owned() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{Address, B256, U256, keccak256},
        sol_types::SolValue,
    };

    use super::{DomainProbe, Eip5267, TokenDomainError, resolve};

    const TOKEN: Address = Address::repeat_byte(0xa0);

    /// keccak256(abi.encode(typehash, keccak256(name), keccak256(version), chainId, token)), as Solidity
    /// computes it: independent of alloy's `Eip712Domain`.
    fn separator(name: &str, version: &str, chain_id: u64) -> B256 {
        let typehash =
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
        keccak256((typehash, keccak256(name), keccak256(version), U256::from(chain_id), TOKEN).abi_encode())
    }

    fn usdc_5267(version: &str) -> Eip5267 {
        Eip5267 {
            fields: 0x0f,
            name: "USD Coin".into(),
            version: version.into(),
            chain_id: U256::from(31337),
            verifying_contract: TOKEN,
            salt: B256::ZERO,
            extensions: vec![],
        }
    }

    #[test]
    fn erc5267_domain_is_used_and_checked_against_the_separator() {
        let p = DomainProbe {
            eip5267: Some(usdc_5267("2")),
            name: Some("USD Coin".into()),
            version: Some("2".into()),
            separator: Some(separator("USD Coin", "2", 31337)),
        };
        let (d, source) = resolve(TOKEN, 31337, &p).unwrap();
        assert_eq!(source, "eip712Domain()");
        assert_eq!(d.separator(), separator("USD Coin", "2", 31337));
        // A token whose eip712Domain() disagrees with its DOMAIN_SEPARATOR() is refused.
        let p = DomainProbe { eip5267: Some(usdc_5267("1")), ..p };
        let e = resolve(TOKEN, 31337, &p).unwrap_err();
        assert_eq!(e.rule(), "TokenDomainMismatch");
        assert!(e.to_string().contains("name \"USD Coin\", version \"1\", chainId 31337"), "{e}");
    }

    #[test]
    fn usdc_without_erc5267_uses_name_and_version() {
        // FiatTokenV2_2 on Base: name(), version() "2" and DOMAIN_SEPARATOR(), no eip712Domain().
        let p = DomainProbe {
            eip5267: None,
            name: Some("USD Coin".into()),
            version: Some("2".into()),
            separator: Some(separator("USD Coin", "2", 8453)),
        };
        let (d, source) = resolve(TOKEN, 8453, &p).unwrap();
        assert_eq!(source, "name() and version()");
        assert_eq!(d.separator(), separator("USD Coin", "2", 8453));
        // Same without DOMAIN_SEPARATOR(): name() and version() are enough.
        let p = DomainProbe { separator: None, ..p };
        assert_eq!(resolve(TOKEN, 8453, &p).unwrap().0.separator(), separator("USD Coin", "2", 8453));
    }

    #[test]
    fn version_1_only_when_the_separator_confirms_it() {
        let p = DomainProbe {
            eip5267: None,
            name: Some("Token".into()),
            version: None,
            separator: Some(separator("Token", "1", 1)),
        };
        let (d, _) = resolve(TOKEN, 1, &p).unwrap();
        assert_eq!(d.separator(), separator("Token", "1", 1));
        let p = DomainProbe { separator: Some(separator("Token", "2", 1)), ..p };
        let e = resolve(TOKEN, 1, &p).unwrap_err();
        assert!(matches!(e, TokenDomainError::Unknown { .. }), "{e:?}");
        assert!(e.to_string().contains("no version(), and its DOMAIN_SEPARATOR() is not that of"), "{e}");
        let p = DomainProbe { separator: None, ..p };
        let e = resolve(TOKEN, 1, &p).unwrap_err();
        assert!(e.to_string().contains("neither version() nor DOMAIN_SEPARATOR()"), "{e}");
    }

    #[test]
    fn a_token_with_neither_is_a_typed_error() {
        let e = resolve(TOKEN, 31337, &DomainProbe::default()).unwrap_err();
        assert_eq!(
            e,
            TokenDomainError::Unknown {
                token: TOKEN,
                chain_id: 31337,
                why: "it has neither eip712Domain() nor name()".into()
            }
        );
        assert_eq!(e.rule(), "TokenDomainUnknown");
        assert!(e.to_string().contains("lock by allowance instead"), "{e}");
    }

    #[test]
    fn extensions_are_refused() {
        let mut d = usdc_5267("2");
        d.extensions = vec![U256::from(1)];
        let e = resolve(TOKEN, 31337, &DomainProbe { eip5267: Some(d), ..Default::default() }).unwrap_err();
        assert_eq!(e.rule(), "TokenDomainExtensions");
    }
}
