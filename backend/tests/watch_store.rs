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
        trusted: false,
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
    assert_eq!(
        store.process_outbox(t, 100).await.expect("outbox").events,
        1
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
    assert_eq!(store.key_activity(key).await.expect("me").watches, 2);
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
    scenario(store, true).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop db");
}
