//! Order ids (and evidence / reason codes), durations and times as typed on the command line.
//!
//! A `bytes32` argument is either `0x` followed by exactly 64 hex digits, used as is, or any other text
//! (a reference such as `invoice-2026-0042`), which becomes `keccak256(utf8(text))` — the Solidity
//! `keccak256(bytes(text))`. Text starting with `0x` that is not a full 32-byte hex value is rejected
//! rather than hashed, so a mistyped id never silently becomes a different one.

use std::{fmt, str::FromStr};

use alloy::primitives::{B256, keccak256};
use chrono::{DateTime, Utc};

/// A `bytes32` from the command line, remembering the text it was hashed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bytes32Arg {
    /// The value.
    pub(crate) value: B256,
    /// The reference it is the keccak256 of, if it was given as text.
    pub(crate) reference: Option<String>,
}

impl FromStr for Bytes32Arg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("is empty: pass 0x + 64 hex digits, or a text reference to hash".into());
        }
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let n = hex.len();
                return Err(format!(
                    "{s:?} starts with 0x but is not 0x + 64 hex digits (it has {n} characters after 0x); pass \
                     the full 32-byte id, or a reference without the 0x prefix to use keccak256(utf8(reference))"
                ));
            }
            let value = B256::from_str(hex).map_err(|e| format!("{s:?}: {e}"))?;
            return Ok(Self { value, reference: None });
        }
        Ok(Self { value: keccak256(s.as_bytes()), reference: Some(s.to_string()) })
    }
}

impl fmt::Display for Bytes32Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(r) => write!(f, "{:#x} (keccak256 of {r:?})", self.value),
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
    use super::*;

    #[test]
    fn ids() {
        let hex = "0x000000000000000000000000000000000000000000000000000000000000002a";
        let id: Bytes32Arg = hex.parse().unwrap();
        assert_eq!(id.value, B256::with_last_byte(0x2a));
        assert_eq!(id.reference, None);
        let upper: Bytes32Arg = hex.to_uppercase().replacen("0X", "0x", 1).parse().unwrap();
        assert_eq!(upper.value, id.value);

        let r: Bytes32Arg = "invoice-42".parse().unwrap();
        assert_eq!(r.value, keccak256(b"invoice-42"));
        assert_eq!(r.reference.as_deref(), Some("invoice-42"));
        // Solidity: keccak256(bytes("invoice-42")).
        assert_eq!(
            format!("{:#x}", keccak256("")),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );

        for bad in ["0x2a", "0x", &hex[..65], &format!("{hex}00"), &hex.replace('a', "g"), ""] {
            let e = bad.parse::<Bytes32Arg>().unwrap_err();
            assert!(e.contains("64 hex digits"), "{bad}: {e}");
        }
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
