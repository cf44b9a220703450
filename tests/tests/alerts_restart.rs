//! Killing the notifier between the price change and the delivery loses no
//! alert and duplicates none: the store is closed and reopened (a new
//! process on the same SQLite file) after the change committed, again
//! after the alert was recorded but before it was delivered, and a failed
//! delivery is retried by the new worker.

use backend::notify::{ChannelConfig, Channels, RetryPolicy, WebhookConfig};
use backend::store::{NewReport, Registered};
use backend::watch::worker::Notifier;
use backend::watch::{DeliveryState, NewWatch, WatchSpec};
use std::sync::Arc;
use tests::webhook_sink::WebhookSink;
use wasm_core::types::{Availability, Condition, Seller};

const ASIN: &str = "B08N5WRWNW";
const T0: i64 = 1_763_800_000_000;

fn report(key_id: i64, n: u8, price: i64, t: i64) -> NewReport {
    NewReport {
        key_id,
        nonce: [n; 16],
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        price_minor: Some(price),
        currency: "USD".into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: "Echo Dot".into(),
        observed_at: t,
        // A verifier's observation: ground truth, published and alerting at
        // once (a collector's would be held for a crawl under the trust
        // rules, which are not what this test is about).
        trusted: true,
        net_hash: None,
        raw: "{}".into(),
    }
}

fn clock(t: i64) -> backend::http::Clock {
    Arc::new(move || t)
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_lose_no_alert_and_duplicate_none() {
    let hooks = WebhookSink::start().expect("webhook sink");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/restart.db", dir.path().display());

    // Process 1: a watch, then the price change commits; it dies before
    // any worker ran.
    let store = backend::store::connect(&url).await.expect("open");
    let key = match store.register_key(&[3; 32], T0, None).await.expect("key") {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    };
    store
        .ingest(&[report(key, 1, 5000, T0)], T0)
        .await
        .expect("ingest");
    let nw = NewWatch {
        key_id: key,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        spec: WatchSpec {
            target_price_minor: Some(4000),
            drop_percent: None,
            back_in_stock: false,
            extension: true,
            email: None,
            webhook: Some(hooks.url("/h")),
        },
        webhook_secret: Some("s3cret".into()),
        contact_hashes: None,
    };
    store.create_watch(&nw, T0).await.expect("watch");
    store
        .ingest(&[report(key, 2, 3000, T0 + 10)], T0 + 10)
        .await
        .expect("ingest");
    store.close().await;
    drop(store);

    // Process 2: the worker records the alert and dies before delivering.
    let store = backend::store::connect(&url).await.expect("reopen");
    let mut worker = Notifier::new(store.clone(), None, Default::default(), clock(T0 + 20))
        .await
        .expect("worker");
    worker.round().await.expect("round");
    let alerts = store.alerts_after(key, 0, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].webhook_state, DeliveryState::Pending);
    drop(worker);
    store.close().await;
    drop(store);

    // Process 3: a worker with channels; the receiver fails once.
    let store = backend::store::connect(&url).await.expect("reopen");
    let channels = Channels::new(
        None,
        WebhookConfig {
            allow_loopback_http: true,
            ..WebhookConfig::default()
        },
        ChannelConfig {
            public_url: "http://127.0.0.1:1".into(),
            retry: RetryPolicy::immediate(5),
        },
    )
    .expect("channels");
    hooks.respond(500, &[], 1);
    let mut worker = Notifier::new(
        store.clone(),
        Some(Arc::new(channels)),
        Default::default(),
        clock(T0 + 30),
    )
    .await
    .expect("worker");
    worker.round().await.expect("round 1");
    let a = store.alerts_after(key, 0, 10).await.expect("alerts");
    assert_eq!(a[0].webhook_state, DeliveryState::Pending, "retry pending");
    assert_eq!(a[0].webhook_attempts, 1);
    worker.round().await.expect("round 2");
    worker.round().await.expect("round 3");
    let a = store.alerts_after(key, 0, 10).await.expect("alerts");
    assert_eq!(a.len(), 1, "one alert, whatever the restarts");
    assert_eq!(a[0].webhook_state, DeliveryState::Delivered);
    assert_eq!(a[0].webhook_attempts, 2);
    let reqs = hooks.requests();
    assert_eq!(reqs.len(), 2, "one failed attempt, one delivery");
    assert_eq!(reqs[0].body, reqs[1].body, "the same alert twice");
    let sig = reqs[1].header("x-pricewatch-signature").expect("sig");
    assert_eq!(
        backend::notify::webhook::verify_signature(b"s3cret", sig, &reqs[1].body, T0 + 30, 300_000),
        Ok(())
    );
    store.close().await;
}
