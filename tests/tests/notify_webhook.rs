//! Webhook delivery to a real HTTP receiver on loopback
//! (`tests::webhook_sink`): the body Discord, Slack and ntfy accept, the
//! HMAC signature, retries and permanent failures.

use backend::notify::compose::{AlertKind, AlertNotice};
use backend::notify::webhook::{sign, verify_signature, VerifyError, SIGNATURE_HEADER};
use backend::notify::{
    Channel, ChannelConfig, Channels, DeliveryOutcome, RetryPolicy, WebhookConfig,
};
use std::time::Duration;
use tests::webhook_sink::WebhookSink;
use wasm_core::asin::Asin;
use wasm_core::marketplace::Marketplace;
use wasm_core::types::Condition;

const PUBLIC_URL: &str = "https://pricewatch.example";
const NOW: i64 = 1_763_800_000_000;
const SECRET: &[u8] = b"whsec_per-watch-secret";

fn channels(retry: RetryPolicy) -> Channels {
    Channels::new(
        None,
        WebhookConfig {
            timeout: Duration::from_secs(5),
            allow_loopback_http: true,
        },
        ChannelConfig {
            public_url: PUBLIC_URL.into(),
            retry,
        },
    )
    .expect("channels")
}

fn notice() -> AlertNotice {
    AlertNotice {
        alert_id: 41,
        watch_id: 7,
        asin: Asin::parse("B0KAFFEE01").expect("asin"),
        marketplace: Marketplace::AMAZON_DE,
        condition: Condition::Used,
        kind: AlertKind::PriceDrop,
        title: "Kaffeemühle Edelstahl".into(),
        old_price_minor: Some(5_000),
        new_price_minor: Some(3_999),
        created_at: NOW - 1_000,
    }
}

#[tokio::test]
async fn body_shape_and_signature() {
    let sink = WebhookSink::start().expect("sink");
    let ch = channels(RetryPolicy::default());
    let outcome = ch
        .deliver_webhook(&sink.url("/hooks/abc"), SECRET, &notice(), 1, NOW)
        .await;
    assert_eq!(outcome, DeliveryOutcome::Delivered);

    let requests = sink.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/abc");
    assert_eq!(req.header("content-type"), Some("application/json"));

    let body: serde_json::Value = serde_json::from_slice(&req.body).expect("json body");
    let line = "Price drop of 20%: Kaffeemühle Edelstahl went from 50,00\u{a0}€ to 39,99\u{a0}€. \
                https://pricewatch.example/p/amazon.de/B0KAFFEE01";
    assert_eq!(body["content"], line, "Discord");
    assert_eq!(body["text"], line, "Slack");
    assert_eq!(body["message"], line, "ntfy");
    assert_eq!(body["title"], "Price down 20%", "ntfy");
    let alert = &body["alert"];
    assert_eq!(
        alert,
        &serde_json::json!({
            "id": 41,
            "watch_id": 7,
            "asin": "B0KAFFEE01",
            "marketplace": "amazon.de",
            "condition": "used",
            "kind": "price_drop",
            "old_price_minor": 5000,
            "new_price_minor": 3999,
            "currency": "EUR",
            "created_at": NOW - 1_000,
            "title": "Kaffeemühle Edelstahl",
            "product_url": "https://pricewatch.example/p/amazon.de/B0KAFFEE01",
        })
    );

    // The header is `t=<now ms>,v1=<hex>` and verifies with the secret...
    let header = req.header(SIGNATURE_HEADER).expect("signature header");
    assert!(header.starts_with(&format!("t={NOW},v1=")), "{header}");
    assert_eq!(header.len(), format!("t={NOW},v1=").len() + 64);
    assert_eq!(header, sign(SECRET, &req.body, NOW));
    assert_eq!(
        verify_signature(SECRET, header, &req.body, NOW + 2_000, 300_000),
        Ok(())
    );
    // ...and fails with another secret, a changed body, or an old timestamp.
    assert_eq!(
        verify_signature(b"another secret", header, &req.body, NOW, 300_000),
        Err(VerifyError::Mismatch)
    );
    let mut changed = req.body.clone();
    let pos = changed.iter().position(|&b| b == b'5').expect("a digit");
    changed[pos] = b'1';
    assert_eq!(
        verify_signature(SECRET, header, &changed, NOW, 300_000),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify_signature(SECRET, header, &req.body, NOW + 600_000, 300_000),
        Err(VerifyError::Stale)
    );
}

