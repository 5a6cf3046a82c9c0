//! Human token amounts ("12.50") parsed exactly into base units, and printed back exactly.
//!
//! An amount is digits with at most one dot and digits on both sides of it; it is never rounded: more
//! decimal places than the token has is an error, as are signs, exponents, separators and values that do
//! not fit 256 bits.

use std::fmt;

use alloy::primitives::U256;

/// Why an amount was rejected (the message names the input and the rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmountError(pub(crate) String);

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AmountError {}

/// Parse `s` ("12.50", "3", "0.000001") into base units of a token with `decimals` decimals.
pub(crate) fn parse_amount(s: &str, decimals: u8, symbol: &str) -> Result<U256, AmountError> {
    let err = |why: String| Err(AmountError(format!("invalid amount {s:?}: {why}")));
    let t = s.trim();
    if t.is_empty() {
        return err("it is empty".into());
    }
    if t.starts_with('-') {
        return err("amounts cannot be negative".into());
    }
    if t.starts_with('+') {
        return err("write the number without a sign".into());
    }
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return err(format!(
            "expected a decimal number of {symbol} such as 12.50 (digits, at most one dot with digits on both \
             sides, no separators or exponents)"
        ));
    }
    let frac = frac.unwrap_or("");
    if frac.len() > decimals as usize {
        let places = frac.len();
        return err(format!(
            "{places} decimal places, but {symbol} has {decimals}; amounts are never rounded"
        ));
    }
    let mut base = String::with_capacity(int.len() + decimals as usize);
    base.push_str(int);
    base.push_str(frac);
    base.extend(std::iter::repeat_n('0', decimals as usize - frac.len()));
    U256::from_str_radix(&base, 10).or_else(|_| err("the value does not fit 256 bits".into()))
}

/// `base` units of a token with `decimals` as an exact decimal string without trailing zeros ("12.5").
pub(crate) fn format_amount(base: U256, decimals: u8) -> String {
    let s = base.to_string();
    let d = decimals as usize;
    if d == 0 {
        return s;
    }
    let padded = if s.len() <= d { format!("{}{s}", "0".repeat(d + 1 - s.len())) } else { s };
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

/// Exact amount display with the symbol: "12.5 USDC".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Units<'a> {
    pub(crate) base: U256,
    pub(crate) decimals: u8,
    pub(crate) symbol: &'a str,
}

impl fmt::Display for Units<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", format_amount(self.base, self.decimals), self.symbol)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, d: u8) -> Result<U256, AmountError> {
        parse_amount(s, d, "USDC")
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(p("12.50", 6).unwrap(), U256::from(12_500_000u64));
        assert_eq!(p("12", 6).unwrap(), U256::from(12_000_000u64));
        assert_eq!(p("0.000001", 6).unwrap(), U256::from(1u64));
        assert_eq!(p("0", 6).unwrap(), U256::ZERO);
        assert_eq!(p("007.5", 6).unwrap(), U256::from(7_500_000u64));
        assert_eq!(p(" 1.5 ", 6).unwrap(), U256::from(1_500_000u64));
        assert_eq!(p("5", 0).unwrap(), U256::from(5u64));
        assert_eq!(p("1.000000000000000001", 18).unwrap(), U256::from(1_000_000_000_000_000_001u128));
        assert_eq!(p(&U256::MAX.to_string(), 0).unwrap(), U256::MAX);
    }

    #[test]
    fn rejects_what_it_cannot_represent_exactly() {
        let e = p("12.1234567", 6).unwrap_err().0;
        assert!(e.contains("7 decimal places, but USDC has 6"), "{e}");
        assert!(e.contains("never rounded"), "{e}");
        assert!(p("1.5", 0).unwrap_err().0.contains("1 decimal places, but USDC has 0"));
        assert!(p("", 6).unwrap_err().0.contains("empty"));
        assert!(p("   ", 6).unwrap_err().0.contains("empty"));
        assert!(p("-1", 6).unwrap_err().0.contains("negative"));
        assert!(p("+1", 6).unwrap_err().0.contains("sign"));
        for bad in ["1,000", "1_000", "1e6", "12.", ".5", "1.2.3", "0x10", "abc", "1 000", "\u{661}"] {
            assert!(p(bad, 6).is_err(), "{bad} should be rejected");
        }
        let too_big = format!("{}0", U256::MAX);
        assert!(p(&too_big, 0).unwrap_err().0.contains("256 bits"));
        assert!(p(&U256::MAX.to_string(), 6).unwrap_err().0.contains("256 bits"));
    }

    #[test]
    fn formats_exactly() {
        assert_eq!(format_amount(U256::from(12_500_000u64), 6), "12.5");
        assert_eq!(format_amount(U256::from(12_000_000u64), 6), "12");
        assert_eq!(format_amount(U256::from(1u64), 6), "0.000001");
        assert_eq!(format_amount(U256::ZERO, 6), "0");
        assert_eq!(format_amount(U256::from(123u64), 0), "123");
        for (s, d) in [("12.5", 6), ("0.000001", 6), ("1000000", 6), ("79228162514264.337593543950335", 15)] {
            assert_eq!(format_amount(p(s, d).unwrap(), d), s);
        }
        let shown = Units { base: U256::from(1_250_000u64), decimals: 6, symbol: "USDC" }.to_string();
        assert_eq!(shown, "1.25 USDC");
    }
}
