//! Webhook secrets and the signer of deliveries.
//!
//! A secret is `whsec_` followed by the standard (padded) base64 of 24 to 64 random bytes, the range the
//! Standard Webhooks specification recommends. The HMAC itself is computed by the `standardwebhooks` crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rand::RngCore as _;
use standardwebhooks::Webhook;

use crate::{Error, Result};

/// The prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The fewest key bytes a secret may carry.
pub const MIN_SECRET_BYTES: usize = 24;
/// The most key bytes a secret may carry.
pub const MAX_SECRET_BYTES: usize = 64;
/// How many random bytes [`generate_secret`] draws.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// The message id header.
pub const HEADER_ID: &str = "webhook-id";
/// The timestamp header (Unix seconds).
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The signature header: space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// Why a string is not a webhook secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret does not start with `whsec_`.
    #[error("a webhook secret starts with `{SECRET_PREFIX}`")]
    MissingPrefix,
    /// What follows the prefix is not standard base64.
    #[error("a webhook secret is `{SECRET_PREFIX}` followed by standard base64")]
    Base64(#[source] base64::DecodeError),
    /// The key has too few or too many bytes.
    #[error("a webhook secret carries {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, this one carries {0}")]
    Length(usize),
    /// The Standard Webhooks library refused the secret.
    #[error("the Standard Webhooks library refused the secret")]
    Rejected(#[source] standardwebhooks::WebhookError),
}

/// A new random secret: `whsec_` and the base64 of 32 bytes from the thread-local CSPRNG (seeded by the
/// operating system).
pub fn generate_secret() -> String {
    let mut key = [0u8; GENERATED_SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// Checks that `secret` is a well-formed webhook secret.
pub fn validate_secret(secret: &str) -> Result<(), SecretError> {
    parse(secret).map(|_| ())
}

fn parse(secret: &str) -> Result<Webhook, SecretError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(SecretError::MissingPrefix)?;
    let key = STANDARD.decode(encoded).map_err(SecretError::Base64)?;
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        return Err(SecretError::Length(key.len()));
    }
    Webhook::new(secret).map_err(SecretError::Rejected)
}

/// Signs deliveries with the current secret and, during a rotation's grace period, the previous one too.
///
/// With two secrets the `webhook-signature` header carries both signatures, current first
/// (`v1,<current> v1,<previous>`), so a receiver holding either secret accepts the delivery.
pub struct Signer {
    current: Webhook,
    previous: Option<Webhook>,
}

impl std::fmt::Debug for Signer {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("rotating", &self.previous.is_some()).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `current` and, while a rotation's grace period lasts, `previous`.
    pub fn new(current: &str, previous: Option<&str>) -> Result<Self> {
        Ok(Self { current: parse(current)?, previous: previous.map(parse).transpose()? })
    }

    /// The `webhook-signature` header value: `v1,<base64>`, or two of them space-separated (current first).
    pub fn signature(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
        let mut signature = self.current.sign(msg_id, timestamp, body).map_err(Error::Sign)?;
        if let Some(previous) = &self.previous {
            signature.push(' ');
            signature.push_str(&previous.sign(msg_id, timestamp, body).map_err(Error::Sign)?);
        }
        Ok(signature)
    }

    /// The headers of a delivery: `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature`
    /// and `content-type: application/json`. The body must be UTF-8 (it is JSON).
    pub fn headers(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<HeaderMap> {
        let signature = self.signature(msg_id, timestamp, body)?;
        let mut headers = HeaderMap::with_capacity(4);
        let mut insert = |name: &'static str, value: &str| -> Result<()> {
            let value = HeaderValue::from_str(value).map_err(|source| Error::HeaderValue { name, source })?;
            headers.insert(HeaderName::from_static(name), value);
            Ok(())
        };
        insert(HEADER_ID, msg_id)?;
        insert(HEADER_TIMESTAMP, &timestamp.to_string())?;
        insert(HEADER_SIGNATURE, &signature)?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks test vector (also in the `standardwebhooks` crate's own tests).
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let (a, b) = (generate_secret(), generate_secret());
        assert!(a.starts_with(SECRET_PREFIX), "{a}");
        assert_eq!(STANDARD.decode(&a[SECRET_PREFIX.len()..]).unwrap().len(), GENERATED_SECRET_BYTES);
        validate_secret(&a).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_secrets_are_refused_with_their_reason() {
        assert!(matches!(
            validate_secret("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::MissingPrefix)
        ));
        assert!(matches!(validate_secret("whsec_not base64!"), Err(SecretError::Base64(_))));
        assert!(matches!(validate_secret("whsec_c2hvcnQ="), Err(SecretError::Length(5))));
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert!(matches!(validate_secret(&long), Err(SecretError::Length(65))));
        assert!(matches!(Signer::new(SECRET, Some("nope")), Err(Error::Secret(SecretError::MissingPrefix))));
    }

    #[test]
    fn one_secret_signs_the_test_vector() {
        let signer = Signer::new(SECRET, None).unwrap();
        let headers = signer.headers(MSG_ID, TS, BODY).unwrap();
        assert_eq!(headers[HEADER_SIGNATURE], EXPECTED);
        assert_eq!(headers[HEADER_ID], MSG_ID);
        assert_eq!(headers[HEADER_TIMESTAMP], "1649367553");
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(headers.len(), 4);
    }

    #[test]
    fn a_rotation_sends_both_signatures_current_first() {
        let previous = generate_secret();
        let signer = Signer::new(SECRET, Some(&previous)).unwrap();
        let header = signer.signature(MSG_ID, TS, BODY).unwrap();
        let old = Webhook::new(&previous).unwrap().sign(MSG_ID, TS, BODY).unwrap();
        assert_eq!(header, format!("{EXPECTED} {old}"));
        // And the standardwebhooks verifier accepts it with either secret alone (timestamp: now).
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let headers = signer.headers(MSG_ID, now, BODY).unwrap();
        for secret in [SECRET, previous.as_str()] {
            Webhook::new(secret).unwrap().verify(BODY, &headers).unwrap();
        }
        let stranger = generate_secret();
        assert!(Webhook::new(&stranger).unwrap().verify(BODY, &headers).is_err());
    }

    #[test]
    fn unsendable_inputs_are_errors() {
        let signer = Signer::new(SECRET, None).unwrap();
        assert!(matches!(
            signer.headers("msg\nid", TS, BODY),
            Err(Error::HeaderValue { name: HEADER_ID, .. })
        ));
        assert!(matches!(signer.headers(MSG_ID, TS, &[0xff, 0xfe]), Err(Error::Sign(_))));
    }

    #[test]
    fn debug_hides_the_keys() {
        let signer = Signer::new(SECRET, None).unwrap();
        let shown = format!("{signer:?}");
        assert!(!shown.contains("C2FV") && shown.contains("Signer"), "{shown}");
    }
}
