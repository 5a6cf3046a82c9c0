//! Order ids (and evidence / reason codes), durations and times as typed on the command line.
//!
//! An order id is `0x` followed by exactly 64 hex digits, used as is, or a reference (any other text, such
//! as `invoice-2026-0042`) naming an order between a payer and a payee: its id is
//! `keccak256(abi.encode(payer, payee, keccak256(bytes(reference))))` ([`reference_id`]). Nobody can take
//! the id of a reference in advance without knowing the payer's address too (a bare
//! `keccak256(bytes(reference))` could be locked first by anyone who guessed the reference), and two
//! merchants' `invoice-42` are different orders. Evidence and reason codes are `0x` + 64 hex digits or text
//! hashed as `keccak256(utf8(text))` ([`Bytes32Arg`]). Text starting with `0x` that is not a full 32-byte
//! hex value is rejected rather than hashed, so a mistyped id never silently becomes a different one.

use std::{fmt, str::FromStr};

use alloy::{
    primitives::{Address, B256, keccak256},
    sol_types::SolValue,
};
use chrono::{DateTime, Utc};
use clap::Args;

/// `Some(value)` for `0x` + 64 hex digits, `None` for text (without a `0x` prefix); an error for an empty
/// string or a `0x` prefix without exactly 64 hex digits after it. `text` says what text would mean.
fn parse_hex32(s: &str, text: &str) -> Result<Option<B256>, String> {
    if s.is_empty() {
        return Err(format!("is empty: pass 0x + 64 hex digits, or {text}"));
    }
    let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return Ok(None);
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let n = hex.len();
        return Err(format!(
            "{s:?} starts with 0x but is not 0x + 64 hex digits (it has {n} characters after 0x); pass the full \
             32-byte value, or {text} without the 0x prefix"
        ));
    }
    B256::from_str(hex).map(Some).map_err(|e| format!("{s:?}: {e}"))
}

/// A `bytes32` evidence or reason code from the command line, remembering the text it was hashed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bytes32Arg {
    /// The value.
    pub(crate) value: B256,
    /// The text it is the keccak256 of, if it was given as text.
    pub(crate) reference: Option<String>,
}

impl FromStr for Bytes32Arg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match parse_hex32(s, "a text to use as keccak256(utf8(text))")? {
            Some(value) => Self { value, reference: None },
            None => Self { value: keccak256(s.as_bytes()), reference: Some(s.to_string()) },
        })
    }
}

/// The id of the order named `reference` between `payer` and `payee`:
/// `keccak256(abi.encode(payer, payee, keccak256(bytes(reference))))` — in Solidity exactly that, in viem
/// `keccak256(encodeAbiParameters([{type:'address'},{type:'address'},{type:'bytes32'}], [payer, payee,
/// keccak256(toBytes(reference))]))`.
pub(crate) fn reference_id(payer: Address, payee: Address, reference: &str) -> B256 {
    keccak256((payer, payee, keccak256(reference.as_bytes())).abi_encode_params())
}

/// An order id as typed: `0x` + 64 hex digits, or a reference whose id needs the payer and the payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderIdArg {
    /// `0x` + 64 hex digits, used as is.
    Id(B256),
    /// A reference such as `invoice-42`.
    Reference(String),
}

impl FromStr for OrderIdArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match parse_hex32(s, "a reference (e.g. invoice-42)")? {
            Some(id) => Self::Id(id),
            None => Self::Reference(s.to_string()),
        })
    }
}

/// The parties that, with a reference, determine the order id.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct PartyOpts {
    /// With a reference as ORDER: the order's payer (default: your own account, the signer). Not with a
    /// 0x id.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) payer: Option<Address>,
    /// With a reference as ORDER: the order's payee (default: your own account, the signer). Not with a
    /// 0x id.
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) payee: Option<Address>,
}

