//! The watch storage on both backends (SQLite always; PostgreSQL when
//! `PRICEWATCH_TEST_POSTGRES_URL` is set, required when `CI` is): outbox
//! written only for published changes, firing, re-arming, back in stock,
//! the watcher count, corrections, and (PostgreSQL) several workers
//! processing the same outbox concurrently without a duplicate.

use backend::store::{NewReport, Registered, Storage};
use backend::watch::{NewWatch, WatchSpec};
use sqlx::Connection;
use std::sync::Arc;
use wasm_core::types::{Availability, Condition, Seller};

const ASIN: &str = "B08N5WRWNW";
const T0: i64 = 1_763_800_000_000;
const HOUR: i64 = 3_600_000;

fn report(key_id: i64, n: u16, price: Option<i64>, avail: Availability, t: i64) -> NewReport {
    let mut nonce = [0u8; 16];
    nonce[..2].copy_from_slice(&n.to_be_bytes());
    NewReport {
        key_id,
        nonce,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        price_minor: price,
        currency: "USD".into(),
        availability: avail,
        seller: Seller::Amazon,
        title: "Echo Dot".into(),
        observed_at: t,
        // A verifier's observation, so it may alert at once (the trust
        // decisions for collector keys are tested in `trust_store.rs`).
        trusted: true,
        net_hash: None,
        raw: "{}".into(),
    }
}

fn watch(key_id: i64, target: Option<i64>, back_in_stock: bool) -> NewWatch {
    NewWatch {
        key_id,
        marketplace: "amazon.com".into(),
        asin: ASIN.into(),
        condition: Condition::New,
        spec: WatchSpec {
            target_price_minor: target,
            drop_percent: None,
            back_in_stock,
            extension: true,
            email: None,
            webhook: None,
        },
        webhook_secret: None,
        contact_hashes: None,
    }
}

