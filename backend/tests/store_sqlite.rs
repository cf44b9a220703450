//! The storage story on SQLite.

mod common {
    pub mod story;
}

#[tokio::test]
async fn sqlite_story() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/sub/dir/story.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    common::story::story(store.as_ref()).await;
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store refuses work");
    assert!(store.ingest(&[], 0).await.is_err());
    // Reopening runs the migrations again without harm and keeps the data.
    let reopened = backend::store::connect(&url).await.expect("reopen");
    let stats = reopened.storage_stats().await.expect("stats");
    assert_eq!(stats.observations, 12);
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    for url in ["mysql://x", "sqlite://", "sqlite::memory:"] {
        match backend::store::connect(url).await {
            Err(backend::store::StoreError::Config(_)) => {}
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}

/// Group commit: concurrent batches share writer transactions, yet each
/// gets exactly the outcomes it would get alone (a nonce repeated in two
/// batches is stored once, whichever batch comes first), and all of them
/// are stored.
#[tokio::test]
async fn concurrent_batches_are_applied_as_if_alone() {
    use backend::store::{IngestOutcome, Registered};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/group.db", dir.path().display());
    let store: Arc<dyn backend::store::Storage> =
        backend::store::connect(&url).await.expect("open");
    let key = match store.register_key(&[3; 32], 0, None).await.expect("key") {
        Registered::Created(k) | Registered::Existing(k) => k.id,
    };
    let now = common::story::NOW;
    let mut tasks = Vec::new();
    for b in 0..24u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..10u8)
                .map(|i| {
                    let mut r = common::story::report(key, 0, now - 1000 + i64::from(i), Some(999));
                    // Batch 23 repeats batch 0's first nonce.
                    let id = if b == 23 && i == 0 {
                        0
                    } else {
                        u16::from(b) * 10 + u16::from(i)
                    };
                    r.nonce = [0; 16];
                    r.nonce[..2].copy_from_slice(&id.to_be_bytes());
                    r
                })
                .collect();
            store.ingest(&batch, now).await.expect("ingest")
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        let out = t.await.expect("task");
        assert_eq!(out.len(), 10);
        outcomes.extend(out);
    }
    let dups = outcomes
        .iter()
        .filter(|o| **o == IngestOutcome::Duplicate)
        .count();
    assert_eq!(dups, 1);
    let stats = store.storage_stats().await.expect("stats");
    assert_eq!(stats.observations, 239);
    store.close().await;
}

