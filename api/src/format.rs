//! Exact formatting and strict parsing of what the API serves and accepts: EIP-55 addresses, 32-byte ids,
//! decimal amounts, ISO-8601 times and the opaque list cursor.

use alloy::primitives::{Address, B256, U256};
use base64::Engine;

use crate::error::ApiError;

/// EIP-55 checksummed address.
pub fn addr(a: Address) -> String {
    a.to_checksum(None)
}

/// `0x` + 64 lower-case hex digits.
pub fn hash(h: B256) -> String {
    alloy::hex::encode_prefixed(h.as_slice())
}

/// An exact decimal string of `v` base units with `decimals` decimals, without trailing zeros (and without
/// a trailing dot): 12500000 with 6 decimals is `"12.5"`, 12000000 is `"12"`, 1 is `"0.000001"`.
pub fn decimal(v: U256, decimals: u8) -> String {
    let digits = v.to_string();
    let d = usize::from(decimals);
    if d == 0 {
        return digits;
    }
    let padded =
        if digits.len() <= d { format!("{}{digits}", "0".repeat(d + 1 - digits.len())) } else { digits };
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
}

fn strip_hex<'a>(field: &str, s: &'a str, len: usize, what: &str) -> Result<&'a str, ApiError> {
    let body = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).ok_or_else(|| {
        ApiError::invalid(field, format!("{field} must be {what}: 0x followed by {len} hex digits"))
    })?;
    if body.len() != len || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must be {what}: 0x followed by {len} hex digits"),
        ));
    }
    Ok(body)
}

/// Parse an address in any letter case (`0x` + 40 hex digits).
pub fn parse_address(field: &str, s: &str) -> Result<Address, ApiError> {
    let body = strip_hex(field, s, 40, "an address")?;
    let bytes =
        alloy::hex::decode(body).map_err(|_| ApiError::invalid(field, format!("{field}: bad hex")))?;
    Ok(Address::from_slice(&bytes))
}

/// Parse a 32-byte id or hash (`0x` + 64 hex digits, any case).
pub fn parse_b256(field: &str, s: &str) -> Result<B256, ApiError> {
    let body = strip_hex(field, s, 64, "32 bytes")?;
    let bytes =
        alloy::hex::decode(body).map_err(|_| ApiError::invalid(field, format!("{field}: bad hex")))?;
    Ok(B256::from_slice(&bytes))
}

/// The opaque list cursor: base64url (no padding) of the last order's lock block and log index, 8 bytes
/// big-endian each.
pub fn encode_cursor(block: u64, log_index: u64) -> String {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&block.to_be_bytes());
    raw[8..].copy_from_slice(&log_index.to_be_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decode a list cursor.
pub fn decode_cursor(s: &str) -> Result<(u64, u64), ApiError> {
    let bad = || ApiError::invalid("cursor", "cursor is not a cursor this API returned");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let raw: [u8; 16] = raw.try_into().map_err(|_| bad())?;
    let block = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    let log_index = u64::from_be_bytes(raw[8..].try_into().expect("8 bytes"));
    // Positions beyond what the store holds (above 2^63) are past every order: an empty last page.
    Ok((block.min(i64::MAX as u64), log_index.min(i64::MAX as u64)))
}

/// RFC 3339 / ISO-8601 UTC time of unix seconds, e.g. `2024-01-15T10:30:45Z`.
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_trimmed() {
        assert_eq!(decimal(U256::from(12_500_000u64), 6), "12.5");
        assert_eq!(decimal(U256::from(12_000_000u64), 6), "12");
        assert_eq!(decimal(U256::from(1u64), 6), "0.000001");
        assert_eq!(decimal(U256::ZERO, 6), "0");
        assert_eq!(decimal(U256::from(123u64), 0), "123");
        assert_eq!(
            decimal(U256::MAX, 18),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
        );
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_705_314_645), "2024-01-15T10:30:45Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(123, 4)).unwrap(), (123, 4));
        assert!(decode_cursor("abc").is_err());
        assert!(decode_cursor("!!!!").is_err());
        assert_eq!(decode_cursor(&encode_cursor(u64::MAX, 0)).unwrap(), (i64::MAX as u64, 0));
    }

    #[test]
    fn addresses_any_case() {
        let a = parse_address("payer", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8").unwrap();
        assert_eq!(addr(a), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
        assert_eq!(parse_address("payer", "0x70997970C51812DC3A010C7D01B50E0D17DC79C8").unwrap(), a);
        assert!(parse_address("payer", "70997970c51812dc3a010c7d01b50e0d17dc79c8").is_err());
        assert!(parse_address("payer", "0x70997970c51812dc3a010c7d01b50e0d17dc79").is_err());
        assert!(parse_address("payer", "0xzz997970c51812dc3a010c7d01b50e0d17dc79c8").is_err());
        assert!(parse_b256("orderId", &format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(parse_b256("orderId", "0x01").is_err());
    }
}