async fn scenario(store: Arc<dyn Storage>, concurrent_workers: bool) {
    let key = match store.register_key(&[5; 32], T0, None).await.expect("key") {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    };
    let mut n = 0u16;
    let mut t = T0;
    let mut price = |p: Option<i64>, a: Availability, t: i64| {
        n += 1;
        report(key, n, p, a, t)
    };
    store
        .ingest(&[price(Some(5000), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    // Nobody watches the product yet: its first price writes no event.
    assert_eq!(
        store.process_outbox(t, 100).await.expect("outbox").events,
        0
    );
    let w1 = store
        .create_watch(&watch(key, Some(4000), false), t)
        .await
        .expect("w1");
    let w2 = store
        .create_watch(&watch(key, Some(3000), false), t)
        .await
        .expect("w2");
    assert!(w1.armed && w2.armed);
    assert_eq!(w1.current_price_minor, Some(5000));
    let info = store
        .product_summary("amazon.com", ASIN)
        .await
        .expect("summary")
        .expect("p");
    assert_eq!(info.watchers, 2);
    // Same price again: no event.
    t += 1000;
    store
        .ingest(&[price(Some(5000), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    assert_eq!(
        store.process_outbox(t, 100).await.expect("outbox").events,
        0
    );
    // 3500: only w1 fires (range query on the threshold).
    t += 1000;
    store
        .ingest(&[price(Some(3500), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    if concurrent_workers {
        let (a, b, c) = tokio::join!(
            store.process_outbox(t, 100),
            store.process_outbox(t, 100),
            store.process_outbox(t, 100)
        );
        let total: u64 = [a, b, c]
            .into_iter()
            .map(|s| s.expect("outbox").alerts)
            .sum();
        assert_eq!(total, 1, "several workers, one alert");
    } else {
        assert_eq!(
            store.process_outbox(t, 100).await.expect("outbox").alerts,
            1
        );
    }
    let alerts = store.alerts_after(key, 0, 10).await.expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].watch_id, w1.id);
    assert_eq!(alerts[0].old_price_minor, Some(5000));
    assert_eq!(alerts[0].new_price_minor, Some(3500));
    // Above both thresholds: re-armed (w1 only was disarmed).
    t += HOUR;
    store
        .ingest(&[price(Some(4500), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    let st = store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!((st.alerts, st.rearmed), (0, 1));
    // 2900 after the cooldown: both fire.
    t += HOUR;
    store
        .ingest(&[price(Some(2900), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    assert_eq!(
        store.process_outbox(t, 100).await.expect("outbox").alerts,
        2
    );
    // Back in stock.
    let w3 = store
        .create_watch(&watch(key, None, true), t)
        .await
        .expect("w3");
    t += HOUR;
    store
        .ingest(&[price(None, Availability::OutOfStock, t)], t)
        .await
        .expect("ingest");
    assert_eq!(
        store.process_outbox(t, 100).await.expect("outbox").alerts,
        0
    );
    t += HOUR;
    store
        .ingest(&[price(Some(6000), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    let st = store.process_outbox(t, 100).await.expect("outbox");
    assert_eq!(st.alerts, 1);
    let all = store.alerts_after(key, 0, 100).await.expect("alerts");
    assert_eq!(all.last().map(|a| a.watch_id), Some(w3.id));
    // A watch made while changes wait in the outbox: it starts disarmed
    // (the published 3000 meets its 4000), is re-armed by the 7000 still
    // waiting before that, and fires at 3000 together with w1 and w2
    // (re-armed at 6000). (PostgreSQL re-arms only above its series' re-arm floor,
    // which the disarmed watch lowers to 4000.)
    t += HOUR;
    store
        .ingest(&[price(Some(7000), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    t += 1000;
    store
        .ingest(&[price(Some(3000), Availability::InStock, t)], t)
        .await
        .expect("ingest");
    let w4 = store
        .create_watch(&watch(key, Some(4000), false), t)
        .await
        .expect("w4");
    assert!(!w4.armed);
    let (mut events, mut fired) = (0, 0);
    for _ in 0..2 {
        let st = store.process_outbox(t, 100).await.expect("outbox");
        events += st.events;
        fired += st.alerts;
    }
    assert_eq!((events, fired), (2, 3));
    let all = store.alerts_after(key, 0, 100).await.expect("alerts");
    let mut last: Vec<i64> = all.iter().rev().take(3).map(|a| a.watch_id).collect();
    last.sort_unstable();
    assert_eq!(last, vec![w1.id, w2.id, w4.id]);
    assert!(all
        .iter()
        .rev()
        .take(3)
        .all(|a| a.old_price_minor == Some(7000) && a.new_price_minor == Some(3000)));
    // Correction of 2900: the two alerts it fired.
    let ids = store
        .correct_published_price(info.id, Condition::New, 2900, Some(4400), T0, t)
        .await
        .expect("correct");
    assert_eq!(ids.len(), 2);
    assert!(store
        .correct_published_price(info.id, Condition::New, 2900, Some(4400), T0, t)
        .await
        .expect("again")
        .is_empty());
    // Delete, erase.
    assert!(store.delete_watch(key, w2.id).await.expect("delete"));
    assert!(!store.delete_watch(key + 1, w1.id).await.expect("other key"));
    assert_eq!(store.key_activity(key).await.expect("me").watches, 3);
    store.erase_key(key, t).await.expect("erase");
    assert!(store.list_watches(key).await.expect("list").is_empty());
    let info = store
        .product_summary("amazon.com", ASIN)
        .await
        .expect("summary")
        .expect("p");
    assert_eq!(info.watchers, 0);
    store.close().await;
}

#[tokio::test]
async fn watch_storage_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/w.db", dir.path().display());
    scenario(backend::store::connect(&url).await.expect("open"), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_storage_postgres() {
    const ENV: &str = "PRICEWATCH_TEST_POSTGRES_URL";
    let server = match std::env::var(ENV) {
        Ok(u) if !u.trim().is_empty() => u.trim().to_string(),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{ENV} must be set in CI (export {ENV}=$(scripts/postgres-start))"
            );
            eprintln!("skipping: {ENV} is not set");
            return;
        }
    };
    let name = format!(
        "pricewatch_watch_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("admin");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create db");
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (server.clone(), String::new()),
    };
    let cut = base.rfind('/').expect("url has a path");
    let url = format!("{}/{name}{query}", &base[..cut]);
    let store = backend::store::connect(&url).await.expect("open");
    confirmation_backoff(store.clone()).await;
    scenario(store, true).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop db");
}

/// The confirmation mail of a new address goes through the channels'
/// `RetryPolicy`: the SMTP relay refuses connections (a transient failure),
/// so attempt 1 is followed by attempt 2 only once the backoff (60 s here,
/// no jitter) has passed, not on the next worker round; after the last
/// attempt (3) the address is given up and never tried again.
async fn confirmation_backoff(store: Arc<dyn Storage>) {
    use backend::notify::{
        ChannelConfig, Channels, DigestConfig, RetryPolicy, SmtpConfig, SmtpUrl, WebhookConfig,
    };
    use backend::watch::worker::Notifier;
    use std::sync::atomic::{AtomicI64, Ordering};

    const OTHER_ASIN: &str = "B07XJ8C8F5";
    let key = match store.register_key(&[6; 32], T0, None).await.expect("key") {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    };
    let mut r = report(key, 900, Some(5000), Availability::InStock, T0);
    r.asin = OTHER_ASIN.into();
    store.ingest(&[r], T0).await.expect("ingest");
    store.process_outbox(T0, 100).await.expect("outbox");
    let mut w = watch(key, Some(4000), false);
    w.asin = OTHER_ASIN.into();
    w.spec.email = Some("retry@example.com".into());
    w.contact_hashes = Some(("confirm-hash-r".into(), "unsub-hash-r".into()));
    store.create_watch(&w, T0).await.expect("watch");

    let now = Arc::new(AtomicI64::new(T0));
    let clock_now = now.clone();
    let clock: backend::http::Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
    let smtp = SmtpConfig::new(
        SmtpUrl::parse("smtp://127.0.0.1:1?tls=none").expect("url"),
        "pricewatch <alerts@example.com>",
    );
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay_ms: 60_000,
        max_delay_ms: 3_600_000,
        jitter_percent: 0,
        max_retry_after_ms: 0,
    };
    let channels = Channels::new(
        Some(smtp),
        WebhookConfig::default(),
        ChannelConfig {
            public_url: "http://127.0.0.1".into(),
            retry,
        },
    )
    .expect("channels");
    let mut notifier = Notifier::new(
        store.clone(),
        Some(Arc::new(channels)),
        DigestConfig::default(),
        clock,
    )
    .await
    .expect("notifier");
    let pending = |store: Arc<dyn Storage>, t: i64| async move {
        store
            .pending_contacts(t, 100)
            .await
            .expect("pending")
            .into_iter()
            .filter(|c| c.email == "retry@example.com")
            .map(|c| c.attempts)
            .collect::<Vec<_>>()
    };
    assert_eq!(pending(store.clone(), T0).await, vec![0]);

    // Attempt 1 fails; the next is due 60 s later, so a round 0.5 s later
    // (the worker's idle poll) tries nothing.
    notifier.round().await.expect("round");
    assert_eq!(pending(store.clone(), T0).await, Vec::<i64>::new());
    assert_eq!(pending(store.clone(), T0 + 59_999).await, Vec::<i64>::new());
    assert_eq!(pending(store.clone(), T0 + 60_000).await, vec![1]);
    now.store(T0 + 500, Ordering::SeqCst);
    notifier.round().await.expect("round");
    assert_eq!(pending(store.clone(), T0 + 60_000).await, vec![1]);

    // Attempt 2 at +60 s fails; attempt 3 is due 120 s after it.
    now.store(T0 + 60_000, Ordering::SeqCst);
    notifier.round().await.expect("round");
    assert_eq!(
        pending(store.clone(), T0 + 179_999).await,
        Vec::<i64>::new()
    );
    assert_eq!(pending(store.clone(), T0 + 180_000).await, vec![2]);

    // Attempt 3 is the last: the address is given up.
    now.store(T0 + 180_000, Ordering::SeqCst);
    notifier.round().await.expect("round");
    assert_eq!(pending(store.clone(), i64::MAX).await, Vec::<i64>::new());
}

#[tokio::test]
async fn confirmation_mail_backoff_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/c.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    confirmation_backoff(store.clone()).await;
    store.close().await;
}