#[tokio::test]
async fn server_error_then_ok_is_retried_then_delivered() {
    let sink = WebhookSink::start().expect("sink");
    let ch = channels(RetryPolicy::default());
    sink.respond(500, &[], 1);
    let url = sink.url("/hook");

    match ch.deliver_webhook(&url, SECRET, &notice(), 1, NOW).await {
        DeliveryOutcome::Retry { at } => {
            assert!((NOW + 24_000..=NOW + 36_000).contains(&at), "{at}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    let later = NOW + 30_000;
    assert_eq!(
        ch.deliver_webhook(&url, SECRET, &notice(), 2, later).await,
        DeliveryOutcome::Delivered
    );
    let requests = sink.requests();
    assert_eq!(requests.len(), 2);
    // Each attempt is signed with its own time.
    assert_eq!(
        requests[1].header(SIGNATURE_HEADER).map(|h| h.to_string()),
        Some(sign(SECRET, &requests[1].body, later))
    );
    assert_eq!(requests[0].body, requests[1].body, "same alert, same body");
    let counts = ch.metrics().counts(Channel::Webhook);
    assert_eq!((counts.retries, counts.delivered), (1, 1));
}

#[tokio::test]
async fn not_found_is_permanent() {
    let sink = WebhookSink::start().expect("sink");
    let ch = channels(RetryPolicy::default());
    sink.respond(404, &[], usize::MAX);
    match ch
        .deliver_webhook(&sink.url("/gone"), SECRET, &notice(), 1, NOW)
        .await
    {
        DeliveryOutcome::DeadLetter { reason } => assert!(reason.contains("404"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.requests().len(), 1, "no second try");
    assert_eq!(ch.metrics().counts(Channel::Webhook).dead_letters, 1);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after_and_408_retries() {
    let sink = WebhookSink::start().expect("sink");
    let ch = channels(RetryPolicy::default());
    sink.respond(429, &[("retry-after", "600")], 1);
    sink.respond(408, &[], 1);
    let url = sink.url("/hook");
    assert_eq!(
        ch.deliver_webhook(&url, SECRET, &notice(), 1, NOW).await,
        DeliveryOutcome::Retry { at: NOW + 600_000 }
    );
    assert!(matches!(
        ch.deliver_webhook(&url, SECRET, &notice(), 2, NOW).await,
        DeliveryOutcome::Retry { .. }
    ));
    assert_eq!(
        ch.deliver_webhook(&url, SECRET, &notice(), 3, NOW).await,
        DeliveryOutcome::Delivered
    );
}

#[tokio::test]
async fn persistent_5xx_dead_letters_after_max_attempts() {
    let sink = WebhookSink::start().expect("sink");
    let ch = channels(RetryPolicy::immediate(3));
    sink.respond(503, &[], usize::MAX);
    let url = sink.url("/hook");
    let mut last = None;
    for attempt in 1..=3 {
        last = Some(
            ch.deliver_webhook(&url, SECRET, &notice(), attempt, NOW)
                .await,
        );
        if attempt < 3 {
            assert_eq!(last, Some(DeliveryOutcome::Retry { at: NOW }));
        }
    }
    match last {
        Some(DeliveryOutcome::DeadLetter { reason }) => {
            assert_eq!(
                reason,
                "gave up after 3 attempts: webhook answered 503 Service Unavailable"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sink.requests().len(), 3);
}

#[tokio::test]
async fn plain_http_needs_the_loopback_switch() {
    let sink = WebhookSink::start().expect("sink");
    let strict = Channels::new(
        None,
        WebhookConfig::default(),
        ChannelConfig {
            public_url: PUBLIC_URL.into(),
            retry: RetryPolicy::default(),
        },
    )
    .expect("channels");
    match strict
        .deliver_webhook(&sink.url("/hook"), SECRET, &notice(), 1, NOW)
        .await
    {
        DeliveryOutcome::DeadLetter { reason } => assert!(reason.contains("https"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(sink.requests().is_empty(), "nothing was sent");
    assert!(strict
        .check_webhook_url("https://discord.com/api/webhooks/1/x")
        .is_ok());
    assert!(strict.check_webhook_url(&sink.url("/hook")).is_err());
}

#[tokio::test]
async fn unreachable_receiver_is_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let ch = channels(RetryPolicy::immediate(2));
    let url = format!("http://127.0.0.1:{port}/hook");
    assert_eq!(
        ch.deliver_webhook(&url, SECRET, &notice(), 1, NOW).await,
        DeliveryOutcome::Retry { at: NOW }
    );
}