/// The history endpoint's SQLite read (`product_history_with_corrections`:
/// one statement for the product and its runs, corrections read only when
/// some fall in the range) equals the separate calls (`product_history`,
/// `history_runs`, `corrections`) and the naive runs.
#[tokio::test]
async fn history_read_in_one_statement_equals_the_separate_calls() {
    use backend::store::{NewReport, Registered};
    use wasm_core::types::Condition;
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.db");
    let store = backend::store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    let now = common::story::NOW;
    let key = match store
        .register_key(&[7u8; 32], now - 60_000, None)
        .await
        .expect("register")
    {
        Registered::Created(k) => k.id,
        other => panic!("expected Created, got {other:?}"),
    };
    // Every 6 hours for three weeks, 1000 and 900 taking turns every 3 days.
    let start = now - 40 * 24 * HOUR;
    let obs: Vec<(i64, i64)> = (0..84)
        .map(|i| {
            (
                start + i * 6 * HOUR,
                if (i / 12) % 2 == 0 { 1000 } else { 900 },
            )
        })
        .collect();
    let reports: Vec<NewReport> = obs
        .iter()
        .enumerate()
        .map(|(i, &(t, p))| {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&(i as u32 + 1).to_be_bytes());
            NewReport {
                key_id: key,
                nonce,
                marketplace: "amazon.de".into(),
                asin: "B00HISTRD1".into(),
                condition: Condition::New,
                price_minor: Some(p),
                currency: "EUR".into(),
                availability: wasm_core::types::Availability::InStock,
                seller: wasm_core::types::Seller::Amazon,
                title: "Produkt".into(),
                observed_at: t,
                // A verifier's observation: published at once (storage test).
                trusted: true,
                net_hash: None,
                raw: format!("{{\"n\":{i}}}"),
            }
        })
        .collect();
    store.ingest(&reports, now).await.expect("ingest");
    let info = store
        .product_info("amazon.de", "B00HISTRD1")
        .await
        .expect("info")
        .expect("known");
    let (from, to) = (start + 5 * 24 * HOUR + HOUR, start + 19 * 24 * HOUR);
    let read = |cond| {
        let store = &store;
        async move {
            store
                .product_history_with_corrections("amazon.de", "B00HISTRD1", cond, from, to)
                .await
                .expect("read")
                .expect("known")
        }
    };
    // No corrections yet.
    let plain = read(Condition::New).await;
    assert_eq!(plain.info, info);
    assert!(plain.corrections.is_empty());
    // The naive runs: the baseline (last run starting before `from`), then
    // every run starting in [from, to].
    let mut naive: Vec<(i64, i64, Option<i64>, i64)> = Vec::new();
    for &(t, p) in &obs {
        match naive.last_mut() {
            Some(last) if last.2 == Some(p) => {
                last.1 = t;
                last.3 += 1;
            }
            _ => naive.push((t, t, Some(p), 1)),
        }
    }
    let base = naive.iter().rposition(|r| r.0 < from).expect("a baseline");
    let want: Vec<_> = naive[base..]
        .iter()
        .copied()
        .filter(|r| r.0 <= to)
        .collect();
    let got: Vec<_> = plain
        .runs
        .iter()
        .map(|r| (r.first_seen, r.last_seen, r.price_minor, r.n))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 6, "{got:?}");
    let runs = store
        .history_runs(info.id, Condition::New, from, to)
        .await
        .expect("runs");
    assert_eq!(plain.runs, runs);
    // Corrections before, in and after the range.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("second connection");
    for (at, rep, ver) in [
        (from - 1, Some(1), Some(2)),
        (from + 10 * HOUR, Some(800), Some(1000)),
        (from + 2 * HOUR, Some(700), Some(900)),
        (to + 1, Some(3), Some(4)),
    ] {
        sqlx::query(
            "INSERT INTO corrections (product_id, condition, at, reported_price_minor, \
             verified_price_minor) VALUES (?1, 0, ?2, ?3, ?4)",
        )
        .bind(info.id)
        .bind(at)
        .bind(rep)
        .bind(ver)
        .execute(&pool)
        .await
        .expect("insert correction");
    }
    let corrected = read(Condition::New).await;
    assert_eq!(corrected.runs, runs);
    let separate = store
        .corrections(info.id, Condition::New, from, to)
        .await
        .expect("corrections");
    assert_eq!(corrected.corrections, separate);
    let got: Vec<_> = corrected
        .corrections
        .iter()
        .map(|c| (c.at, c.reported_price_minor, c.verified_price_minor))
        .collect();
    assert_eq!(
        got,
        vec![
            (from + 2 * HOUR, Some(700), Some(900)),
            (from + 10 * HOUR, Some(800), Some(1000)),
        ]
    );
    // Another condition: the product, no runs, no corrections; unknown
    // product: none.
    let used = read(Condition::Used).await;
    assert_eq!((used.runs.len(), used.corrections.len()), (0, 0));
    assert!(store
        .product_history_with_corrections("amazon.de", "B00NOSUCH1", Condition::New, from, to)
        .await
        .expect("read")
        .is_none());
}

