//! The developer receiver (`listen`), fed by `post`.

use std::time::Duration;

use holdfast_webhooks::{
    Outcome, Received, ReceivedBody, Signer, generate_secret, http_client, listen, post,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use url::Url;

use crate::{change_body, now};

struct Running {
    url: Url,
    received: mpsc::UnboundedReceiver<Received>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<holdfast_webhooks::Result<()>>,
}

async fn start(secret: &str) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/hooks/holdfast", listener.local_addr().unwrap())).unwrap();
    let (tx, received) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let secret = secret.to_owned();
    let server = tokio::spawn(async move {
        listen(listener, &secret, move |r| tx.send(r).unwrap(), async move { stopped.await.unwrap_or(()) })
            .await
    });
    Running { url, received, stop, server }
}

impl Running {
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.received.recv()).await.unwrap().unwrap()
    }

    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.server).await.unwrap().unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_signed_delivery_is_accepted_and_reported_verified() {
    let secret = generate_secret();
    let mut receiver = start(&secret).await;
    let client = http_client(true, Duration::from_secs(5)).unwrap();
    let body = change_body();
    let ts = now();
    let headers = Signer::new(&secret, None).unwrap().headers("msg_good", ts, &body).unwrap();

    let attempt = post(&client, &receiver.url, headers, body.clone(), true).await;
    assert_eq!((attempt.status, attempt.outcome), (Some(204), Outcome::Delivered), "{attempt:?}");

    let got = receiver.next().await;
    assert!(got.verified, "{got:?}");
    assert_eq!(got.error, None);
    assert_eq!(got.id.as_deref(), Some("msg_good"));
    assert_eq!(got.timestamp, Some(ts));
    assert_eq!(got.body, ReceivedBody::Json(serde_json::from_slice(&body).unwrap()));
    let line = holdfast_webhooks::describe(&got);
    assert!(
        line.starts_with("✔ msg_good order.updated 0xe7f1…0512:0x0000…002b  status=released  block 20311"),
        "{line}"
    );
    receiver.shut_down().await;
}

#[tokio::test]
async fn a_tampered_delivery_is_refused_and_reported_unverified() {
    let secret = generate_secret();
    let mut receiver = start(&secret).await;
    let client = http_client(true, Duration::from_secs(5)).unwrap();
    let body = change_body();
    let headers = Signer::new(&secret, None).unwrap().headers("msg_bad", now(), &body).unwrap();
    let tampered = String::from_utf8(body).unwrap().replace("released", "refunded").into_bytes();

    let attempt = post(&client, &receiver.url, headers, tampered, true).await;
    assert_eq!((attempt.status, attempt.outcome), (Some(400), Outcome::Retry), "{attempt:?}");
    let excerpt: serde_json::Value =
        serde_json::from_str(attempt.response_excerpt.as_deref().unwrap()).unwrap();
    assert!(excerpt["error"].as_str().unwrap().contains("signature"), "{excerpt}");

    let got = receiver.next().await;
    assert!(!got.verified, "{got:?}");
    assert!(got.error.is_some());
    assert_eq!(got.id.as_deref(), Some("msg_bad"));
    assert!(holdfast_webhooks::describe(&got).starts_with("✘ msg_bad order.updated"));
    receiver.shut_down().await;
}

#[tokio::test]
async fn a_receiver_holding_the_previous_secret_accepts_a_rotated_delivery() {
    let (current, previous) = (generate_secret(), generate_secret());
    let mut receiver = start(&previous).await;
    let client = http_client(true, Duration::from_secs(5)).unwrap();
    let body = change_body();
    let rotated = Signer::new(&current, Some(&previous)).unwrap().headers("msg_rot", now(), &body).unwrap();
    let attempt = post(&client, &receiver.url, rotated, body.clone(), true).await;
    assert_eq!(attempt.status, Some(204), "{attempt:?}");
    assert!(receiver.next().await.verified);

    // Once the grace period is over, the old secret no longer verifies.
    let after = Signer::new(&current, None).unwrap().headers("msg_after", now(), &body).unwrap();
    let attempt = post(&client, &receiver.url, after, body, true).await;
    assert_eq!(attempt.status, Some(400), "{attempt:?}");
    assert!(!receiver.next().await.verified);
    receiver.shut_down().await;
}

#[tokio::test]
async fn a_stale_timestamp_is_refused() {
    let secret = generate_secret();
    let mut receiver = start(&secret).await;
    let client = http_client(true, Duration::from_secs(5)).unwrap();
    let body = change_body();
    let headers = Signer::new(&secret, None).unwrap().headers("msg_old", now() - 3600, &body).unwrap();
    let attempt = post(&client, &receiver.url, headers, body, true).await;
    assert_eq!(attempt.status, Some(400), "{attempt:?}");
    let got = receiver.next().await;
    assert!(!got.verified && got.error.as_deref().unwrap().contains("too old"), "{got:?}");
    receiver.shut_down().await;
}

#[tokio::test]
async fn a_malformed_secret_fails_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = listen(listener, "not-a-secret", |_| {}, std::future::pending()).await;
    assert!(matches!(result, Err(holdfast_webhooks::Error::Secret(_))), "{result:?}");
}
