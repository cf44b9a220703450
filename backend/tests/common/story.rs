//! The storage story: one scenario over the [`Storage`] trait that every
//! implementation must pass (SQLite in `store_sqlite.rs`; the PostgreSQL
//! test calls the same `story`).

use backend::store::{
    IngestOutcome, NewReport, OfferStatus, Registered, Run, Storage, PUBLISH_MAX_AGE_MS,
};
use wasm_core::types::{Availability, Condition, Seller};

/// A fixed "now" so the story is repeatable.
pub const NOW: i64 = 1_763_800_000_000;
const MIN: i64 = 60_000;

/// A report template; tests change what they need.
pub fn report(key_id: i64, nonce: u8, t: i64, price: Option<i64>) -> NewReport {
    NewReport {
        key_id,
        nonce: [nonce; 16],
        marketplace: "amazon.de".into(),
        asin: "B000STORY1".into(),
        condition: Condition::New,
        price_minor: price,
        currency: "EUR".into(),
        availability: Availability::InStock,
        seller: Seller::Amazon,
        title: "Stabmixer Deluxe 800 Watt".into(),
        observed_at: t,
        // A verifier's observation: the story is about storage (publishing,
        // runs, replays), and since the trust issue only verified (or
        // otherwise believed) reports move the published price at once.
        // The trust decisions are tested in `trust_store.rs`.
        trusted: true,
        net_hash: Some([7; 16]),
        raw: format!("{{\"nonce\":{nonce}}}"),
    }
}

fn simple(runs: &[Run]) -> Vec<(i64, i64, Option<i64>, i64)> {
    runs.iter()
        .map(|r| (r.first_seen, r.last_seen, r.price_minor, r.n))
        .collect()
}

async fn runs(store: &dyn Storage, product: i64) -> Vec<(i64, i64, Option<i64>, i64)> {
    simple(
        &store
            .history_runs(product, Condition::New, 0, i64::MAX)
            .await
            .expect("history"),
    )
}

