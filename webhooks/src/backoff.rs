//! The retry schedule of failed deliveries.
//!
//! The schedule is the `backon` crate's exponential backoff (first step [`FIRST_DELAY`], factor 2, capped at
//! [`MAX_BASE_DELAY`]), with its jitter, which adds a uniformly random `[0, base)`: a step lasts between
//! the base delay and twice it, so never more than [`MAX_DELAY`].
//!
//! The worker persists only an attempt count, so the delay must be a function of it: `retry_delay(n, …)`
//! builds the backoff sequence afresh and takes its `n`-th element, i.e. the delay after the `n`-th failed
//! attempt is `FIRST_DELAY · 2^(n-1)` (capped) plus jitter. The sequence reaches the cap after ten steps,
//! so the count is clamped before iterating and a large count costs nothing.
//!
//! | failed attempts | base delay | with jitter |
//! |---|---|---|
//! | 1 | 5 s | 5–10 s |
//! | 2 | 10 s | 10–20 s |
//! | 5 | 80 s | 80–160 s |
//! | 8 | ≈ 10.7 min | ≈ 10.7–21.3 min |
//! | ≥ 10 | 30 min | 30–60 min |
//!
//! A receiver's `Retry-After` longer than the computed delay wins, up to [`MAX_RETRY_AFTER`].

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use http::HeaderValue;

/// The base delay after the first failed attempt.
pub const FIRST_DELAY: Duration = Duration::from_secs(5);
/// The largest base delay (before jitter).
pub const MAX_BASE_DELAY: Duration = Duration::from_secs(30 * 60);
/// The largest delay [`retry_delay`] computes without a `Retry-After` (base plus jitter).
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Beyond this many steps the base delay is at its cap (`5 s · 2^9 > 30 min`).
const STEPS_TO_CAP: u32 = 10;

fn builder() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(FIRST_DELAY)
        .with_factor(2.0)
        .with_max_delay(MAX_BASE_DELAY)
        .without_max_times()
}

fn nth(builder: ExponentialBuilder, attempt: u32) -> Duration {
    // Attempt 1 (the first failure) takes the first element; 0 is treated as 1.
    let index = attempt.saturating_sub(1).min(STEPS_TO_CAP) as usize;
    builder.build().nth(index).unwrap_or(MAX_BASE_DELAY)
}

/// The un-jittered delay after `attempt` failed attempts (1-based): `FIRST_DELAY · 2^(attempt-1)`, at most
/// [`MAX_BASE_DELAY`].
pub fn base_delay(attempt: u32) -> Duration {
    nth(builder(), attempt)
}

/// How long to wait after `attempt` failed attempts (1-based; 0 is treated as 1) before the next:
/// [`base_delay`] plus a random jitter in `[0, base)`, or the receiver's `Retry-After` (at most
/// [`MAX_RETRY_AFTER`]) when that is longer.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let ours = nth(builder().with_jitter(), attempt).min(MAX_DELAY);
    match retry_after {
        Some(theirs) => ours.max(theirs.min(MAX_RETRY_AFTER)),
        None => ours,
    }
}

/// A `Retry-After` header as a delay from `now`: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`; a date in the past is a zero delay). `None` when malformed.
pub fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: a number too large for u64 is still "a very long time".
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_schedule_starts_small_and_doubles_to_its_cap() {
        assert_eq!(base_delay(0), FIRST_DELAY);
        assert_eq!(base_delay(1), FIRST_DELAY);
        assert_eq!(base_delay(2), FIRST_DELAY * 2);
        assert_eq!(base_delay(5), FIRST_DELAY * 16);
        assert_eq!(base_delay(10), MAX_BASE_DELAY);
        assert_eq!(base_delay(u32::MAX), MAX_BASE_DELAY);
        let first = retry_delay(1, None);
        assert!(first >= FIRST_DELAY && first < FIRST_DELAY * 2, "{first:?}");
    }

    #[test]
    fn retry_after_wins_only_when_longer_and_is_capped() {
        assert_eq!(retry_delay(1, Some(Duration::from_secs(600))), Duration::from_secs(600));
        let short = retry_delay(10, Some(Duration::from_secs(1)));
        assert!(short >= MAX_BASE_DELAY, "{short:?}");
        assert_eq!(retry_delay(1, Some(Duration::from_secs(10 * 86_400))), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_parses_both_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let parse = |s: &str| parse_retry_after(&HeaderValue::from_str(s).unwrap(), now);
        assert_eq!(parse("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("99999999999999999999999"), Some(Duration::from_secs(u64::MAX)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:29:30 GMT"), Some(Duration::from_secs(90)));
        assert_eq!(parse("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        // RFC 850 and asctime forms are HTTP-dates too.
        assert_eq!(parse("Wednesday, 21-Oct-15 07:28:10 GMT"), Some(Duration::from_secs(10)));
        assert_eq!(parse("Wed Oct 21 07:28:20 2015"), Some(Duration::from_secs(20)));
        for bad in ["", "-5", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let binary = HeaderValue::from_bytes(b"\xff7").unwrap();
        assert_eq!(parse_retry_after(&binary, now), None);
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds(attempt in any::<u32>(), retry_after in proptest::option::of(0u64..10_000_000)) {
            let base = base_delay(attempt);
            prop_assert!(base >= FIRST_DELAY && base <= MAX_BASE_DELAY);
            let retry_after = retry_after.map(Duration::from_secs);
            let delay = retry_delay(attempt, retry_after);
            prop_assert!(delay >= base, "{delay:?} < {base:?}");
            match retry_after {
                None => prop_assert!(delay <= (base * 2).min(MAX_DELAY), "{delay:?} vs {base:?}"),
                Some(theirs) => {
                    prop_assert!(delay >= theirs.min(MAX_RETRY_AFTER));
                    prop_assert!(delay <= MAX_DELAY.max(theirs.min(MAX_RETRY_AFTER)));
                }
            }
        }

        #[test]
        fn the_base_delay_never_decreases(attempt in 0u32..u32::MAX) {
            prop_assert!(base_delay(attempt) <= base_delay(attempt + 1));
        }
    }
}
