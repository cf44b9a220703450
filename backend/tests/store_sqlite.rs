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