/// The story. Panics (test failure) on the first broken promise.
pub async fn story(store: &dyn Storage) {
    store.ping().await.expect("ping");
    let secret = store.install_secret().await.expect("secret");
    assert_eq!(store.install_secret().await.expect("secret again"), secret);

    // Keys.
    let pk = [1u8; 32];
    let key = match store
        .register_key(&pk, NOW - 60 * MIN, Some([9; 16]))
        .await
        .expect("register")
    {
        Registered::Created(k) => k,
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!(key.public_key, pk);
    assert!(key.erased_at.is_none() && !key.blocked);
    match store
        .register_key(&pk, NOW, None)
        .await
        .expect("register again")
    {
        Registered::Existing(k) => assert_eq!(k.id, key.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    let other = match store
        .register_key(&[2u8; 32], NOW, None)
        .await
        .expect("register 2")
    {
        Registered::Created(k) => k,
        other => panic!("expected Created, got {other:?}"),
    };
    let found = store
        .keys_by_public(&[pk, [3u8; 32], pk])
        .await
        .expect("lookup");
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].as_ref().map(|k| k.id), Some(key.id));
    assert!(found[1].is_none());
    assert_eq!(found[2].as_ref().map(|k| k.id), Some(key.id));

    // Unknown product.
    assert!(store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .is_none());

    // First report publishes; a replay in the same batch is a duplicate.
    let t0 = NOW - 5 * MIN;
    let out = store
        .ingest(
            &[
                report(key.id, 1, t0, Some(4999)),
                report(key.id, 1, t0, Some(1)),
            ],
            NOW,
        )
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted, IngestOutcome::Duplicate]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(s.title, "Stabmixer Deluxe 800 Watt");
    assert_eq!(s.currency, "EUR");
    assert_eq!(s.offers.len(), 1);
    let o = &s.offers[0];
    assert_eq!(o.condition, Condition::New);
    assert_eq!(o.offer.price_minor, Some(4999));
    assert_eq!(o.offer.status, OfferStatus::Verified);
    assert_eq!(o.offer.observed_at, t0);
    assert_eq!(o.reporters, 1);
    assert_eq!(o.lowest, Some((4999, t0)));
    let product = s.id;
    assert_eq!(runs(store, product).await, vec![(t0, t0, Some(4999), 1)]);
    let info = store
        .product_info("amazon.de", "B000STORY1")
        .await
        .expect("info")
        .expect("known");
    assert_eq!(
        (info.id, info.currency.as_str(), info.title.as_str()),
        (product, "EUR", "Stabmixer Deluxe 800 Watt")
    );
    assert!(store
        .product_info("amazon.de", "B000NOPE00")
        .await
        .expect("info")
        .is_none());

    // A replay in a later batch is a duplicate too, and changes nothing.
    let out = store
        .ingest(&[report(key.id, 1, t0 + MIN, Some(10))], NOW)
        .await
        .expect("replay");
    assert_eq!(out, vec![IngestOutcome::Duplicate]);
    assert_eq!(runs(store, product).await, vec![(t0, t0, Some(4999), 1)]);

    // Same price again, by another key: the run grows, no new row.
    let t1 = NOW - 4 * MIN;
    let out = store
        .ingest(&[report(other.id, 2, t1, Some(4999))], NOW)
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    assert_eq!(runs(store, product).await, vec![(t0, t1, Some(4999), 2)]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(s.offers[0].reporters, 2);

    // A price drop: new run, published.
    let t2 = NOW - 3 * MIN;
    let t3 = NOW - 2 * MIN;
    let out = store
        .ingest(
            &[
                report(key.id, 3, t2, Some(3999)),
                report(key.id, 4, t3, Some(3999)),
            ],
            NOW,
        )
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted, IngestOutcome::Accepted]);
    assert_eq!(
        runs(store, product).await,
        vec![(t0, t1, Some(4999), 2), (t2, t3, Some(3999), 2)]
    );
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    let o = &s.offers[0];
    assert_eq!(o.offer.price_minor, Some(3999));
    assert_eq!(o.lowest, Some((3999, t3)));
    assert_eq!(o.highest, Some((4999, t1)));
    assert_eq!(o.reporters, 1);

    // A late observation (older than 10 minutes) is history only and
    // lands before the first run.
    let old = NOW - PUBLISH_MAX_AGE_MS - 60 * MIN;
    let out = store
        .ingest(&[report(other.id, 5, old, Some(5999))], NOW)
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Stored]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(s.offers[0].offer.price_minor, Some(3999));
    assert_eq!(s.offers[0].highest, Some((5999, old)));
    assert_eq!(
        runs(store, product).await,
        vec![
            (old, old, Some(5999), 1),
            (t0, t1, Some(4999), 2),
            (t2, t3, Some(3999), 2)
        ]
    );

    // A fresh-enough observation that is older than the published one and
    // disagrees: stored, and it splits the run it falls into.
    let mid = t2 + 30_000;
    let out = store
        .ingest(&[report(other.id, 6, mid, Some(4500))], NOW)
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Stored]);
    assert_eq!(
        runs(store, product).await,
        vec![
            (old, old, Some(5999), 1),
            (t0, t1, Some(4999), 2),
            (t2, t2, Some(3999), 1),
            (mid, mid, Some(4500), 1),
            (t3, t3, Some(3999), 1),
        ]
    );
    // An older observation from a collector that agrees with the published
    // value is fine (rule 1; a verifier's older observation would be
    // history only).
    let mut agreeing = report(other.id, 7, t3 - 1, Some(3999));
    agreeing.trusted = false;
    let out = store.ingest(&[agreeing], NOW).await.expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    assert_eq!(runs(store, product).await[4], (t3 - 1, t3, Some(3999), 2));

    // A gap filled with the neighbours' value merges the runs around it.
    let out = store
        .ingest(&[report(other.id, 8, old + MIN, Some(5999))], NOW)
        .await
        .expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Stored]);
    assert_eq!(
        runs(store, product).await[0],
        (old, old + MIN, Some(5999), 2)
    );

    // History range: the run before `from` comes along as the baseline.
    let ranged = store
        .history_runs(product, Condition::New, t2 + 1, NOW)
        .await
        .expect("range");
    assert_eq!(
        simple(&ranged),
        vec![
            (t2, t2, Some(3999), 1),
            (mid, mid, Some(4500), 1),
            (t3 - 1, t3, Some(3999), 2)
        ]
    );
    assert!(store
        .history_runs(product, Condition::Used, 0, NOW)
        .await
        .expect("used")
        .is_empty());
    // The history endpoint's one-call form gives the same product and runs.
    let info = store
        .product_info("amazon.de", "B000STORY1")
        .await
        .expect("info")
        .expect("known");
    for (cond, from) in [
        (Condition::New, t2 + 1),
        (Condition::New, 0),
        (Condition::Used, 0),
    ] {
        let (got_info, got_runs) = store
            .product_history("amazon.de", "B000STORY1", cond, from, NOW)
            .await
            .expect("product history")
            .expect("known");
        assert_eq!(got_info, info);
        let want = store
            .history_runs(product, cond, from, NOW)
            .await
            .expect("runs");
        assert_eq!(got_runs, want, "{cond:?} from {from}");
    }
    assert!(store
        .product_history("amazon.de", "B000NOSUCH", Condition::New, 0, NOW)
        .await
        .expect("unknown product")
        .is_none());

    // A trusted verifier's observation publishes as verified.
    let mut verified = report(other.id, 9, NOW - MIN, Some(3899));
    assert!(verified.trusted);
    verified.availability = Availability::OutOfStock;
    let out = store.ingest(&[verified], NOW).await.expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    let o = &s.offers[0];
    assert_eq!(o.offer.status, OfferStatus::Verified);
    assert_eq!(o.offer.last_verified_at, Some(NOW - MIN));
    assert_eq!(o.offer.availability, Availability::OutOfStock);

    // No price offered is a value of its own; a used offer is its own series.
    let mut none = report(key.id, 10, NOW, None);
    none.condition = Condition::Used;
    none.seller = Seller::ThirdParty;
    let out = store.ingest(&[none], NOW).await.expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(s.offers.len(), 2);
    assert_eq!(s.offers[1].condition, Condition::Used);
    assert_eq!(s.offers[1].offer.price_minor, None);
    assert_eq!(s.offers[1].lowest, None);

    // A currency that does not match the product leaves no trace.
    let mut usd = report(key.id, 11, NOW, Some(1));
    usd.currency = "USD".into();
    let out = store.ingest(&[usd], NOW).await.expect("ingest");
    assert_eq!(out, vec![IngestOutcome::CurrencyMismatch]);
    let s = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("known");
    assert_eq!(s.offers[0].offer.price_minor, Some(3899));

    // Search: words, prefix, ASIN, marketplace filter, paging.
    let mut second = report(key.id, 12, NOW, Some(2500));
    second.asin = "B000STORY2".into();
    second.title = "Stabmixer Mini".into();
    let mut uk = report(key.id, 13, NOW, Some(2000));
    uk.marketplace = "amazon.co.uk".into();
    uk.currency = "GBP".into();
    uk.title = "Hand blender".into();
    let out = store.ingest(&[second, uk], NOW).await.expect("ingest");
    assert_eq!(out, vec![IngestOutcome::Accepted, IngestOutcome::Accepted]);
    let (list, total) = store
        .search("stabmixer", None, 10, 0)
        .await
        .expect("search");
    assert_eq!(total, 2);
    assert_eq!(list.len(), 2);
    let (list, total) = store
        .search("stabmix delu", None, 10, 0)
        .await
        .expect("prefix");
    assert_eq!(total, 1);
    assert_eq!(list[0].asin, "B000STORY1");
    let (list, total) = store.search("stabmixer", None, 1, 1).await.expect("page");
    assert_eq!((list.len(), total), (1, 2));
    let (list, total) = store.search("B000STORY1", None, 10, 0).await.expect("asin");
    assert_eq!((list.len(), total), (2, 2), "one per marketplace");
    let (list, _) = store
        .search("B000STORY1", Some("amazon.co.uk"), 10, 0)
        .await
        .expect("asin uk");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].marketplace, "amazon.co.uk");
    let (_, total) = store
        .search("\"; DROP TABLE products; --", None, 10, 0)
        .await
        .expect("hostile");
    assert_eq!(total, 0);
    assert!(store
        .search("", None, 10, 0)
        .await
        .expect("empty")
        .0
        .is_empty());

    // Request nonces.
    assert!(store
        .claim_request_nonce(key.id, &[5; 16], NOW + 5 * MIN)
        .await
        .expect("claim"));
    assert!(!store
        .claim_request_nonce(key.id, &[5; 16], NOW + 5 * MIN)
        .await
        .expect("replay"));
    assert!(store
        .claim_request_nonce(other.id, &[5; 16], NOW + 5 * MIN)
        .await
        .expect("other key"));

    // Sizes.
    let stats = store.storage_stats().await.expect("stats");
    assert_eq!(stats.observations, 12);
    assert!(stats.history_rows >= 8);
    assert!(stats.history_bytes > 0 && stats.audit_bytes > 0);

    // Erasure: reports lose the key, the key becomes a tombstone, and a
    // re-registration starts afresh.
    let before = store.key_activity(key.id).await.expect("activity");
    assert_eq!(before.reports, 6);
    store.erase_key(key.id, NOW).await.expect("erase");
    assert_eq!(
        store.key_activity(key.id).await.expect("activity").reports,
        0
    );
    let tomb = store.keys_by_public(&[pk]).await.expect("lookup");
    assert_eq!(tomb[0].as_ref().and_then(|k| k.erased_at), Some(NOW));
    match store
        .register_key(&pk, NOW + 1, None)
        .await
        .expect("re-register")
    {
        Registered::Created(k) => {
            assert_eq!(k.id, key.id);
            assert_eq!(k.registered_at, NOW + 1);
        }
        other => panic!("expected Created, got {other:?}"),
    }
    assert!(matches!(
        store.register_key(&pk, NOW + 2, None).await.expect("again"),
        Registered::Existing(_)
    ));
    assert!(store.erase_key(999_999, NOW).await.is_err());

    // Purge: audit rows and expired request nonces go; history stays.
    let purged = store.purge(NOW + 1, NOW + 10 * MIN).await.expect("purge");
    assert_eq!(purged.reports, 12);
    assert_eq!(
        purged.request_nonces, 1,
        "the erased key's nonce was already deleted"
    );
    let after = store.storage_stats().await.expect("stats");
    assert_eq!(after.observations, 12);
    let again = store
        .purge(NOW + 1, NOW + 10 * MIN)
        .await
        .expect("purge again");
    assert_eq!(again, backend::store::PurgeStats::default());
}