/// Write-behind of "seen again" refreshes (`store/sqlite/deferred.rs`):
/// while more ingest is announced (`Storage::ingest_coming`), the run and
/// offer refreshes of reports that agree with the published price wait in
/// the writer; the group that finds no more ingest coming writes them, so
/// does any other use of the writer before its own work, and so does
/// `close`. The reports themselves are stored at once.
#[tokio::test]
async fn seen_again_refreshes_wait_only_while_more_ingest_is_coming() {
    use backend::store::{IngestOutcome, Registered, Storage};
    use common::story::{report, NOW};
    use wasm_core::types::Condition;
    const MIN: i64 = 60_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/defer.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    let mut keys = Vec::new();
    for pk in [[1u8; 32], [2u8; 32]] {
        match store
            .register_key(&pk, NOW - 60 * MIN, None)
            .await
            .expect("key")
        {
            Registered::Created(k) => keys.push(k.id),
            other => panic!("expected Created, got {other:?}"),
        }
    }
    let (verifier, collector) = (keys[0], keys[1]);
    let t0 = NOW - 10 * MIN;
    let out = store
        .ingest(&[report(verifier, 1, t0, Some(999))], NOW)
        .await
        .expect("verified price");
    assert_eq!(out, vec![IngestOutcome::Accepted]);
    let product = store
        .product_summary("amazon.de", "B000STORY1")
        .await
        .expect("summary")
        .expect("product")
        .id;
    // (first_seen, last_seen, n) of the runs, and the offer's observed_at.
    async fn state(store: &dyn Storage, product: i64) -> (Vec<(i64, i64, i64)>, i64) {
        let runs = store
            .history_runs(product, Condition::New, 0, i64::MAX)
            .await
            .expect("runs")
            .iter()
            .map(|r| (r.first_seen, r.last_seen, r.n))
            .collect();
        let summary = store
            .product_summary("amazon.de", "B000STORY1")
            .await
            .expect("summary")
            .expect("product");
        (runs, summary.offers[0].offer.observed_at)
    }
    let agreeing = |nonce: u8, t: i64| {
        let mut r = report(collector, nonce, t, Some(999));
        r.trusted = false;
        r
    };
    let ingest = |nonce: u8, t: i64| {
        let store = &store;
        async move {
            let out = store
                .ingest(&[agreeing(nonce, t)], NOW)
                .await
                .expect("ingest");
            assert_eq!(out, vec![IngestOutcome::Accepted]);
        }
    };
    assert_eq!(
        state(store.as_ref(), product).await,
        (vec![(t0, t0, 1)], t0)
    );

    // This batch and one more announced: the refreshes wait.
    let own = store.ingest_coming();
    let other = store.ingest_coming();
    ingest(2, NOW - 9 * MIN).await;
    ingest(3, NOW - 8 * MIN).await;
    assert_eq!(
        state(store.as_ref(), product).await,
        (vec![(t0, t0, 1)], t0)
    );
    assert_eq!(
        store
            .key_activity(collector)
            .await
            .expect("activity")
            .reports,
        2,
        "the reports are stored at once"
    );
    // Another use of the writer writes them before its own work.
    assert!(store
        .claim_request_nonce(collector, &[9; 16], NOW + MIN)
        .await
        .expect("nonce"));
    let seen = NOW - 8 * MIN;
    assert_eq!(
        state(store.as_ref(), product).await,
        (vec![(t0, seen, 3)], seen)
    );

    // Waiting again; the batch that finds no more coming writes them all.
    ingest(4, NOW - 7 * MIN).await;
    assert_eq!(
        state(store.as_ref(), product).await,
        (vec![(t0, seen, 3)], seen)
    );
    drop(other);
    ingest(5, NOW - 6 * MIN).await;
    let seen = NOW - 6 * MIN;
    assert_eq!(
        state(store.as_ref(), product).await,
        (vec![(t0, seen, 5)], seen)
    );

    // Waiting at close: written by it.
    let other = store.ingest_coming();
    ingest(6, NOW - 5 * MIN).await;
    assert_eq!(state(store.as_ref(), product).await.0, vec![(t0, seen, 5)]);
    store.close().await;
    drop((own, other));
    let reopened = backend::store::connect(&url).await.expect("reopen");
    let seen = NOW - 5 * MIN;
    assert_eq!(
        state(reopened.as_ref(), product).await,
        (vec![(t0, seen, 6)], seen)
    );
    reopened.close().await;
}
