//! Signatures made by `Signer` verified by the Python `standardwebhooks` package (pinned in
//! requirements-dev.txt, installed into `.venv` by `make deps`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use holdfast_webhooks::{Signer, generate_secret};

use crate::{change_body, now};

const VERIFY: &str = r#"
import sys
from standardwebhooks import Webhook
secret, msg_id, timestamp, signature = sys.argv[1:5]
body = sys.stdin.buffer.read()
headers = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signature}
Webhook(secret).verify(body, headers)
print("verified")
"#;

fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make deps` (it installs the pinned Python standardwebhooks into .venv)",
        python.display()
    );
    python
}

/// Whether Python's `Webhook(secret).verify` accepts the delivery; its stderr when not.
fn python_verifies(secret: &str, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let mut child = Command::new(python())
        .args(["-c", VERIFY, secret])
        .args([header("webhook-id"), header("webhook-timestamp"), header("webhook-signature")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verified");
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn python_verifies_a_single_secret_signature() {
    let secret = generate_secret();
    let body = change_body();
    let headers = Signer::new(&secret, None).unwrap().headers("msg_single", now(), &body).unwrap();
    python_verifies(&secret, &headers, &body).unwrap();

    // The check can fail: another secret, or a changed body, is refused.
    let error = python_verifies(&generate_secret(), &headers, &body).unwrap_err();
    assert!(error.contains("No matching signature"), "{error}");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(python_verifies(&secret, &headers, &tampered).is_err());
}

#[test]
fn python_verifies_a_rotated_pair_with_either_secret() {
    let (current, previous) = (generate_secret(), generate_secret());
    let body = change_body();
    let headers =
        Signer::new(&current, Some(&previous)).unwrap().headers("msg_rotated", now(), &body).unwrap();
    let signatures = headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    for secret in [&current, &previous] {
        python_verifies(secret, &headers, &body).unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
    assert!(python_verifies(&generate_secret(), &headers, &body).is_err());
}