impl OrderIdArg {
    /// The id for an order between `payer` and `payee` (as `lock` knows them).
    pub(crate) fn between(&self, payer: Address, payee: Address) -> OrderId {
        match self {
            Self::Id(value) => OrderId { value: *value, reference: None },
            Self::Reference(text) => OrderId {
                value: reference_id(payer, payee, text),
                reference: Some(Reference { text: text.clone(), payer, payee }),
            },
        }
    }

    /// The id, taking a reference's payer and payee from `parties`, the one omitted being `me` (the
    /// signer's address, if any).
    pub(crate) fn resolve(&self, parties: &PartyOpts, me: Option<Address>) -> eyre::Result<OrderId> {
        let text = match self {
            Self::Id(value) => {
                if parties.payer.is_some() || parties.payee.is_some() {
                    eyre::bail!(
                        "order {value:#x} is an id (0x + 64 hex digits): --payer and --payee only derive the id \
                         of a reference; omit them"
                    );
                }
                return Ok(OrderId { value: *value, reference: None });
            }
            Self::Reference(text) => text,
        };
        let (payer, payee) = match (parties.payer, parties.payee, me) {
            (Some(payer), Some(payee), _) => (payer, payee),
            (Some(payer), None, Some(me)) => (payer, me),
            (None, Some(payee), Some(me)) => (me, payee),
            (None, None, _) => eyre::bail!(
                "{text:?} is a reference, and the id of a reference depends on the payer and the payee: pass \
                 --payer ADDRESS or --payee ADDRESS (the one you omit is your own account{}), or the order's \
                 0x id",
                me.map(|m| format!(", {m}")).unwrap_or_default()
            ),
            (_, _, None) => eyre::bail!(
                "{text:?} is a reference, and the id of a reference depends on the payer and the payee: pass \
                 both --payer and --payee (no signing account is set to stand for the one omitted), or the \
                 order's 0x id"
            ),
        };
        if payer == payee {
            eyre::bail!(
                "reference {text:?}: the payer and the payee would both be {payer} (the one omitted is your own \
                 account); pass the other party with --payer or --payee"
            );
        }
        Ok(self.between(payer, payee))
    }
}

/// A reference and the parties its id is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub(crate) text: String,
    pub(crate) payer: Address,
    pub(crate) payee: Address,
}

/// A resolved order id, remembering the reference it was derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderId {
    /// The id.
    pub(crate) value: B256,
    /// The reference, if it was given as one.
    pub(crate) reference: Option<Reference>,
}

impl OrderId {
    /// The reference's text, if any.
    pub(crate) fn text(&self) -> Option<&str> {
        self.reference.as_ref().map(|r| r.text.as_str())
    }

    /// How the id was derived, for messages: `reference "x" of payer A and payee B`.
    pub(crate) fn derivation(&self) -> Option<String> {
        self.reference
            .as_ref()
            .map(|r| format!("reference {:?} between payer {} and payee {}", r.text, r.payer, r.payee))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(r) => write!(f, "{:#x} (reference {:?})", self.value, r.text),
            None => write!(f, "{:#x}", self.value),
        }
    }
}

/// A duration such as `7d`, `24h`, `90m`, `30s`, `1w` or `1d12h` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Secs(pub(crate) u64);

impl FromStr for Secs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid duration {s:?}: use e.g. 7d, 24h, 90m, 30s, 1w or 1d12h");
        let t = s.trim();
        if t.is_empty() {
            return Err(bad());
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse().map(Secs).map_err(|_| bad());
        }
        let mut total: u64 = 0;
        let mut num = String::new();
        for c in t.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                'w' => 604_800,
                _ => return Err(bad()),
            };
            let n: u64 = num.parse().map_err(|_| bad())?;
            num.clear();
            total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        }
        if !num.is_empty() {
            return Err(bad());
        }
        Ok(Secs(total))
    }
}

/// A point in time: RFC 3339 (`2026-12-01T12:00:00Z`), or a duration from now (`7d`; see
/// `Ctx::relative_base` for what "now" is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Unix seconds.
    At(u64),
    /// Seconds after now.
    In(u64),
}

impl When {
    /// Unix seconds, given now.
    pub(crate) fn resolve(self, now: u64) -> u64 {
        match self {
            Self::At(t) => t,
            Self::In(d) => now.saturating_add(d),
        }
    }
}

impl FromStr for When {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(Secs(d)) = s.parse::<Secs>() {
            return Ok(Self::In(d));
        }
        let t = DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
            format!(
                "invalid time {s:?}: use RFC 3339 (2026-12-01T12:00:00Z) or a duration from now (7d, 24h)"
            )
        })?;
        u64::try_from(t.timestamp()).map(Self::At).map_err(|_| format!("{s:?} is before 1970"))
    }
}

/// Unix seconds as `2026-11-21 10:00:00 UTC`.
pub(crate) fn utc(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("unix time {t}"))
}

/// Seconds as a short duration: `3d`, `1d 2h`, `90s`.
pub(crate) fn human_secs(s: u64) -> String {
    if s == 0 {
        return "0s".into();
    }
    let mut out = Vec::new();
    let mut r = s;
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if r >= n {
            out.push(format!("{}{unit}", r / n));
            r %= n;
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{address, b256};

    use super::*;

    #[test]
    fn hex_and_text() {
        let hex = "0x000000000000000000000000000000000000000000000000000000000000002a";
        let id: Bytes32Arg = hex.parse().unwrap();
        assert_eq!(id.value, B256::with_last_byte(0x2a));
        assert_eq!(id.reference, None);
        let upper: Bytes32Arg = hex.to_uppercase().replacen("0X", "0x", 1).parse().unwrap();
        assert_eq!(upper.value, id.value);
        assert_eq!(hex.parse::<OrderIdArg>().unwrap(), OrderIdArg::Id(B256::with_last_byte(0x2a)));

        let r: Bytes32Arg = "report-v1".parse().unwrap();
        assert_eq!(r.value, keccak256(b"report-v1"));
        assert_eq!(r.reference.as_deref(), Some("report-v1"));
        assert_eq!("invoice-42".parse::<OrderIdArg>().unwrap(), OrderIdArg::Reference("invoice-42".into()));
        // Solidity: keccak256(bytes("")).
        assert_eq!(
            format!("{:#x}", keccak256("")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );

        for bad in ["0x2a", "0x", &hex[..65], &format!("{hex}00"), &hex.replace('a', "g"), ""] {
            let e = bad.parse::<Bytes32Arg>().unwrap_err();
            assert!(e.contains("64 hex digits"), "{bad}: {e}");
            let e = bad.parse::<OrderIdArg>().unwrap_err();
            assert!(e.contains("64 hex digits"), "{bad}: {e}");
        }
    }

    const PAYER: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    const PAYEE: Address = address!("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
    const OTHER: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");

    #[test]
    fn reference_ids_are_bound_to_the_payer_and_the_payee() {
        // `cast keccak $(cast abi-encode "f(address,address,bytes32)" $PAYER $PAYEE $(cast keccak invoice-42))`
        let id = reference_id(PAYER, PAYEE, "invoice-42");
        assert_eq!(id, b256!("0xd13c59420f18794dfceca90d7214093adaa2d4ffa35785eead29ae507a8eec13"));
        // The same inputs, the same id; not the bare hash anyone could compute from the reference alone.
        assert_eq!(reference_id(PAYER, PAYEE, "invoice-42"), id);
        assert_ne!(id, keccak256("invoice-42"));
        // Another payer, another payee, the parties swapped, or another reference: another id.
        assert_ne!(reference_id(OTHER, PAYEE, "invoice-42"), id);
        assert_ne!(reference_id(PAYER, OTHER, "invoice-42"), id);
        assert_ne!(reference_id(PAYEE, PAYER, "invoice-42"), id);
        assert_ne!(reference_id(PAYER, PAYEE, "invoice-43"), id);
        assert_ne!(reference_id(PAYER, PAYEE, ""), reference_id(PAYER, PAYEE, " "));
    }

    #[test]
    fn resolving_a_reference_takes_the_omitted_party_from_the_signer() {
        let r: OrderIdArg = "invoice-42".parse().unwrap();
        let want = reference_id(PAYER, PAYEE, "invoice-42");
        let parties = |payer, payee| PartyOpts { payer, payee };
        // The payee delivers (--payer given), the payer releases (--payee given), the arbiter or a reader
        // passes both.
        let by_payee = r.resolve(&parties(Some(PAYER), None), Some(PAYEE)).unwrap();
        assert_eq!(by_payee.value, want);
        assert_eq!(by_payee.text(), Some("invoice-42"));
        assert_eq!(r.resolve(&parties(None, Some(PAYEE)), Some(PAYER)).unwrap().value, want);
        assert_eq!(r.resolve(&parties(Some(PAYER), Some(PAYEE)), Some(OTHER)).unwrap().value, want);
        assert_eq!(r.resolve(&parties(Some(PAYER), Some(PAYEE)), None).unwrap().value, want);
        assert_eq!(r.between(PAYER, PAYEE), by_payee);
        assert_eq!(format!("{by_payee}"), format!("{want:#x} (reference \"invoice-42\")"));

        let e = r.resolve(&parties(None, None), Some(PAYER)).unwrap_err().to_string();
        assert!(e.contains("pass --payer ADDRESS or --payee ADDRESS"), "{e}");
        let e = r.resolve(&parties(Some(PAYER), None), None).unwrap_err().to_string();
        assert!(e.contains("pass both --payer and --payee"), "{e}");
        let e = r.resolve(&parties(Some(PAYER), None), Some(PAYER)).unwrap_err().to_string();
        assert!(e.contains("the payer and the payee would both be"), "{e}");

        // A 0x id is used as is, and the parties are refused rather than ignored.
        let id = B256::repeat_byte(7);
        let hex = OrderIdArg::Id(id);
        assert_eq!(hex.resolve(&parties(None, None), None).unwrap(), OrderId { value: id, reference: None });
        assert_eq!(hex.between(PAYER, PAYEE).value, id);
        let e = hex.resolve(&parties(Some(PAYER), None), Some(PAYEE)).unwrap_err().to_string();
        assert!(e.contains("omit them"), "{e}");
    }

    #[test]
    fn durations_and_times() {
        assert_eq!("7d".parse::<Secs>().unwrap(), Secs(604_800));
        assert_eq!("24h".parse::<Secs>().unwrap(), Secs(86_400));
        assert_eq!("1d12h".parse::<Secs>().unwrap(), Secs(129_600));
        assert_eq!("90".parse::<Secs>().unwrap(), Secs(90));
        assert_eq!("1w".parse::<Secs>().unwrap(), Secs(604_800));
        for bad in ["", "d", "7x", "7d3", "-1d", "1.5h"] {
            assert!(bad.parse::<Secs>().is_err(), "{bad}");
        }
        assert_eq!("2d".parse::<When>().unwrap().resolve(100), 100 + 172_800);
        assert_eq!("2026-11-21T10:00:00Z".parse::<When>().unwrap(), When::At(1_795_255_200));
        assert_eq!("2026-11-21T11:00:00+01:00".parse::<When>().unwrap(), When::At(1_795_255_200));
        assert!("tomorrow".parse::<When>().is_err());
        assert_eq!(utc(1_795_255_200), "2026-11-21 10:00:00 UTC");
        assert_eq!(human_secs(3 * 86_400), "3d");
        assert_eq!(human_secs(86_400 + 7_200 + 5), "1d 2h 5s");
    }
}
